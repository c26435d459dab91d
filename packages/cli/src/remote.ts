import { parseEntityRef, stringifyEntityRef } from '@backstage/catalog-model';
import { ResponseError } from '@backstage/errors';
import {
  capturesDamaged,
  type DamagedCapture,
  dependencyCycle,
  errorMessage,
  failedMachine,
  formatAgainst,
  formatDuration,
  formatMeasured,
  formatUtcTime,
  hostBusy,
  interruptionCause,
  isRunActive,
  isLoopbackHost,
  isRunInterrupted,
  missingDependencies,
  READINESS_STATUS_LABELS,
  RecoveryClient,
  recoveryRunLogsReadPermission,
  type RecoveryPointTooEarly,
  recoveryPointTooEarly,
  readableTimes,
  timelineSteps,
  type MachinePhase,
  type Readiness,
  type ReadinessStatus,
  type ReadinessSummary,
  type RecoveryRun,
  type RunMachine,
  type RunStep,
} from '@backstage-recovery/plugin-recovery-common';
import { counted } from '@backstage-recovery/plugin-recovery-node';
import type { Doing } from './cli';
import { setTimeout as sleep } from 'node:timers/promises';

/** Where the CLI finds the Backstage backend, from its options or the environment. */
export interface BackendOptions {
  url?: string;
  token?: string;
  /** Send the token over plain HTTP to another host than loopback (else RECOVERY_ALLOW_PLAIN_HTTP=1). */
  allowPlainHttp?: boolean;
}

export const DEFAULT_BACKEND_URL = 'http://localhost:7007';

/** The recovery plugin's base path in a backend, at the end of a URL that names the plugin. */
const PLUGIN_BASE_PATH = /\/api\/recovery$/;

/** A usage or input problem: exit status 2, like a malformed log. */
export class RemoteInputError extends Error {
  name = 'InputError';
}

/**
 * What went wrong talking to the backend, worded for a terminal: exit status 3, so that a pipeline
 * tells a recovery that failed (1) from one it could not start or follow.
 */
export class BackendError extends Error {
  name = 'BackendError';
}

/**
 * The recovery API of the backend at `--url` (else `RECOVERY_URL`, else localhost:7007), sending
 * `--token` (else `RECOVERY_TOKEN`) as a bearer token: a static token from the backend's
 * `backend.auth.externalAccess`: a service, limited by its `accessRestrictions` (never by the
 * permission policy). A token is not sent over plain HTTP to another host than loopback unless
 * `--allow-plain-http` (else `RECOVERY_ALLOW_PLAIN_HTTP=1`) says so: then with a warning.
 */
