const UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

/**
 * Parses a duration such as `500ms`, `90s`, `15m`, `24h`, `7d` (or a sum: `1h30m`) into seconds.
 * Returns undefined when the text is not a duration.
 */
export function parseDurationSeconds(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^(\d+(\.\d+)?(ms|[smhd]))+$/.test(trimmed)) return undefined;
  let total = 0;
  for (const [, value, unit] of trimmed.matchAll(/(\d+(?:\.\d+)?)(ms|[smhd])/g)) {
    total += Number(value) * UNITS[unit];
  }
  return total;
}
