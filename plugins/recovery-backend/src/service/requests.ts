import { makeValidator, parseEntityRef } from '@backstage/catalog-model';
import { CustomErrorBase, InputError } from '@backstage/errors';
import {
  readRecoveryPoint,
  RECOVERY_POINT_FORMAT,
} from '@backstage-recovery/plugin-recovery-common';
import {
  describeValue,
  MAX_NAME_LENGTH,
} from '@backstage-recovery/plugin-recovery-node';
import express from 'express';
import { normalizeRef } from '../plan/catalogGraph';
import { pageLimit } from './paging';

/*
 * What the routes read from a request, and how they refuse it: the body parsers and their
 * errors, the query parameters and body fields each route takes, and the values they hold. No
 * decision of the product is made here (the services make them); only what a request says.
 */

/** The `POST /events` body, log text whatever its content type, up to `limit`; over it, a 413 saying the limit and the setting. */
export function eventsBody(limit: string): express.RequestHandler {
  // Exported logs come as they are (JSON lines), whatever the content type says.
  const parse = express.text({ type: () => true, limit });
  return (req, res, next) => {
    parse(req, res, (error?: BodyParserError) => {
      sayTooLarge(
        req,
        error,
        (body, max) =>
          `${body} is larger than recovery.events.maxRequestSize (${max} bytes): push the log in smaller parts, or raise that setting`,
      );
      next(error);
    });
  };
}

/** A body parser's refusal of a body over its limit. */
interface BodyParserError {
  type?: string;
  length?: number;
  limit?: number;
  message: string;
}

/**
 * body-parser's "request entity too large" says neither the limit nor what to do about it: where
 * `error` is that refusal, its message is `say`'s, given the body (`Request body of <n> bytes`)
 * and the limit in bytes.
 */
function sayTooLarge(
  req: express.Request,
  error: BodyParserError | undefined,
  say: (body: string, limit: number | undefined) => string,
): void {
  if (error?.type !== 'entity.too.large') return;
  // A compressed body is held to the limit once inflated: its length says nothing of that.
  const inflated = isCompressed(req) ? ' once decompressed' : '';
  error.message = say(
    `Request body${error.length === undefined ? '' : ` of ${error.length} bytes`}${inflated}`,
    error.limit,
  );
}

/** The content type the JSON routes read, said once for the parser and for the refusal of others. */
const JSON_TYPE = 'application/json';

/**
 * The JSON bodies of the POST routes but `POST /events` (a GET's body is not read), up to `limit`.
 * A body of another content type is refused: taken for no body, `fetch` sending a string as
 * text/plain, or `curl -d` as a form, would have POST /analysis analyse every system.
 */
export function jsonOnly(limit: string): express.RequestHandler {
  const parse = express.json({ type: JSON_TYPE, limit });
  return (req, res, next) => {
    if (req.method !== 'POST') {
      next();
      return;
    }
    parse(req, res, (error?: BodyParserError) => {
      sayTooLarge(
        req,
        error,
        (body, max) =>
          `${body} is too large: a JSON body is ${max} bytes at most; check what is sent (a request of this API is a few fields)`,
      );
      // Not req.is() alone: it takes `Content-Length: 0`, which fetch sends with no body, for a body.
      if (!error && hasContent(req) && !req.is(JSON_TYPE)) {
        next(
          new UnsupportedMediaTypeError(
            `Request body must be JSON (Content-Type: application/json), got ${req.headers['content-type'] ?? 'no Content-Type'}`,
          ),
        );
        return;
      }
      next(error);
    });
  };
}

/** `limit` of GET /runs and /captures: 20 when absent, at most 500 (pageLimit). */
export function limitFrom(req: express.Request): number {
  return pageLimit(req.query.limit, 20, 500);
}

/** 415: a request body in a content type, charset or encoding the route does not read. */
export class UnsupportedMediaTypeError extends CustomErrorBase {
  name = 'UnsupportedMediaTypeError' as const;
  // Backstage's error handler maps only the names it knows: this one keeps its status.
  readonly statusCode = 415;
}

/** Whether the request says it has a body: of a length over 0, or chunked. */
function hasContent(req: express.Request): boolean {
  return (
    req.headers['transfer-encoding'] !== undefined ||
    Number(req.headers['content-length']) > 0
  );
}

function isCompressed(req: express.Request): boolean {
  const encoding = req.headers['content-encoding'];
  return encoding !== undefined && encoding.toLowerCase() !== 'identity';
}

