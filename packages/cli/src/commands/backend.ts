/**
 * What the subcommands against a Backstage backend share: their options, the client they connect
 * with, and following a run to its end.
 */
import type { Command } from 'commander';
import { isRunInterrupted } from '@backstage-recovery/plugin-recovery-common';
import {
  backendClient,
  type BackendOptions,
  DEFAULT_BACKEND_URL,
  followRun,
  formatFailureTail,
  formatOutcome,
  startRun,
} from '../remote';
import {
  type CliContext,
  EXIT_INTERRUPTED,
  InputError,
  json,
  onceEach,
} from '../cli';

export type BackendCliOptions = BackendOptions & { json?: boolean };
export type RunOptions = BackendCliOptions & { interval: string };

/** Against a backend: a token and where it listens, on each command. */
export function againstBackend(command: Command): Command {
  return onceEach(
    command
      .option(
        '--url <url>',
        `the Backstage backend (default: RECOVERY_URL, else ${DEFAULT_BACKEND_URL})`,
      )
      .option(
        '--token <token>',
        'bearer token, a static token from backend.auth.externalAccess (default: RECOVERY_TOKEN)',
      )
      .option(
        '--allow-plain-http',
        'send the token over plain http:// to a host other than loopback, readable on the network (default: RECOVERY_ALLOW_PLAIN_HTTP=1); else refused: use https',
      )
      .option('--json', "print the API's answer as one JSON document")
      // `recovery run web api` would recover web alone and exit 0: refused, not half done.
      .allowExcessArguments(false)
      .exitOverride(),
  );
}

export type Client = ReturnType<typeof backendClient>['client'];

export function connect(ctx: CliContext, opts: BackendOptions): Client {
  ctx.doing.backend = true;
  const backend = backendClient(opts);
  ctx.hasToken = backend.hasToken;
  if (backend.warning) ctx.io.stderr(`recovery: warning: ${backend.warning}\n`);
  return backend.client;
}

export function intervalMs(text: string): number {
  const seconds = Number(text);
  if (!(seconds >= 0.1 && seconds <= 60))
    throw new InputError(`--interval: seconds from 0.1 to 60, got '${text}'`);
  return seconds * 1000;
}

/** The most runs or captures one request of the API (GET /runs, GET /captures) answers. */
export const API_LIMIT_MAX = 500;

/**
 * `--limit`: a whole number from 1 to `max` (none: as many as there are), refused before any
 * request; `what` says what it counts.
 */
export function limitArg(text: string, what: string, max?: number): number {
  const limit = Number(text);
  if (
    !/^[0-9]+$/.test(text) ||
    !Number.isSafeInteger(limit) ||
    limit < 1 ||
    (max !== undefined && limit > max)
  )
    throw new InputError(
      `--limit: ${what}, a whole number from 1${max === undefined ? ' up' : ` to ${max}`}, got '${text}'`,
    );
  return limit;
}

/** Follows a run to its end; the exit status says how it ended (1: failed; 4: interrupted, no result). */
export async function follow(
  ctx: CliContext,
  client: Client,
  run: Awaited<ReturnType<typeof startRun>>,
  opts: RunOptions,
): Promise<void> {
  const { io } = ctx;
  ctx.doing.runId = run.id;
  const done = await followRun(client, run, {
    intervalMs: intervalMs(opts.interval),
    onStep: opts.json ? undefined : line => io.stdout(`${line}\n`),
    onRetry: message => io.stderr(`recovery: ${message}\n`),
  });
  // The failed machine's own console says why more often than its probe's failure does: a
  // diagnostic, on stderr before the outcome, which stays the last line of stdout.
  const tail = opts.json ? [] : formatFailureTail(done);
  if (tail.length > 0) io.stderr(`${tail.join('\n')}\n`);
  io.stdout(opts.json ? json(done) : `${formatOutcome(done)}\n`);
  ctx.status =
    done.status === 'succeeded'
      ? 0
      : isRunInterrupted(done)
        ? EXIT_INTERRUPTED
        : 1;
}
