/**
 * The `recovery` command line: `recovery analyze FILE... [options]` offline, and against a
 * Backstage backend's recovery API `readiness`, `plan`, `capture`, `captures`, `run`, `watch`,
 * `runs`, `show-run` and `release`. Each subcommand is in commands/; `main` parses the command
 * line, dispatches, and turns what ends it into an exit status.
 */
import { Command, CommanderError } from 'commander';
import { EventParseError } from '@backstage-recovery/plugin-recovery-node';
import { ResponseError } from '@backstage/errors';
import { BackendError, describeBackendError, RemoteInputError } from './remote';
import { type CliContext, type Doing, InputError, type Io } from './cli';
import { addAnalyzeCommand } from './commands/analyze';
import { addCaptureCommand } from './commands/capture';
import { addCapturesCommand } from './commands/captures';
import { addPlanCommand } from './commands/plan';
import { addReadinessCommand } from './commands/readiness';
import { addCancelCommand } from './commands/cancel';
import { addReleaseCommand } from './commands/release';
import { addRunCommand } from './commands/run';
import { addRunsCommand } from './commands/runs';
import { addShowRunCommand } from './commands/showRun';
import { addWatchCommand } from './commands/watch';

export { EXIT_INTERRUPTED, InputError, type Io } from './cli';
export {
  type AnalyzeCliOptions,
  formatSummary,
  type ReadResult,
  readEventFiles,
  runAnalysis,
} from './analysis';

/**
 * An error the CLI did not expect, said as what it is: an answer of the backend it cannot read (a
 * backend of another version, a proxy's JSON) or a bug of its own, which says nothing of a run's
 * outcome: the run goes on on the server. The stack follows, for a bug report.
 */
export function unexpectedError(error: unknown, doing: Doing): string {
  const what =
    error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  const stack =
    error instanceof Error && error.stack
      ? `\n${error.stack.split('\n').slice(1).join('\n')}`
      : '';
  if (!doing.backend) return `internal error of the CLI (${what})${stack}`;
  const run = doing.runId
    ? `: this says nothing of run ${doing.runId}, which goes on on the server; recovery watch ${doing.runId} follows it again`
    : doing.starting
      ? ": a run may have started all the same; look (recovery readiness, or the entity's Recovery tab) before starting another"
      : '';
  return `the CLI could not read the backend's answer, or hit an internal error (${what})${run}${stack}`;
}

/** Runs the CLI; returns the exit status. */
export async function main(
  argv: string[],
  io: Io = {
    stdout: t => process.stdout.write(t),
    stderr: t => process.stderr.write(t),
    stderrIsTTY: process.stderr.isTTY,
  },
): Promise<number> {
  const program = new Command('recovery')
    .description('Backstage Recovery command line')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  const ctx: CliContext = { io, status: 0, hasToken: false, doing: {} };
  addAnalyzeCommand(program, ctx);
  addReadinessCommand(program, ctx);
  addPlanCommand(program, ctx);
  addCaptureCommand(program, ctx);
  addCapturesCommand(program, ctx);
  addRunCommand(program, ctx);
  addWatchCommand(program, ctx);
  addRunsCommand(program, ctx);
  addShowRunCommand(program, ctx);
  addReleaseCommand(program, ctx);
  addCancelCommand(program, ctx);

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    return exitStatus(e, ctx);
  }
  return ctx.status;
}

/** The exit status of an error that ended a subcommand, said on stderr where it is no help shown. */
function exitStatus(e: unknown, { io, hasToken, doing }: CliContext): number {
  if (e instanceof CommanderError) {
    // Help keeps commander's own status: 0 when asked for (--help), 1 when shown because no
    // subcommand was given. Other commander errors are usage errors, status 2 like bad input.
    const help =
      e.code === 'commander.helpDisplayed' ||
      e.code === 'commander.help' ||
      e.code === 'commander.version';
    return help ? e.exitCode : 2;
  }
  if (
    e instanceof EventParseError ||
    e instanceof InputError ||
    e instanceof RemoteInputError
  ) {
    io.stderr(`recovery: ${e.message}\n`);
    return 2;
  }
  if (e instanceof BackendError || e instanceof ResponseError) {
    io.stderr(
      `recovery: ${describeBackendError(e, hasToken, doing.bareEntity)}\n`,
    );
    return 3;
  }
  io.stderr(`recovery: ${unexpectedError(e, doing)}\n`);
  // Not 1, a failed recovery: the CLI cannot tell how the run went, as when the backend is out of reach.
  return 3;
}