/**
 * A body parser's refusal (body-parser's, or zlib's through it) or an undecodable path, as an
 * InputError or UnsupportedMediaTypeError saying what was wrong: theirs carry fields the error
 * handler would serialize (the malformed body echoed back, zlib's errno), and a name no client
 * knows. 413s keep body-parser's documented fields; any other error passes unchanged.
 */
export function asRequestError(error: unknown, req: express.Request): unknown {
  const e = error as {
    status?: unknown;
    expose?: unknown;
    type?: unknown;
    message?: string;
    code?: unknown;
  };
  const refused =
    typeof e?.status === 'number' &&
    e.status >= 400 &&
    e.status < 500 &&
    e.status !== 413;
  if (!refused || !(e.expose === true || error instanceof URIError))
    return error;
  if (error instanceof URIError)
    return new InputError(`path: ${e.message}: not percent-encoded UTF-8`);
  const encoding = req.headers['content-encoding'];
  switch (e.type) {
    case 'entity.parse.failed':
      return new InputError(`Request body must be a JSON object: ${e.message}`);
    case 'charset.unsupported':
      return new UnsupportedMediaTypeError(
        `Request body: ${e.message}; send it as UTF-8`,
      );
    case 'encoding.unsupported':
      return new UnsupportedMediaTypeError(
        `Request body: ${e.message}; send it uncompressed, or with Content-Encoding gzip or deflate`,
      );
    default:
      if (typeof e.code === 'string' && e.code.startsWith('Z_')) {
        return new InputError(
          `Request body could not be decompressed (Content-Encoding ${encoding}): ${e.message}`,
        );
      }
      return new InputError(`Request body: ${e.message}`);
  }
}

/**
 * How far past this backend's clock a pushed event may be dated (on the reference clock where the
 * push holds a reading of its machine's clock, else as its machine's clock dated it). Later, it is
 * refused: stored, it would stay its machine's newest for good (retention keeps the newest), and
 * each analysis would weigh boots against it. A day, so that machines' skews of minutes or hours,
 * which the analysis corrects with clock lines, and local times written as UTC (up to 14 h ahead:
 * UTC+14) are still taken; not silently: those past FUTURE_EVENT_WARNING_MS are warned of in the
 * answer (futureEventWarnings), one warning per machine.
 */
export const FUTURE_EVENT_MARGIN_MS = 86_400_000;

/** The stored source is `api:<source>`, in a varchar(255) column like the names the parser checks. */
const MAX_SOURCE_LENGTH = MAX_NAME_LENGTH - 'api:'.length;

/** Names the pushed events in messages and in the store; 400 for what the store cannot hold. */
export function sourceFrom(value: unknown): string {
  if (value === undefined) return 'request body';
  if (typeof value !== 'string')
    throw new InputError('Query parameter source must be given once');
  // PostgreSQL counts characters (code points) and refuses NUL in text.
  const length = [...value].length;
  if (length === 0 || length > MAX_SOURCE_LENGTH) {
    throw new InputError(
      `Query parameter source must be 1 to ${MAX_SOURCE_LENGTH} characters long, got ${length}`,
    );
  }
  if (value.includes('\0'))
    throw new InputError(
      'Query parameter source must not contain NUL characters',
    );
  // As in a machine's or service's name: a line break or escape would garble each message that
  // names the source (`<source>:<line>: ...`) and each list of the events' sources.
  // eslint-disable-next-line no-control-regex
  if (/[\u0001-\u001f\u007f]/.test(value))
    throw new InputError(
      `Query parameter source must not contain control characters, got ${describeValue(value)}`,
    );
  return value;
}

/** The JSON body, an object (or none: `{}`) of these fields only; anything else is a 400. */
export function bodyFrom(
  req: express.Request,
  fields: string[],
): Record<string, unknown> {
  const body: unknown = req.body ?? {};
  if (typeof body !== 'object' || Array.isArray(body)) {
    throw new InputError(
      `Request body must be a JSON object, got ${describeValue(body)}`,
    );
  }
  // A misspelt field would otherwise be ignored: `Mode: "failover"` would run a test.
  refuseUnknown(Object.keys(body as object), fields, 'Request body', 'field');
  return body as Record<string, unknown>;
}

/** A 400 naming the keys `where` does not take (of `known`, its `noun`s), where there are any. */
export function refuseUnknown(
  keys: string[],
  known: string[],
  where: string,
  noun: string,
): void {
  const unknown = keys.filter(key => !known.includes(key));
  if (unknown.length === 0) return;
  const takes =
    known.length === 0
      ? `it takes no ${noun}s`
      : known.length === 1
        ? `the only ${noun} is ${known[0]}`
        : `the ${noun}s are ${known.join(', ')}`;
  throw new InputError(
    `${where}: unknown ${unknown.map(k => `"${k}"`).join(', ')}; ${takes}`,
  );
}

