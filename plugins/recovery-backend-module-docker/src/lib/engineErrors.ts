import {
  engineError,
  hostCondition,
  isEngineError,
  type EngineError,
  type HostCondition,
  type HostResource,
} from '@backstage-recovery/plugin-recovery-node';
import { EngineStreamError } from './dockerStreams';

// What a socket or TCP connection to an engine says when nothing (or no one allowed) answers,
// and what looking its host name up says when that name no longer resolves (a moved or lost host).
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ENOENT',
  'EACCES',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * What a TLS connection to an engine says when its handshake fails: Node's own codes, OpenSSL's
 * (a certificate not trusted, expired, for another name) and EPROTO (no TLS spoken there).
 */
const TLS_FAILURE =
  /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_)|^(DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|HOSTNAME_MISMATCH|EPROTO)$/;

/**
 * What an engine says (strerror's words, through its daemon and runtime) when its host ran out of
 * something: `write /…/layer.tar: no space left on device` loading an image, `cannot allocate
 * memory` creating a container. Not a machine's failure, nor the capture's.
 */
const EXHAUSTED: Array<[RegExp, HostResource]> = [
  [/no space left on device|disk quota exceeded/i, 'disk'],
  [/cannot allocate memory/i, 'memory'],
  [/too many open files/i, 'open files'],
];

/** What of its host an engine's answer says it ran out of, if anything. */
function exhaustedIn(said: string): HostCondition | undefined {
  const resource = EXHAUSTED.find(([words]) => words.test(said))?.[1];
  return resource ? { kind: 'exhausted', resource } : undefined;
}

/** An engine's failure in words naming it, and whether the engine was reached at all. */
interface Fault {
  unreachable: boolean;
  words: string;
  /** The state of its host the engine answered it failed on (what it ran out of). */
  condition?: HostCondition;
}

/** The errors made here without a context (explainEngineError, answerWithin), with their fault. */
const bare = new WeakMap<object, Fault>();

/**
 * What went wrong with the engine, said naming it; undefined where `error` is not the engine's
 * (a file's, a refusal of the capture's own, a signal's).
 */
function faultOf(engineId: string, error: unknown): Fault | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const known = bare.get(error);
  if (known) return known;
  // Said already, with its context: its status is the backend's, not an answer of the engine's.
  if (isEngineError(error))
    return {
      unreachable: error.statusCode === 503,
      words: error.message,
      condition: hostCondition(error),
    };
  // Written into a progress stream (a `docker load` the engine's disk could not hold).
  if (error instanceof EngineStreamError)
    return {
      unreachable: false,
      words: `Docker engine '${engineId}' answered: ${error.message}`,
      condition: exhaustedIn(error.message),
    };
  const e = error as {
    code?: unknown;
    address?: string;
    hostname?: string;
    host?: string;
    port?: number;
    path?: unknown;
    statusCode?: unknown;
    message?: string;
  };
  // A file error (capture store, artifact, busybox) carries its path and says which file itself;
  // a socket error carries an address instead.
  if (typeof e.code === 'string' && typeof e.path !== 'string') {
    // A failed name look-up carries the name, not an address; a TLS error often neither.
    const at = e.address ?? e.hostname ?? e.host;
    const where = at ? ` at ${at}${e.port ? `:${e.port}` : ''}` : '';
    if (UNREACHABLE.has(e.code)) {
      return {
        unreachable: true,
        words: `Docker engine '${engineId}' is unreachable${where} (${e.code}): is it running, and may the backend use it?`,
      };
    }
    if (TLS_FAILURE.test(e.code)) {
      // OpenSSL's own line (`…:error:0A00010B:SSL routines:…:wrong version number:file:line`) told by its reason.
      const reason =
        /:error:[0-9A-F]+:[^:]*:[^:]*:([^:]+)/.exec(e.message ?? '')?.[1] ??
        e.message;
      return {
        unreachable: true,
        words:
          `Docker engine '${engineId}' is unreachable${where}: the TLS connection failed (${e.code}${reason ? `: ${reason}` : ''}): ` +
          `does it speak TLS there, and do its certificate and recovery.docker.engines[${engineId}] ca, cert and key match?`,
      };
    }
  }
  // An answer: dockerode's error for a status the call does not expect (its message starts
  // `(HTTP code 500) server error - `, the engine's own words after it).
  if (typeof e.statusCode === 'number') {
    const said = String(e.message ?? '')
      .replace(/^\(HTTP code \d+\) [^-]*- /, '')
      .trim();
    return {
      unreachable: false,
      words: `Docker engine '${engineId}' answered HTTP ${e.statusCode}${said ? `: ${said}` : ''}`,
      condition: exhaustedIn(said),
    };
  }
  return undefined;
}

