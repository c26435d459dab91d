import type { LoggerService } from '@backstage/backend-plugin-api';

/** A line a logger wrote, with the fields of the child logger it was written to. */
export interface LoggedLine {
  level: 'error' | 'warn' | 'info' | 'debug';
  message: string;
  fields: Record<string, unknown>;
}

/** A logger that keeps each line it, or any child of it, writes. */
export function recordingLogger(): LoggerService & { lines: LoggedLine[] } {
  const lines: LoggedLine[] = [];
  const make = (fields: Record<string, unknown>): LoggerService => {
    const write =
      (level: LoggedLine['level']) =>
      (message: string, meta?: Error | Record<string, unknown>) => {
        const more = meta instanceof Error ? {} : meta;
        lines.push({ level, message, fields: { ...fields, ...more } });
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