/**
 * The query parameters a route reads; any other is a 400: a misspelt one would otherwise be
 * ignored, and `GET /runs?entity=…` list every run.
 */
export function query(...names: string[]): express.RequestHandler {
  return (req, _res, next) => {
    const unknown = Object.keys(req.query).filter(key => !names.includes(key));
    if (unknown.length === 0) {
      next();
      return;
    }
    const known =
      names.length === 0 ? 'it takes none' : `it takes ${names.join(', ')}`;
    next(
      new InputError(
        `Unknown query parameter ${unknown.map(k => `"${k}"`).join(', ')} for ${req.method} ${req.baseUrl}${req.path}; ${known}`,
      ),
    );
  };
}

/**
 * `include=plan`: the overview's items with their plans in full, not just their machine counts,
 * for a client that chooses by them (the nightly check reads them in-process).
 */
export function includePlanFrom(value: unknown): boolean {
  if (value === undefined) return false;
  if (value === 'plan') return true;
  throw new InputError(
    `Query parameter include must be "plan" when given, got ${describeValue(value)}`,
  );
}

/** `lenient`: true or false, as `true`/`1` or `false`/`0`; anything else is a 400 rather than strict. */
export function lenientFrom(value: unknown): boolean {
  if (value === undefined || value === 'false' || value === '0') return false;
  if (value === 'true' || value === '1') return true;
  throw new InputError(
    `Query parameter lenient must be true, false, 1 or 0 when given, got ${describeValue(value)}`,
  );
}

/** Only `true` is a test hook; `false` is the default, so it asks for nothing and is always allowed. */
export function reverseBootOrderFrom(value: unknown): {
  reverseBootOrder?: true;
} {
  if (value === undefined || value === false) return {};
  if (value === true) return { reverseBootOrder: true };
  throw new InputError(
    `options.reverseBootOrder must be a boolean, got ${describeValue(value)}`,
  );
}

/**
 * The recovery point of POST /runs, as the instant in UTC; absent: none (the latest captures). A
 * time without its zone (or one that does not exist: what is wrong named), or ahead of this
 * backend's clock (no capture is of it), is a 400.
 */
export function recoveryPointFrom(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const read = typeof value === 'string' ? readRecoveryPoint(value) : undefined;
  if (!read || 'problem' in read) {
    throw new InputError(
      `recoveryPoint must be ${RECOVERY_POINT_FORMAT}, got ${describeValue(value)}${read ? `: ${read.problem}` : ''}`,
    );
  }
  const { point } = read;
  const now = new Date();
  if (Date.parse(point) > now.getTime()) {
    throw new InputError(
      `recoveryPoint ${value} is in the future (the backend's clock reads ${now.toISOString()}): no capture is of it yet`,
    );
  }
  return point;
}

const validators = makeValidator();

/** `kind:namespace/name`, each part at most 63 characters long, as the catalog's validators hold them. */
const MAX_REF_LENGTH = 63 * 3 + 2;

/**
 * An entity ref from the request, normalized; a malformed one is the caller's error (400), named
 * by its field. The parser takes any text after the separators (`bad::ref` parses, as the name
 * `:ref`): its parts are held to what the catalog accepts, or it would just match nothing.
 */
export function refFromInput(
  field: string,
  ref: string,
  defaultKind?: string,
): string {
  // Said without echoing it: a ref of a megabyte would be an error (and an audit record) of two.
  if (ref.length > MAX_REF_LENGTH) {
    throw new InputError(
      `${field}: Entity reference ${describeValue(ref)} is ${ref.length} characters long, longer than the catalog's default limits allow ` +
        `(a kind, namespace and name of at most 63 characters each)`,
    );
  }
  let normalized: string;
  try {
    normalized = normalizeRef(ref, defaultKind);
  } catch (error) {
    throw new InputError(`${field}: ${(error as Error).message}`);
  }
  const { kind, namespace, name } = parseEntityRef(normalized);
  const invalid = [
    validators.isValidKind(kind) ? undefined : `kind "${kind}"`,
    validators.isValidNamespace(namespace)
      ? undefined
      : `namespace "${namespace}"`,
    validators.isValidEntityName(name) ? undefined : `name "${name}"`,
  ].filter(Boolean);
  if (invalid.length > 0) {
    throw new InputError(
      `${field}: Entity reference "${ref}" has an invalid ${invalid.join(' and ')}`,
    );
  }
  return normalized;
}
