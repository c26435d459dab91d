/** Times as the analysis says them. */

/** A day, in ms. */
export const DAY = 86_400_000;

/** A time (epoch ms) as ISO 8601. */
export const iso = (t: number) => new Date(t).toISOString();