export function backendClient(
  options: BackendOptions,
  env: NodeJS.ProcessEnv = process.env,
  answerTimeoutMs = ANSWER_TIMEOUT_MS,
) {
  // The backend's root: a URL given as the plugin's own (`…/api/recovery`, as a browser shows its
  // requests) is read as the backend it is in, a path prefix before `/api` kept.
  const text = (options.url ?? env.RECOVERY_URL ?? DEFAULT_BACKEND_URL)
    .replace(/\/+$/, '')
    .replace(PLUGIN_BASE_PATH, '');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new RemoteInputError(
      `--url: not a URL: '${text}' (such as ${DEFAULT_BACKEND_URL})`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new RemoteInputError(`--url: must be http or https, got '${text}'`);
  }
  // Never sent, nor echoed into a pipeline's log.
  if (url.username || url.password) {
    throw new RemoteInputError(
      '--url: a user or password in the URL is not sent; pass a token with --token or RECOVERY_TOKEN',
    );
  }
  const token = options.token ?? env.RECOVERY_TOKEN;
  // A bearer token over plain HTTP can be read by anyone on the path; on loopback nobody is.
  const inTheClear =
    Boolean(token) && url.protocol === 'http:' && !isLoopbackHost(url.hostname);
  if (
    inTheClear &&
    !options.allowPlainHttp &&
    env.RECOVERY_ALLOW_PLAIN_HTTP !== '1'
  ) {
    throw new RemoteInputError(
      `--url: the token would go to ${text} over plain HTTP, readable on the network: use https (on a network you trust, --allow-plain-http or RECOVERY_ALLOW_PLAIN_HTTP=1 sends it all the same)`,
    );
  }
  const client = new RecoveryClient({
    discoveryApi: { getBaseUrl: async pluginId => `${text}/api/${pluginId}` },
    fetchApi: {
      fetch: async (input, init) => {
        const headers = new Headers(init?.headers);
        if (token) headers.set('Authorization', `Bearer ${token}`);
        const method = init?.method ?? 'GET';
        let response: Response;
        try {
          response = await send(
            String(input),
            { ...init, method, headers },
            answerTimeoutMs,
          );
        } catch (error) {
          if (error instanceof NoAnswerError)
            throw new BackendError(
              `the Backstage backend at ${text} ${error.message}`,
            );
          if (error instanceof BrokenAnswerError) {
            const { code, message } = error.cause as NodeJS.ErrnoException;
            const path = String(input).slice(text.length);
            throw new BackendError(
              `the connection to the Backstage backend at ${text} broke before it answered ${method} ${path} (${code ?? message})${method === 'GET' ? '' : afterBrokenWrite(path)}`,
            );
          }
          const { code, message } = error as NodeJS.ErrnoException;
          throw new BackendError(
            `cannot reach the Backstage backend at ${text} (${code ?? message}): start it, or point --url or RECOVERY_URL at it`,
          );
        }
        return ownAnswer(
          response,
          `${method} ${String(input).slice(text.length)}`,
          text,
        );
      },
    },
  });
  const warning = inTheClear
    ? `the token goes to ${text} over plain HTTP, readable on the network: use https`
    : undefined;
  return { client, url: text, hasToken: Boolean(token), warning };
}

/** How long a request waits for the backend to answer, as fetch would (a capture is polled). */
export const ANSWER_TIMEOUT_MS = 300_000;

class NoAnswerError extends Error {}

/** The connection broke once the request had reached the backend: it may have acted on it. */
class BrokenAnswerError extends Error {
  constructor(readonly cause: Error) {
    super(cause.message);
  }
}

/**
 * What to do where a request that changes something got no whole answer: the backend may have
 * done it all the same, and sending it again can start a second run.
 */
function afterBrokenWrite(path: string): string {
  const done = path.endsWith('/release')
    ? 'released the failover'
    : path.endsWith('/captures')
      ? 'taken the capture'
      : path.endsWith('/runs')
        ? 'started the run'
        : 'done it';
  return `: it may have ${done} all the same; look (recovery readiness, or the entity's Recovery tab) before asking again`;
}

/**
 * Errors of a connection that broke once made (reset, closed by the other side): the request had
 * reached the backend. undici says a connection closed under it `UND_ERR_SOCKET`, which node:http
 * called ECONNRESET, as it is said here. Any other (refused, no such host, TLS) never reached it.
 */
const BROKEN_CONNECTION: Record<string, string> = {
  ECONNRESET: 'ECONNRESET',
  EPIPE: 'EPIPE',
  UND_ERR_SOCKET: 'ECONNRESET',
};

/**
 * One request through fetch, its answer waited for up to `timeoutMs`, then its body as long
 * again; redirects are not followed (ownAnswer says them). A request that never got through is
 * thrown as its cause (its `code`: ECONNREFUSED, ENOTFOUND, ...), one whose connection broke once
 * made as a {@link BrokenAnswerError}, and no answer in time as a {@link NoAnswerError}.
 */