/** An EngineError with no context but the engine's, remembered as such. */
function bareError(engineId: string, fault: Fault): EngineError {
  const error = engineError(
    fault.words,
    engineId,
    fault.unreachable ? 'unreachable' : 'answered',
    fault.condition,
  );
  bare.set(error, fault);
  return error;
}

/**
 * Turns "cannot talk to the engine" into an EngineError (503, named ServiceUnavailableError) that
 * names the engine; leaves others alone, an engine's error answer too (for its caller to judge).
 */
export function explainEngineError(engineId: string, error: unknown): unknown {
  // Said already (with its context, or bare): made again, it would lose its stack and context.
  if (isEngineError(error)) return error;
  const fault = faultOf(engineId, error);
  if (!fault?.unreachable) return error;
  return bareError(engineId, fault);
}

/** The engine's failure in words that name it (as explainEngineError's, or its answer), else the error's own message. */
export function engineWords(engineId: string, error: unknown): string {
  return (
    faultOf(engineId, error)?.words ??
    String((error as Error)?.message ?? error)
  );
}

/** Whether `error` says the engine could not be reached (or did not answer in time), not that it answered with an error. */
export function isEngineUnreachable(engineId: string, error: unknown): boolean {
  return faultOf(engineId, error)?.unreachable ?? false;
}

/**
 * The error an operation on the engine fails with at the module's boundary: the engine's failure
 * (unreachable, or an error answer whatever its status) as an EngineError saying `context` first
 * (`capture of resource:default/web-01 (container web-01) failed while pausing it`), then the
 * engine's words. So no status of the engine's answer becomes the backend's. Other errors (a
 * NotFoundError the operation made of a 404, a file's, the operation's own) are left alone, and so
 * is an EngineError that said its context already.
 */
export function engineFailure(
  engineId: string,
  error: unknown,
  context: string,
): unknown {
  if (isEngineError(error) && !bare.has(error)) return error;
  const fault = faultOf(engineId, error);
  if (!fault) return error;
  return engineError(
    `${context}: ${fault.words}`,
    engineId,
    fault.unreachable ? 'unreachable' : 'answered',
    fault.condition,
  );
}

/**
 * Runs engine work, naming the engine when it cannot be reached. Given the operation's `context`
 * (see engineFailure), every failure of the engine's is an EngineError saying it.
 */
export async function onEngine<T>(
  engineId: string,
  work: () => Promise<T>,
  context?: string,
): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw context === undefined
      ? explainEngineError(engineId, error)
      : engineFailure(engineId, error, context);
  }
}

/**
 * One engine call, given a signal aborted after `ms` (and with `also`): one not answered by then
 * fails naming the engine, the call and the wait (an EngineError, unreachable), where it would
 * otherwise wait for good on an engine whose connection went silent (accepted, never answered).
 * Stopped by `also`, it fails as the call does.
 */
export async function answerWithin<T>(
  engineId: string,
  what: string,
  ms: number,
  call: (abortSignal: AbortSignal) => Promise<T>,
  also?: AbortSignal,
): Promise<T> {
  const timeout = AbortSignal.timeout(ms);
  try {
    return await call(also ? AbortSignal.any([timeout, also]) : timeout);
  } catch (e) {
    if (timeout.aborted && !also?.aborted) {
      const silent = bareError(engineId, {
        unreachable: true,
        words: `Docker engine '${engineId}' did not answer ${what} within ${ms / 1000} s`,
      });
      unanswered.add(silent);
      throw silent;
    }
    throw e;
  }
}

const unanswered = new WeakSet<object>();

/** Whether `error` is answerWithin's for a call the engine left unanswered: its next calls would wait as long. */
export function isUnanswered(error: unknown): boolean {
  return typeof error === 'object' && error !== null && unanswered.has(error);
}
