import type { LoggerService } from '@backstage/backend-plugin-api';

/** A line a logger wrote, with the fields of the child logger it was written to. */
export interface LoggedLine {
  level: 'error' | 'warn' | 'info' | 'debug';
  message: string;
  fields: Record<string, unknown>;
  /** The error it was written with, if any. */
  error?: Error;
}

/** A logger that keeps each line it, or any child of it, writes. */
export function recordingLogger(): LoggerService & { lines: LoggedLine[] } {
  const lines: LoggedLine[] = [];
  const make = (fields: Record<string, unknown>): LoggerService => {
    const write =
      (level: LoggedLine['level']) =>
      (message: string, meta?: Error | Record<string, unknown>) => {
        if (meta instanceof Error)
          lines.push({ level, message, fields: { ...fields }, error: meta });
        else lines.push({ level, message, fields: { ...fields, ...meta } });
      };
    return {
      child: more => make({ ...fields, ...more }),
      error: write('error'),
      warn: write('warn'),
      info: write('info'),
      debug: write('debug'),
    };
  };
  return Object.assign(make({}), { lines });
}