async function send(
  url: string,
  init: RequestInit,
  timeoutMs: number,
): Promise<Response> {
  const silence = new AbortController();
  const noAnswer = new NoAnswerError(`gave no answer in ${timeoutMs / 1000} s`);
  let timer = setTimeout(() => silence.abort(noAnswer), timeoutMs);
  const signal = init.signal
    ? AbortSignal.any([init.signal, silence.signal])
    : silence.signal;
  try {
    const response = await fetch(url, { ...init, signal, redirect: 'manual' });
    clearTimeout(timer);
    timer = setTimeout(() => silence.abort(noAnswer), timeoutMs);
    // Read whole here, so that a body that never ends is no answer either.
    const body = await response.arrayBuffer();
    return new Response(
      response.status === 204 || response.status === 304 ? null : body,
      {
        status: response.status,
        statusText: response.statusText,
        headers: response.headers,
      },
    );
  } catch (error) {
    if (silence.signal.aborted) throw noAnswer;
    const cause = ((error as Error).cause ?? error) as NodeJS.ErrnoException;
    const broken = cause.code && BROKEN_CONNECTION[cause.code];
    if (broken)
      throw new BrokenAnswerError(
        Object.assign(new Error(cause.message), { code: broken }),
      );
    throw cause;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The backend's own answer, or why what came back is none. A redirect is not followed: the token
 * would go where --url does not say (an http:// URL sent on to https://, a sign-in page). An
 * answer that is not JSON is a page from something else at that URL (the app on :3000, a proxy):
 * said in a line, not dumped whole, and as a refusal (exit 3), not a crash. An error that is not
 * the backend's own (a gateway's HTML 503) becomes one, its page shortened to a line.
 */
async function ownAnswer(
  response: Response,
  request: string,
  url: string,
): Promise<Response> {
  const { status, statusText, headers } = response;
  if (status >= 300 && status < 400 && status !== 304) {
    const location = headers.get('location');
    throw new BackendError(
      `the Backstage backend at ${url} redirects ${request} (${status} ${statusText}) to ${location ?? 'no location'}: ` +
        'redirects are not followed, the token would go with them; point --url or RECOVERY_URL at the address the backend answers on',
    );
  }
  if (status === 204 || status === 304) return response;
  const body = await response.text();
  const type =
    headers.get('content-type')?.split(';')[0].trim() || 'no content type';
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined;
  }
  const rebuilt = (text: string, contentType?: string) => {
    const answered = new Headers(headers);
    if (contentType) answered.set('content-type', contentType);
    answered.delete('content-length');
    return new Response(text, { status, statusText, headers: answered });
  };
  if (response.ok) {
    if (parsed !== undefined) return rebuilt(body);
    const json = /^application\/(.+\+)?json\b/i.test(type);
    throw new BackendError(
      `the answer to ${request} from ${url} is not valid JSON (${status}, ${type}${body.trim() ? `: ${excerpt(body)}` : ', empty'})${
        json
          ? ': cut short on its way?'
          : ': is --url the Backstage backend (such as http://localhost:7007), not the app or a proxy in front of it?'
      }`,
    );
  }
  // Backstage's error body, as its error handler writes it: `{error: {name, message}, response}`.
  const own =
    typeof parsed === 'object' &&
    parsed !== null &&
    'error' in parsed &&
    'response' in parsed;
  if (own) return rebuilt(body);
  const page = body.trim() ? ` (${type}: ${excerpt(body)})` : '';
  let message = `Request failed with status ${status} ${statusText}${page}`;
  // A Backstage backend answers a path nothing serves with an empty 404 (its last middleware), and
  // its plugins' 404s in its JSON error body: a page is from another server, the app's most often
  // (its dev server on :3000 says "Cannot GET /api/recovery/…").
  if (status === 404 && page) {
    message =
      `${url} answered ${request} with ${status} ${statusText} and a page${page}, as no Backstage backend does: ` +
      `most likely the app (port 3000) or another web server; point --url or RECOVERY_URL at the Backstage backend (by default ${DEFAULT_BACKEND_URL})`;
  }
  return rebuilt(
    JSON.stringify({
      error: { name: FOREIGN_ANSWER, message },
      response: { statusCode: status },
    }),
    'application/json',
  );
}

/** The name of the error made of an answer that is not the backend's own: its message says the status. */
const FOREIGN_ANSWER = 'ForeignAnswerError';

/** A page's gist in one short line: the first words of its text, else of its HTML title. */
function excerpt(body: string): string {
  const words = (html: string) =>
    html
      .replace(/<[^>]*>/g, ' ')
      .replace(/\s+/g, ' ')
      .trim();
  const title = words(/<title[^>]*>([^<]*)<\/title>/i.exec(body)?.[1] ?? '');
  const text =
    words(body.replace(/<(head|script|style)\b[\s\S]*?<\/\1\s*>/gi, ' ')) ||
    title;
  return JSON.stringify(text.length > 120 ? `${text.slice(0, 119)}…` : text);
}

/**
 * `web` → `component:default/web`, as the catalog reads a short ref; refuses what it cannot read.
 * One without its kind is noted in `doing`: a machine named so (`data-01`) is a Resource, not found
 * as a Component, and the 404 then says so ({@link describeBackendError}).
 */
export function entityRefArg(text: string, doing?: Doing): string {
  const entityRef = refArg(text, 'component', 'web', 'not an entity ref');
  if (doing && !text.includes(':'))
    doing.bareEntity = { given: text, entityRef };
  return entityRef;
}

/** `--machine web-01` → `resource:default/web-01`: a machine is a Resource. */
export function machineRefArg(text: string): string {
  return refArg(text, 'resource', 'web-01', '--machine: not a machine ref');
}

function refArg(
  text: string,
  defaultKind: string,
  example: string,
  problem: string,
): string {
  try {
    return stringifyEntityRef(
      parseEntityRef(text, { defaultKind, defaultNamespace: 'default' }),
    );
  } catch (error) {
    throw new RemoteInputError(
      `${problem}: '${text}' (such as ${defaultKind}:default/${example}, or ${example}): ${(error as Error).message}`,
    );
  }
}

/**
 * A backend's refusal, worded with what to do where the status says; `bareEntity`, an entity
 * named without its kind, is hinted at as a machine's where the catalog has no Component of it.
 */
export function describeBackendError(
  error: unknown,
  hasToken: boolean,
  bareEntity?: Doing['bareEntity'],
): string {
  if (!(error instanceof ResponseError)) return errorMessage(error);
  const { statusCode } = error;
  const message = errorMessage(error);
  if (statusCode === 401) {
    return `${message} (401): ${hasToken ? 'the backend refused the token' : 'pass a token with --token or RECOVERY_TOKEN'} (a static token from backend.auth.externalAccess)`;
  }
  const foreign = error.body?.error?.name === FOREIGN_ANSWER;
  // Not the recovery plugin's own 404 (an entity, a run): Backstage's for a plugin it does not
  // have is empty (a page, from another server, says so itself).
  if (statusCode === 404 && foreign && message.startsWith('Request failed')) {
    return `${message}: is the recovery plugin installed in that backend?`;
  }
  // Made of a page or an empty answer, the message already says the status.
  if (foreign) return message;
  // The catalog's 404 names the ref it looked for: the Component a bare name defaulted to.
  if (
    statusCode === 404 &&
    bareEntity &&
    message.includes(`${bareEntity.entityRef} `)
  )
    return `${message} (404): a name without its kind is a Component's; for a machine, use resource:${bareEntity.given}`;
  return `${message} (${statusCode})`;
}

const clock = (iso: string) => iso.slice(11, 19);

// Its commands write a backend's messages as the portal shows them.
export { readableTimes };

/** One line of a run's timeline, as a terminal shows it: a machine's step names the machine. */
export function formatStep(step: RunStep): string {
  const level = step.level === 'info' ? '' : `${step.level}: `;
  const machine =
    step.machineRef && !step.message.startsWith(step.machineRef)
      ? `${step.machineRef}: `
      : '';
  return `${clock(step.at)}  ${machine}${level}${readableTimes(step.message)}`;
}

/**
 * The phases a machine goes through that no step says, with the time each began: a start or a
 * verification can take minutes, and the timeline says only when the machine is ready. Nor does
 * one say which machines an interruption cut off (the run's own words are its outcome line). A
 * restore's start is the timeline's own step, which names the capture and when it was taken.
 */
const PHASE_LINES: Partial<
  Record<MachinePhase, { at: keyof RunMachine; words: string }>
> = {
  starting: { at: 'restoredAt', words: 'restored, starting' },
  verifying: { at: 'startedAt', words: 'started, verifying' },
  interrupted: { at: 'finishedAt', words: 'interrupted, not verified' },
};

/** A machine's phase as a timeline line, for a phase no step says. */
function phaseLine(machine: RunMachine): RunStep | undefined {
  const line = PHASE_LINES[machine.phase];
  const at = line && (machine[line.at] as string | undefined);
  return at
    ? {
        at,
        machineRef: machine.machineRef,
        level: 'info',
        message: line!.words,
      }
    : undefined;
}

/** How a finished run ended, in one line. */
export function formatOutcome(run: RecoveryRun): string {
  const machines = run.machines.length;
  const of = `Run ${run.id} of ${run.entityRef}${run.recoveryPoint ? ` to the recovery point ${run.recoveryPoint}` : ''}`;
  if (run.status === 'succeeded') {
    return `${of} succeeded: ${machines} machine${machines === 1 ? '' : 's'} verified, measured RTO ${formatMeasured(run.rtoSeconds)}`;
  }
  // No failed recovery: it reached no result (exit status 4, not 1).
  // Cancelled: stopped as someone asked, not to be run again for that.
  if (isRunInterrupted(run))
    return `${of} interrupted: ${readableTimes(interruptionCause(run))}. It reached no result${run.error?.cancelledBy ? '' : ': run it again'}`;
  return `${of} ${run.status}${run.error ? `: ${readableTimes(run.error.message)}` : ''}`;
}

/** How many of the failed machine's console lines are printed before a failed run's outcome. */
export const FAILURE_TAIL_LINES = 10;
/** The longest console line printed whole, in characters. */
const FAILURE_TAIL_WIDTH = 500;

// A machine's console goes to the user's terminal: its escape sequences (colours, cursor moves,
// window titles) and other control characters are not passed on. CSI, OSC up to BEL or ST, others.
const ESCAPE_SEQUENCE =
  // eslint-disable-next-line no-control-regex
  /(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[ -/]*[0-~]?/g;
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTER = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

/**
 * The last lines of the console of the machine a failed run failed at, labelled with it and
 * indented, to print before the outcome line: the root cause is most often there (`dependency
 * nosuch not ready within 20s`), where the outcome says only which probe or check gave up. None
 * for a run that did not fail, failed as a whole (its host, its lab: no machine is to blame) or
 * was interrupted, nor where no tail was kept. One the backend withheld (the caller may not read
 * it) is said to be, with the permission that shows it, so it does not read as none kept.
 */
export function formatFailureTail(
  run: RecoveryRun,
  lines = FAILURE_TAIL_LINES,
): string[] {
  if (run.status !== 'failed') return [];
  // A run-wide error names no machine, though it failed those it stopped.
  const machineRef = failedMachine(run);
  const machine = machineRef
    ? run.machines?.find(m => m.machineRef === machineRef)
    : undefined;
  if (machine?.logTailWithheld) {
    return [
      `Console of ${machineRef} withheld: reading it needs the ${recoveryRunLogsReadPermission.name} permission on ${machineRef}`,
    ];
  }
  const tail = machine?.logTail;
  if (!tail) return [];
  const text = tail
    .replace(ESCAPE_SEQUENCE, '')
    .split(/\r*\n/)
    // A line rewritten after carriage returns (a progress bar) as it was left.
    .map(line =>
      (line.split('\r').filter(Boolean).pop() ?? '')
        .replace(CONTROL_CHARACTER, '')
        .trimEnd(),
    );
  while (text.length > 0 && text[text.length - 1] === '') text.pop();
  if (text.length === 0) return [];
  const shown = text.slice(-lines);
  const which =
    shown.length < text.length
      ? `last ${shown.length} of ${text.length} lines`
      : counted(shown.length, 'line');
  // A line without breaks (a minified dump) would fill the screen: its start, cut short.
  const cut = (line: string) =>
    line.length > FAILURE_TAIL_WIDTH
      ? `${line.slice(0, FAILURE_TAIL_WIDTH - 1)}…`
      : line;
  return [
    `Console of ${machineRef} (${which}):`,
    ...shown.map(line => `  ${cut(line)}`),
  ];
}

/**
 * What releasing a failover did, in one line: the step the release added to its timeline (who
 * released it, what was removed, or that nothing was left).
 */
export function formatRelease(run: RecoveryRun): string {
  const step = run.steps.findLast(s => s.message.startsWith('Released by '));
  return `Failover ${run.id} of ${run.entityRef}: ${step ? readableTimes(step.message) : 'released'}`;
}

/**
 * An answer worth asking again for: a backend out of reach or a gateway without one behind it, as
 * during a restart or a rolling deploy. The run goes on (or is marked failed once the backend is
 * back), so following it must not end there.
 */
export function isTransient(error: unknown): boolean {
  if (error instanceof BackendError) return true;
  return (
    error instanceof ResponseError && [502, 503, 504].includes(error.statusCode)
  );
}

/** How long the backend may stay out of reach while a run is followed. */
export const FOLLOW_PATIENCE_MS = 60_000;

/**
 * Follows a run until it finishes, writing each new step of its timeline as it appears, as
 * {@link timelineSteps} reads it: a failure of the run as a whole is left to the outcome line
 * ({@link formatOutcome}) said after it. The run goes on on the server whatever happens here. A
 * backend out of reach is asked again, at least a second apart, for up to `patienceMs`; `onRetry`
 * hears of each such spell once.
 */
export async function followRun(
  client: Pick<RecoveryClient, 'getRun'>,
  first: RecoveryRun,
  options: {
    intervalMs: number;
    onStep?: (line: string) => void;
    onRetry?: (message: string) => void;
    patienceMs?: number;
    signal?: AbortSignal;
  },
): Promise<RecoveryRun> {
  const patienceMs = options.patienceMs ?? FOLLOW_PATIENCE_MS;
  let run = first;
  // The steps printed, by index: a step seen before may have been held back (timelineSteps'
  // appendOnly), or be left out for good, so those printed are no mere prefix of the steps.
  const printed = new Set<number>();
  const phases = new Map<string, MachinePhase>();
  let failingSince: number | undefined;
  for (;;) {
    // The steps not shown yet, and each machine's phase where it moved on since the last look,
    // in the order they happened.
    const index = new Map(run.steps.map((step, i) => [step, i]));
    const lines = timelineSteps(run, { appendOnly: true }).filter(
      step => !printed.has(index.get(step)!),
    );
    for (const step of lines) printed.add(index.get(step)!);
    for (const machine of run.machines) {
      if (phases.get(machine.machineRef) === machine.phase) continue;
      phases.set(machine.machineRef, machine.phase);
      const line = phaseLine(machine);
      if (line) lines.push(line);
    }
    lines.sort((a, b) => a.at.localeCompare(b.at));
    for (const line of lines) options.onStep?.(formatStep(line));
    if (!isRunActive(run)) return run;
    await sleep(
      failingSince === undefined
        ? options.intervalMs
        : Math.max(options.intervalMs, 1000),
      undefined,
      {
        signal: options.signal,
      },
    );
    try {
      run = await client.getRun(run.id);
      failingSince = undefined;
    } catch (error) {
      if (!isTransient(error)) throw error;
      const now = Date.now();
      if (failingSince === undefined) {
        failingSince = now;
        options.onRetry?.(
          `${errorMessage(error)}; still following run ${run.id}, for up to ${Math.round(patienceMs / 1000)} s`,
        );
      } else if (now - failingSince >= patienceMs) {
        throw error;
      }
    }
  }
}

export async function startRun(
  client: RecoveryClient,
  entityRef: string,
  options: {
    failover?: boolean;
    acceptMissingDependencies?: boolean;
    acceptCycles?: boolean;
    recoveryPoint?: string;
  } = {},
): Promise<RecoveryRun> {
  try {
    return await client.startRun({
      entityRef,
      mode: options.failover ? 'failover' : 'test',
      ...(options.acceptMissingDependencies && {
        acceptMissingDependencies: true,
      }),
      ...(options.acceptCycles && { acceptCycles: true }),
      ...(options.recoveryPoint !== undefined && {
        recoveryPoint: options.recoveryPoint,
      }),
    });
  } catch (error) {
    const missing = missingDependencies(error);
    if (missing) {
      // Without the list, the backend's own words say what is missing.
      if (missing.length === 0)
        throw new BackendError(
          `${errorMessage(error)} (recovery run --accept-missing-dependencies)`,
        );
      throw new BackendError(
        `${entityRef} cannot be recovered as the catalog declares it: ${missing.join('; ')}. ` +
          'Fix the catalog, or run with --accept-missing-dependencies to recover without what is missing',
      );
    }
    const cycle = dependencyCycle(error);
    if (cycle) {
      const drops = cycle.wouldDrop
        .map(e => `booting ${e.from} without waiting for ${e.waitsFor}`)
        .join(', ');
      throw new BackendError(
        `${entityRef} cannot be recovered as the catalog declares it: ${cycle.cycle.replace(/\.$/, '')}. ` +
          `Fix the catalog, or run with --accept-cycles to recover all the same${drops ? `, ${drops}` : ''}`,
      );
    }
    const tooEarly = recoveryPointTooEarly(error);
    if (tooEarly)
      throw new BackendError(formatRecoveryPointTooEarly(entityRef, tooEarly));
    const damaged = capturesDamaged(error);
    if (damaged && damaged.damaged.length > 0)
      throw new BackendError(formatCapturesDamaged(entityRef, damaged));
    const holder = hostBusy(error);
    if (holder) {
      throw new BackendError(
        `the hypervisor host is busy with ${holder.runId ? `run ${holder.runId} of ${holder.entityRef}` : 'another run'}: try again once it has finished${holder.runId ? ` (recovery watch ${holder.runId})` : ''}`,
      );
    }
    throw error;
  }
}

/**
 * A recovery point refused as earlier than machines' kept captures: a line per machine with its
 * oldest kept capture (or never captured), then the earliest point every machine allows.
 */
export function formatRecoveryPointTooEarly(
  entityRef: string,
  refused: RecoveryPointTooEarly,
): string {
  const rows = [
    ...refused.machines.map(m => [
      m.machineRef,
      `its oldest kept capture is of ${m.oldestCaptureAt}`,
    ]),
    ...refused.neverCaptured.map(m => [m, 'never captured']),
  ];
  const width = Math.max(...rows.map(([ref]) => ref.length));
  const count = rows.length === 1 ? '1 machine' : `${rows.length} machines`;
  const { neverCaptured, earliestRecoveryPoint: earliest } = refused;
  const next =
    neverCaptured.length > 0
      ? `capture ${neverCaptured.join(', ')} first (recovery capture ${entityRef}): no recovery point can restore ${neverCaptured.length === 1 ? 'it' : 'them'} until then`
      : earliest
        ? `--recovery-point ${earliest} is the earliest every machine allows (recovery.captureStore.keepLast sets how many captures are kept); leave it out to restore the latest captures`
        : 'choose a later point, or leave --recovery-point out to restore the latest captures';
  return [
    `no capture kept at or before the recovery point ${refused.recoveryPoint} of ${count} of ${entityRef}:`,
    ...rows.map(([ref, what]) => `  ${ref.padEnd(width)}  ${what}`),
    next,
  ].join('\n');
}

/**
 * A run refused because every kept capture of some machines is damaged: a line per damaged
 * capture, then what to do (no recovery point helps).
 */
export function formatCapturesDamaged(
  entityRef: string,
  {
    damaged,
    neverCaptured,
  }: { damaged: DamagedCapture[]; neverCaptured: string[] },
): string {
  const machines = [...new Set(damaged.map(d => d.machineRef))];
  const width = Math.max(
    ...[...damaged.map(d => d.machineRef), ...neverCaptured].map(
      ref => ref.length,
    ),
  );
  const toCapture = [...machines, ...neverCaptured];
  return [
    `no intact capture of ${machines.join(', ')} to restore: every one kept is damaged:`,
    ...damaged.map(
      d =>
        `  ${d.machineRef.padEnd(width)}  capture ${d.captureId} of ${d.createdAt}: ${d.reason}`,
    ),
    ...neverCaptured.map(ref => `  ${ref.padEnd(width)}  never captured`),
    `capture ${toCapture.length === 1 ? 'it' : 'them'} anew (recovery capture ${entityRef}), then run again`,
  ].join('\n');
}

/** A readiness status as the portal words it (`--json` keeps the API's value); one this CLI does not know, as the API gave it. */
const statusWords = (status: ReadinessStatus) =>
  READINESS_STATUS_LABELS[status] ?? status;

/** The overview, most at risk first: one line per entity. */
export function formatReadinessList(items: ReadinessSummary[]): string {
  if (items.length === 0)
    return 'No recoverable entities: no service depends on a machine Resource.\n';
  const width = Math.max(...items.map(i => statusWords(i.status).length));
  const refWidth = Math.max(...items.map(i => i.entityRef.length));
  return `${items
    .map(i =>
      `${statusWords(i.status).padEnd(width)}  ${i.entityRef.padEnd(refWidth)}  ${readableTimes(i.reasons[0] ?? '')}`.trimEnd(),
    )
    .join('\n')}\n`;
}

/** One entity's readiness, as its page shows it, its figures written as the portal writes them. */
export function formatReadiness(r: Readiness): string {
  const { rpoSeconds, rtoSeconds } = r.objectives;
  const out = [`${r.entityRef}: ${statusWords(r.status)}`];
  for (const reason of r.reasons) out.push(`  - ${readableTimes(reason)}`);
  out.push(
    `Objectives: RPO ${formatDuration(rpoSeconds)} · RTO ${formatDuration(rtoSeconds)}`,
  );
  if (r.position) {
    out.push(
      `Boot order: wave ${r.position.wave + 1}${r.position.waitsFor.length ? `, after ${r.position.waitsFor.join(', ')}` : ''}`,
    );
  }
  if (r.captures.length) {
    out.push('Captures:');
    // An age over the RPO never reads as the RPO itself (`1h 0m 40s`, not `1h`).
    for (const c of r.captures) {
      const damaged = c.latest?.damaged
        ? ` (damaged, found so at ${formatUtcTime(c.latest.damaged.at)}: no run restores it)`
        : '';
      out.push(
        `  ${c.machineRef}  ${c.latest ? `${formatAgainst(c.ageSeconds ?? 0, rpoSeconds)} old${damaged}` : 'never captured'}`,
      );
    }
  }
  const run = r.lastRun;
  if (run) {
    const of =
      'entityRef' in run && run.entityRef !== r.entityRef
        ? ` (a run of ${run.entityRef})`
        : '';
    const rto =
      run.rtoSeconds === undefined
        ? ''
        : `, measured RTO ${formatMeasured(run.rtoSeconds)} vs objective ${formatDuration(rtoSeconds)}${run.rtoSeconds > rtoSeconds ? ' (exceeded)' : ''}`;
    out.push(
      `Last run: ${run.mode} ${run.status}${run.finishedAt ? ` at ${run.finishedAt}` : ''}${rto}${of}`,
    );
  }
  return `${out.join('\n')}\n`;
}
