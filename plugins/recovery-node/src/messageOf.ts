/**
 * What an error says, whatever was thrown: a host or a library may reject with a string, an
 * object with a message, or nothing.
 *
 * @public
 */
export const messageOf = (error: unknown): string =>
  String((error as Error)?.message ?? error);
