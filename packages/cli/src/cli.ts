/**
 * What every `recovery` subcommand shares: the output it writes to, its errors and exit statuses,
 * and the state `main` reads once a subcommand has ended.
 */
import type { Command } from 'commander';

export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** stderr is a terminal: reading progress is drawn on it. */
  stderrIsTTY?: boolean;
}

/**
 * A run interrupted (its backend shut down, a failover preempted it): it reached no result, so
 * neither 0 nor 1, a failed recovery; run it again.
 */
export const EXIT_INTERRUPTED = 4;

/** Bad input or usage: exit status 2. */
export class InputError extends Error {}

/**
 * What an unexpected error (an answer the CLI cannot read, a bug of its own) leaves behind: a
 * command against the backend, a run it may have started, the run it followed.
 */
export interface Doing {
  backend?: boolean;
  starting?: boolean;
  runId?: string;
  /** An entity named without its kind (`data-01`), read as a Component's: a 404 for it hints at the machine's ref. */
  bareEntity?: { given: string; entityRef: string };
}

/** One invocation of the CLI, as its subcommands share it with `main`. */
export interface CliContext {
  io: Io;
  /** The exit status a subcommand sets where it ends without an error (a run's outcome). */
  status: number;
  /** A token was sent: a refusal is then said as the token's, not as a missing one. */
  hasToken: boolean;
  doing: Doing;
}

/**
 * Refuses an option given a second value: of two maps, two thresholds or two URLs, commander
 * would keep the last and ignore the other unsaid (`--map site.json --map team.json` is not both).
 */
export function onceEach(command: Command): Command {
  for (const option of command.options) {
    if (option.isBoolean()) continue;
    let given: string | undefined;
    command.on(`option:${option.name()}`, (value: string) => {
      // A token is not echoed into a pipeline's log.
      const values =
        option.long === '--token' ? '' : ` ('${given}', then '${value}')`;
      if (given !== undefined)
        throw new InputError(
          `${option.long} given twice${values}: give it once`,
        );
      given = value;
    });
  }
  return command;
}

/** `--json` output: one document, one line. */
export const json = (value: unknown) => `${JSON.stringify(value)}\n`;

/** Text rows as columns two spaces apart, each as wide as its widest cell, no trailing spaces. */
export function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) =>
    Math.max(...rows.map(row => (row[i] ?? '').length)),
  );
  return rows
    .map(row =>
      row
        .map((cell, i) => cell.padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
