/**
 * Parsers of exported logs into initialization events: `jsonl`, `journald`
 * (`journalctl -o json`) and `docker` (`docker events --format '{{json .}}'`). Pure: they work on
 * strings; a line-by-line parser serves huge files.
 */
import { isAscii } from 'node:buffer';
import { StringDecoder } from 'node:string_decoder';
import {
  InitializationEvent,
  IsoTimeOptions,
  MACHINE_LABEL,
  machineLabelName,
  readIsoTime,
  SERVICE_LABEL,
} from '@backstage-recovery/plugin-recovery-common';
import {
  byReadingTime,
  ClockOffset,
  ClockReach,
  MAX_CLOCK_OFFSET,
  MAX_TIME,
  nearestReading,
  offsetText,
  timeText,
} from './clock';

/**
 * A format of exported logs the parsers read.
 *
 * @public
 */
export type EventFormat = 'jsonl' | 'journald' | 'docker';
/**
 * Every {@link EventFormat}.
 *
 * @public
 */
export const EVENT_FORMATS: EventFormat[] = ['jsonl', 'journald', 'docker'];

/**
 * systemd: unit started / unit failed.
 *
 * @public
 */
export const JOURNALD_UNIT_STARTED = '39f53479d3a045ac8e11786248231fbf';
export const JOURNALD_UNIT_FAILED = 'be02cf6855d2428ba40df7e9d022f03d';

/**
 * Options of {@link parseEvents}.
 *
 * @public
 */
export interface ParseOptions {
  /** Forced format; detected otherwise, from the first record that converts without error. */
  format?: EventFormat;
  /** Name of the input (file name) used in messages. */
  source?: string;
  /** Skip malformed lines (counted in `skipped`) instead of failing. */
  lenient?: boolean;
  /**
   * When the input was received (epoch ms) and how far past it (ms) an event may be dated: one
   * later is malformed ({@link parseEvents} only). An event from the future would stay its
   * machine's newest for good, and each analysis would weigh boots against its time. Starts and
   * failures are judged on the reference clock where the input holds a reading of their machine's
   * clock (moved as the analysis moves them), on their own time otherwise; a reading by its
   * `reference`.
   */
  received?: { at: number; marginMs: number };
}

/**
 * A malformed input line: `source:line: message`.
 *
 * @public
 */
export class EventParseError extends Error {
  constructor(
    readonly source: string,
    readonly line: number,
    readonly detail: string,
    /**
     * The message says what else the line is (a pretty-printed record, records whose line breaks
     * were lost, another journalctl output): no other guess at its cause is to be added.
     */
    readonly explained = false,
  ) {
    super(`${source}:${line}: ${detail}`);
    this.name = 'EventParseError';
  }
}

class LineError extends Error {
  constructor(
    message: string,
    readonly explained = false,
  ) {
    super(message);
  }
}

/** What a pretty-printed record or a JSON array needs. */
const ONE_OBJECT_A_LINE =
  "Give one JSON object a line (journalctl -o json, not json-pretty; jq -c, and jq -c '.[]' for an array)";

/**
 * Extended ISO 8601 with a zone as logs write it: a zone of hours alone (`+02`) too, 24:00, the
 * end of a day (as Date.parse reads it), and a space for the `T` (RFC 3339 allows it; GNU `date
 * --rfc-3339` and Python's `str(datetime)` write it), which a recovery point does not take.
 */
const EVENT_TIME: IsoTimeOptions = {
  hoursOnlyZone: true,
  endOfDay: true,
  leapSecond: true,
  spaceSeparator: true,
};

/**
 * Longest machine or service name: the event store keeps them in varchar(255) columns.
 *
 * @public
 */
export const MAX_NAME_LENGTH = 255;

/**
 * Why a clock reading (machine `time`, `reference` clock at the same instant, epoch ms) cannot be
 * applied, else undefined: the parsers refuse such a line, and the analysis leaves out one stored
 * before they did, so that it neither fails nor moves a machine's boots out of reach.
 */
export function clockReadingProblem(
  time: number,
  reference: number,
): string | undefined {
  const offset = reference - time;
  if (!(Math.abs(offset) <= MAX_CLOCK_OFFSET)) {
    const years = (Math.abs(offset) / (365.25 * 86_400_000)).toFixed(0);
    return `a clock reading's 'reference' is ${years} years ${offset > 0 ? 'ahead of' : 'behind'} its 'time': no clock is more than 100 years off (a corrupt value, or a time in another unit?)`;
  }
  return undefined;
}

/**
 * Control characters and line separators as JSON escapes: a message is one line, and must not carry
 * a line's escape sequences to the terminal (JSON.stringify leaves C1 controls such as the 8-bit
 * CSI, and U+2028, as they are).
 */
const escapeControls = (text: string) =>
  text.replace(
    // eslint-disable-next-line no-control-regex
    /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g,
    c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );

/**
 * `raw` as a message shows it: JSON, but a number as JS writes it (JSON has no Infinity); cut short,
 * as a field may hold a whole log line, or megabytes.
 */
function shown(raw: unknown): string | undefined {
  let json: string | undefined;
  try {
    json = typeof raw === 'number' ? String(raw) : JSON.stringify(raw);
  } catch (e) {
    // JSON.parse reads arrays nested 10,000 deep that JSON.stringify has not the stack to write.
    if (!(e instanceof RangeError)) throw e;
    json = `${Array.isArray(raw) ? '[[[' : '{'}… nested too deep to show`;
  }
  if (json === undefined) return undefined;
  json = escapeControls(json);
  return json.length > 80 ? `${json.slice(0, 79)}…` : json;
}

/**
 * A value someone sent (a request body or field, a map file), as an error message names it: its
 * type and its JSON, cut short as it may be a whole body. A string or null is named by its JSON
 * alone, which says what it is: `"yes"`, `null`, `a number (0)`, `a boolean (false)`,
 * `an array (["test"])`, `an object ({"a":1})`; `nothing` for undefined.
 *
 * @public
 */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  const cut = shown(value) ?? String(value);
  if (typeof value === 'string' || value === null) return cut;
  const type = Array.isArray(value)
    ? 'an array'
    : typeof value === 'object'
      ? 'an object'
      : `a ${typeof value}`;
  return `${type} (${cut})`;
}

/**
 * The time (epoch ms) converted from `raw`, refused past the dates a JS Date can hold (a number
 * too large for a double, such as 1e400, is Infinity) and before 1970, in every form the same: no
 * log of a boot is that old, so such a time is a clock that was never set or a wrong unit.
 */
function inRange(ms: number, field: string, raw: unknown): number {
  if (ms < 0) {
    throw new LineError(
      `'${field}' is before 1970 (${shown(raw)}): no boot log is that old; a clock that was never set, or a time in another unit?`,
    );
  }
  if (!(ms <= MAX_TIME)) {
    throw new LineError(
      `'${field}' is out of range (${shown(raw)}): valid times run from 1970 to the year +275760`,
    );
  }
  return ms;
}

/** A high surrogate not followed by a low one, or a low one not after a high one. */
const LONE_SURROGATE =
  /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * What keeps `value` from being a machine or service name, else undefined: the event store must
 * hold it (PostgreSQL counts characters, code points, and refuses NUL) and every list show it.
 */
export function nameProblem(value: string): string | undefined {
  if (value.length > MAX_NAME_LENGTH) {
    const length = [...value].length;
    if (length > MAX_NAME_LENGTH)
      return `is longer than ${MAX_NAME_LENGTH} characters (${length})`;
  }
  if (value.includes('\0')) return 'contains a NUL character';
  if (value.trim() === '') return 'is blank';
  // A line break or escape in a name would garble every list that shows it.
  // eslint-disable-next-line no-control-regex
  if (/[\u0001-\u001f\u007f]/.test(value))
    return 'contains a control character';
  // Half a surrogate pair (a JSON "\ud800", a name cut inside a character by a tool counting
  // UTF-16 units) has no UTF-8 form: the store and every printout would hold U+FFFD instead, a
  // name that matches no catalog entity, unsaid.
  const lone = LONE_SURROGATE.exec(value);
  if (lone) {
    const at = [...value.slice(0, lone.index)].length + 1;
    return `contains a lone UTF-16 surrogate (\\u${lone[0].charCodeAt(0).toString(16)} at character ${at} of ${shown(value)}): UTF-8 has no form for it, so it would be stored and shown as U+FFFD and match no catalog name; a name cut inside a character?`;
  }
  return undefined;
}

function storable(value: string, field: string): string {
  const problem = nameProblem(value);
  if (problem) throw new LineError(`'${field}' ${problem}`);
  return value;
}

/**
 * A time as records and the CLI's `--at` give it, in epoch ms: a number or a string of digits
 * (epoch milliseconds), or extended ISO 8601 with a zone. Refused: other forms, dates that do not
 * exist, times before 1970 and past the dates a JS Date holds. Throws an Error whose message names
 * `field` (`'time'`, `'--at'`).
 *
 * @public
 */
export function parseEventTime(value: unknown, field: string): number {
  if (typeof value === 'number') return epochMs(value, field, value);
  if (typeof value === 'string') {
    if (/^-?\d+$/.test(value)) return epochMs(Number(value), field, value);
    const time = readIsoTime(value, EVENT_TIME);
    if ('ms' in time) return inRange(time.ms, field, value);
    if (time.kind === 'form') {
      throw new LineError(
        `'${field}' must be ISO 8601 with a zone (e.g. 2024-05-01T10:00:00Z) or epoch milliseconds, got ${shown(value)}`,
      );
    }
    throw new LineError(`'${field}' is not a valid date: ${shown(value)}`);
  }
  if (value === undefined || value === null)
    throw new LineError(`missing '${field}'`);
  throw new LineError(
    `'${field}' must be epoch milliseconds or ISO 8601 with a zone, got ${describeValue(value)}`,
  );
}

/** Epoch milliseconds as a record or `--at` gives them, in the range {@link inRange} allows. */
function epochMs(ms: number, field: string, raw: unknown): number {
  // Nanoseconds (Docker's timeNano, Loki, Go's UnixNano) pass every date a Date holds as milliseconds;
  // as nanoseconds, a time of these decades is one.
  if (
    ms > MAX_TIME &&
    ms / 1e6 >= Date.UTC(1973, 0, 1) &&
    ms / 1e6 < Date.UTC(2200, 0, 1)
  ) {
    throw new LineError(
      `'${field}' is out of range (${shown(raw)}) as epoch milliseconds: epoch nanoseconds? As such it is ${new Date(ms / 1e6).toISOString()}; give milliseconds`,
    );
  }
  return inRange(ms, field, raw);
}

function str(o: Record<string, unknown>, field: string): string {
  const v = o[field];
  if (v === undefined || v === null) throw new LineError(`missing '${field}'`);
  // What came instead: a journal's repeated field is an array, a hand-made line's a number.
  if (typeof v !== 'string' || v === '')
    throw new LineError(
      `'${field}' must be a non-empty string, got ${describeValue(v)}`,
    );
  return storable(v, field);
}

/**
 * What to add to the message of a line that is no JSON but the shape of one the input should have
 * been: the first line of a pretty-printed record or of a JSON array; records whose line breaks were
 * lost (`curl -d @FILE` drops them, `--data-binary` keeps them); journalctl's other outputs
 * (json-sse starts each record with `data: `) and its export format. (json-seq's RS before each
 * record is dropped before a line is parsed.)
 */
function notOneObjectALine(line: string): string {
  if (/^\s*[{[]\s*$/.test(line))
    return `: a pretty-printed record or a JSON array? ${ONE_OBJECT_A_LINE}`;
  if (/^\s*\{/.test(line) && /\}\s*\{\s*"/.test(line) && joinedRecords(line)) {
    return ': several records on one line, their line breaks lost? Give one JSON object a line (curl -d @FILE drops line breaks; --data-binary @FILE keeps them)';
  }
  if (/^data: \{/.test(line))
    return ': journalctl -o json-sse (each record after "data: ")? Give journalctl -o json: one JSON object a line';
  if (/^__[A-Z_]+=/.test(line))
    return ': journalctl -o export (FIELD=value lines)? Give journalctl -o json: one JSON object a line';
  return '';
}

/** Whether `line` starts with a whole JSON object that another follows on the same line. */
function joinedRecords(line: string): boolean {
  // A `}` followed by `{"` may end the first record: the text before it parses then. Only the first
  // few are tried, each parse as long as the record: a body of megabytes on one line stays linear.
  let tried = 0;
  for (const m of line.matchAll(/\}\s*(?=\{\s*")/g)) {
    try {
      JSON.parse(line.slice(0, m.index + 1));
      return true;
    } catch {
      // Not the end of the first record: a `}{"` inside a string, or the first record is broken.
    }
    if (++tried === 3) break;
  }
  return false;
}

function parseObject(line: string): Record<string, unknown> {
  let o: unknown;
  try {
    o = JSON.parse(line);
  } catch (e) {
    // NULs, or undecodable bytes where no record starts: not a text file of records at all, and
    // JSON.parse's excerpt of the line would only be garbage. A record with some is a record gone
    // wrong: a last character cut short (a log copied while being written), a byte flipped.
    if (
      line.includes('\u0000') ||
      (line.includes('\uFFFD') && !/^\s*\{/.test(line))
    )
      throw new LineError(
        'invalid JSON: a binary, compressed or UTF-16 file? Give the logs as UTF-8 text',
      );
    const hint = notOneObjectALine(line);
    throw new LineError(
      `invalid JSON (${escapeControls((e as Error).message)})${hint}`,
      hint !== '',
    );
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) {
    throw new LineError(
      `expected a JSON object${Array.isArray(o) ? `, got an array. ${ONE_OBJECT_A_LINE}` : ''}`,
    );
  }
  return o as Record<string, unknown>;
}

/** Detects the format of a parsed record. */
export function detectFormat(record: Record<string, unknown>): EventFormat {
  return recognizedFormat(record) ?? 'jsonl';
}

/**
 * Whether a record is Podman's own JSON (`podman events --format json`): `Status` and `Type` where
 * Docker writes `Action` and `Actor` (and `status`, lower case). Older Podman writes `Time` in
 * RFC 3339; recent Podman (its v5 source) Docker's `time` and `timeNano` instead, which would make
 * it a docker record without `Action`, so irrelevant: a whole export ignored unsaid.
 */
function isPodmanRecord(record: Record<string, unknown>): boolean {
  return (
    typeof record.Status === 'string' &&
    typeof record.Type === 'string' &&
    !('Action' in record) &&
    !('Actor' in record) &&
    !('machine' in record)
  );
}

/** What to add to the error of a Podman record (see {@link isPodmanRecord}). */
const PODMAN_HINT =
  " (a podman events record? Podman's own JSON is no format read here: run docker events --format '{{json .}}' against Podman's Docker-compatible API socket (podman system service), or convert it to jsonl with jq as the recovery CLI's README shows)";

/** Fields of jsonl: a record with none of them (and no other format's) is no attempt at one. */
const JSONL_FIELDS = ['time', 'machine', 'service', 'event', 'reference'];

/** What to add to the error of a record read as jsonl that carries no format's fields. */
const NO_FORMAT_HINT =
  " (a record of none of the formats read: jsonl needs time, machine, service; journald (journalctl -o json) __REALTIME_TIMESTAMP, _HOSTNAME, MESSAGE_ID, UNIT; docker (docker events --format '{{json .}}') timeNano, Action, Actor with the container's name or labels)";

/** The format whose own fields a record carries, else undefined. */
function recognizedFormat(
  record: Record<string, unknown>,
): EventFormat | undefined {
  // jsonl's own fields decide first: it ignores unknown fields, so a line carrying a journal's
  // `_HOSTNAME` or a `timeNano` beside them is still jsonl (neither other format has them).
  if ('time' in record && 'machine' in record) return 'jsonl';
  if (
    '__REALTIME_TIMESTAMP' in record ||
    'MESSAGE_ID' in record ||
    '_HOSTNAME' in record
  )
    return 'journald';
  if (
    'timeNano' in record ||
    ('Actor' in record && ('Action' in record || 'status' in record))
  )
    return 'docker';
  // Engines before Docker 1.10 (API 1.22) sent only these.
  if ('status' in record && 'id' in record && 'from' in record) return 'docker';
  return undefined;
}

function fromJsonl(o: Record<string, unknown>): InitializationEvent[] {
  const event = o.event ?? 'start';
  if (event !== 'start' && event !== 'failure' && event !== 'clock') {
    throw new LineError(
      `unknown event ${shown(event)} (expected start, failure or clock)`,
    );
  }
  const time = parseEventTime(o.time, 'time');
  const machine = str(o, 'machine');
  if (event === 'clock') {
    if (o.reference === undefined || o.reference === null)
      throw new LineError("clock line without 'reference'");
    const reference = parseEventTime(o.reference, 'reference');
    const service =
      typeof o.service === 'string' && o.service.trim() !== ''
        ? storable(o.service, 'service')
        : '';
    const problem = clockReadingProblem(time, reference);
    if (problem) throw new LineError(problem);
    return [{ time, machine, service, type: 'clock', reference }];
  }
  // A clock reading whose `event` was left out reads as a start without a service.
  if (
    o.event === undefined &&
    o.service === undefined &&
    o.reference !== undefined
  ) {
    throw new LineError(
      `missing 'service' (a clock line? It needs "event": "clock")`,
    );
  }
  return [{ time, machine, service: str(o, 'service'), type: event }];
}

function fromJournald(o: Record<string, unknown>): InitializationEvent[] {
  const id = o.MESSAGE_ID;
  // A field given more than once is an array: one that holds a unit's start or failure is no
  // record to skip unsaid, and which of its IDs it is, no record says.
  if (
    Array.isArray(id) &&
    (id.includes(JOURNALD_UNIT_STARTED) || id.includes(JOURNALD_UNIT_FAILED))
  ) {
    throw new LineError(
      `'MESSAGE_ID' must be a string, got an array (a repeated field): ${shown(id)}`,
    );
  }
  if (id !== JOURNALD_UNIT_STARTED && id !== JOURNALD_UNIT_FAILED) return [];
  const unitField =
    o.UNIT === undefined || o.UNIT === null ? 'USER_UNIT' : 'UNIT';
  const unit = o[unitField];
  if (unit !== undefined && unit !== null && typeof unit !== 'string') {
    throw new LineError(
      `'${unitField}' must be a string, got ${Array.isArray(unit) ? 'an array (a repeated field, or bytes journalctl could not print as text)' : typeof unit}`,
    );
  }
  if (typeof unit !== 'string' || unit === '')
    throw new LineError("unit record without 'UNIT'");
  storable(unit, unitField);
  const machine = str(o, '_HOSTNAME');
  const us = o.__REALTIME_TIMESTAMP;
  if (us === undefined) throw new LineError("missing '__REALTIME_TIMESTAMP'");
  if (!(typeof us === 'string' && /^\d+$/.test(us)) && typeof us !== 'number') {
    throw new LineError(
      "'__REALTIME_TIMESTAMP' must be microseconds since the epoch",
    );
  }
  const time = inRange(Number(us) / 1000, '__REALTIME_TIMESTAMP', us);
  // Converted by hand from another log's nanoseconds, a time of these decades lands past 2200.
  if (
    time >= Date.UTC(2200, 0, 1) &&
    Number(us) / 1e6 >= Date.UTC(1973, 0, 1) &&
    Number(us) / 1e6 < Date.UTC(2200, 0, 1)
  ) {
    throw new LineError(
      `'__REALTIME_TIMESTAMP' is in the year ${new Date(time).getUTCFullYear()} as microseconds (${shown(us)}): epoch nanoseconds? As such it is ${new Date(Number(us) / 1e6).toISOString()}; journalctl -o json gives microseconds`,
    );
  }
  return [
    {
      time,
      machine,
      service: unit,
      type: id === JOURNALD_UNIT_STARTED ? 'start' : 'failure',
    },
  ];
}

/**
 * A container event gives one initialization per service its `recovery.backstage-recovery.io/service`
 * label names: a container may run several (`database, files`), comma separated.
 */
function fromDocker(o: Record<string, unknown>): InitializationEvent[] {
  const type = o.Type ?? o.type;
  if (type !== undefined && type !== 'container') return [];
  const action = o.Action ?? o.status;
  if (action !== 'start' && action !== 'die') return [];
  const actor = o.Actor as { Attributes?: Record<string, unknown> } | undefined;
  const attrs = (actor && typeof actor === 'object' && actor.Attributes) || {};
  if (action === 'die') {
    const code = attrs.exitCode;
    if (code === undefined || code === null) return [];
    // Docker gives a string of digits (negative on Windows); anything else (an empty string, a word,
    // an object) is no exit status, and would pass for a failure unsaid. `00` is 0 as well.
    const status =
      typeof code === 'string' && /^-?\d+$/.test(code)
        ? Number(code)
        : typeof code === 'number' && Number.isInteger(code)
          ? code
          : undefined;
    if (status === undefined)
      throw new LineError(
        `'exitCode' must be the container's exit status, got ${describeValue(code)}`,
      );
    if (status === 0) return [];
  }
  const name =
    typeof attrs.name === 'string' && attrs.name ? attrs.name : undefined;
  const label = attrs[SERVICE_LABEL];
  const labelled =
    typeof label === 'string'
      ? label
          .split(',')
          .map(s => s.trim())
          .filter(Boolean)
      : [];
  // A label of only commas and blanks names no service: fall back to the container name.
  const services = labelled.length > 0 ? labelled : name ? [name] : [];
  const machineLabelled =
    typeof attrs[MACHINE_LABEL] === 'string' && attrs[MACHINE_LABEL] !== '';
  // `resource:web-01` and `resource:default/web-01` are one machine, kept as the ref they name.
  const machine = machineLabelled
    ? machineLabelName(attrs[MACHINE_LABEL] as string)
    : name;
  if (services.length === 0 || !machine) {
    // Engines before Docker 1.10 sent no Actor, so neither name nor labels. A service label without
    // a container name still needs the machine label.
    const missing =
      services.length === 0
        ? 'a service label'
        : `a machine label (${MACHINE_LABEL})`;
    throw new LineError(
      `container event without ${missing} or container name${o.Actor === undefined ? " (no 'Actor': a Docker engine before 1.10?)" : ''}`,
    );
  }
  storable(machine, machineLabelled ? MACHINE_LABEL : 'name');
  for (const service of services)
    storable(service, labelled.length > 0 ? SERVICE_LABEL : 'name');
  let time: number;
  // A number out of range or negative is refused below, as in every format.
  if (typeof o.timeNano === 'number') time = o.timeNano / 1e6;
  else if (typeof o.timeNano === 'string' && /^\d+$/.test(o.timeNano))
    time = Number(o.timeNano) / 1e6;
  // Older exports and hand-trimmed ones carry only `time`, in whole seconds.
  else if (o.timeNano === undefined && typeof o.time === 'number')
    time = o.time * 1000;
  else if (o.timeNano === undefined)
    throw new LineError(
      o.time === undefined
        ? "missing 'timeNano'"
        : "missing 'timeNano', and 'time' is no count of seconds since the epoch",
    );
  else throw new LineError("'timeNano' must be nanoseconds since the epoch");
  inRange(
    time,
    o.timeNano === undefined ? 'time' : 'timeNano',
    o.timeNano ?? o.time,
  );
  const kind = action === 'start' ? 'start' : 'failure';
  return services.map(service => ({ time, machine, service, type: kind }));
}

/**
 * Valid JSON in the shape of a `journalctl -o json` record: an object whose keys are journal field
 * names (upper case, digits and `_`, as journald stores no other) and whose values are strings,
 * numbers, booleans, null or flat arrays of strings and numbers (binary and repeated fields). One
 * linear regex scan is several times cheaper than JSON.parse; a line it does not match is parsed:
 * a jsonl line's lower-case `time` and `machine` are looked at.
 */
const WELL_FORMED_RECORD = (() => {
  const ws = String.raw`[ \t]*`;
  const string = String.raw`"[^"\\\x00-\x1f]*(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*)*"`;
  const number = String.raw`-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?`;
  const item = `(?:${string}|${number})`;
  const array = String.raw`\[${ws}(?:${item}${ws}(?:,${ws}${item}${ws})*)?\]`;
  const member = `"[A-Z0-9_]+"${ws}:${ws}(?:${string}|${number}|true|false|null|${array})${ws}`;
  return new RegExp(
    String.raw`^${ws}\{${ws}${member}(?:,${ws}${member})*\}${ws}$`,
  );
})();

/**
 * Whether {@link WELL_FORMED_RECORD} matches `line`; false where the scan cannot finish: each item
 * of an array takes room on the regex engine's stack, and a binary field of megabytes (a core dump
 * exported with `journalctl -o json --all`) exhausts it. JSON.parse then reads the line.
 */
function wellFormedRecord(line: string): boolean {
  try {
    return WELL_FORMED_RECORD.test(line);
  } catch (e) {
    if (e instanceof RangeError) return false;
    throw e;
  }
}

/** Each format's converter: a record's initialization events, none for an irrelevant record. */
const CONVERTERS: Record<
  EventFormat,
  (o: Record<string, unknown>) => InitializationEvent[]
> = {
  jsonl: fromJsonl,
  journald: fromJournald,
  docker: fromDocker,
};

/**
 * Events of one input whose service or machine held bytes that were not UTF-8: how many, and the first.
 *
 * @public
 */
export interface UndecodableNames {
  source: string;
  line: number;
  name: string;
  events: number;
}

/**
 * One warning for the names a wrong encoding garbled, over all inputs (none without any): they
 * match neither the catalog nor the map, so their services would be analysed apart, unsaid.
 *
 * @public
 */
export function undecodableNamesWarning(found: UndecodableNames[]): string[] {
  if (found.length === 0) return [];
  const [first] = found;
  const events = found.reduce((sum, f) => sum + f.events, 0);
  return [
    `${first.source}:${first.line}: ${events} event${events === 1 ? ' names' : 's'}${found.length > 1 ? ` in ${found.length} files` : ''}${events === 1 ? '' : ' name'} a service or machine with bytes that are not UTF-8 ` +
      `(first ${JSON.stringify(first.name)}, \uFFFD marks each undecodable sequence); an export in another encoding, e.g. Windows-1252? ` +
      'Convert it first: iconv -f WINDOWS-1252 -t UTF-8',
  ];
}

/**
 * Per journald `_HOSTNAME`, each `_MACHINE_ID` its unit records carry and where it was first seen.
 *
 * @public
 */
export type HostMachineIds = Map<
  string,
  Map<string, { source: string; line: number }>
>;

/**
 * One warning for each journald `_HOSTNAME` that unit records of several `_MACHINE_ID`s carry, over
 * all inputs: hosts left with a default name (`localhost`) would be analysed as one machine, unsaid.
 *
 * @public
 */
export function sharedHostnamesWarnings(found: HostMachineIds[]): string[] {
  const merged: HostMachineIds = new Map();
  for (const hosts of found) {
    for (const [host, ids] of hosts) {
      const all = merged.get(host) ?? new Map();
      merged.set(host, all);
      for (const [id, at] of ids) if (!all.has(id)) all.set(id, at);
    }
  }
  return [...merged.keys()]
    .filter(host => merged.get(host)!.size > 1)
    .sort()
    .map(host => {
      const ids = [...merged.get(host)!];
      const firstIds = ids
        .slice(0, 3)
        .map(([id, at]) => `${id} at ${at.source}:${at.line}`);
      return (
        `_HOSTNAME ${JSON.stringify(host)} names ${ids.length} machines (_MACHINE_ID ${firstIds.join(', ')}${ids.length > 3 ? ', …' : ''}): ` +
        `their events are analysed as one machine's. Several hosts, or one reinstalled? Give each host a name of its own, or each host's export (jq -c '._HOSTNAME = "web-01"')`
      );
    });
}

/**
 * Line-by-line parser for one input: feed every line (without its newline) in order.
 * `push` returns the event of the line, or null for empty, irrelevant or (lenient) malformed lines;
 * throws an {@link EventParseError} on a malformed line unless lenient.
 *
 * @public
 */
export class EventLineParser {
  readonly source: string;
  readonly lenient: boolean;
  private detected?: EventFormat;
  /** Line of the record the format was detected from; undefined where it was forced. */
  private detectedAt?: number;
  /** Lines seen so far. */
  lines = 0;
  /** Malformed lines skipped (lenient). */
  skipped = 0;
  /** Well-formed records that are not initialization events (e.g. other journald messages). */
  ignored = 0;
  /** Events returned. */
  events = 0;
  /** Events naming a service or machine with U+FFFD, the decoder's mark for bytes that were not UTF-8. */
  private undecodable?: UndecodableNames;
  /** journald: the machines each `_HOSTNAME` names (in {@link sharedHostnamesWarnings}). */
  readonly hostMachineIds: HostMachineIds = new Map();

  constructor(options: ParseOptions = {}) {
    this.source = options.source ?? '<input>';
    this.lenient = options.lenient ?? false;
    if (
      options.format !== undefined &&
      !EVENT_FORMATS.includes(options.format)
    ) {
      throw new Error(
        `unknown format '${options.format}' (expected ${EVENT_FORMATS.join(', ')})`,
      );
    }
    this.detected = options.format;
  }

  /** The format used (forced or detected); undefined before the first record that converts. */
  get format(): EventFormat | undefined {
    return this.detected;
  }

  /** The events whose names held bytes that were not UTF-8 (in {@link undecodableNamesWarning}). */
  get undecodableNames(): UndecodableNames | undefined {
    return this.undecodable && { ...this.undecodable };
  }

  /** The events of the line: none, or one per service it names (docker service label lists). */
  push(line: string): InitializationEvent[] {
    this.lines++;
    let trimmed =
      line.charCodeAt(line.length - 1) === 13 ? line.slice(0, -1) : line;
    // A byte-order mark (editors and Windows tools write one) is no part of a record; files joined
    // with `cat` carry theirs into later lines. Every one: a tool that adds its own before the one
    // it read leaves two, and POST /events's body decoder drops the first (the CLI reads the bytes alike).
    if (trimmed.charCodeAt(0) === 0xfeff)
      trimmed = trimmed.replace(/^\uFEFF+/, '');
    // A JSON text sequence (RFC 7464: `journalctl -o json-seq`, `jq --seq`) puts an RS before each
    // record, which is otherwise the record -o json gives; RFC 7464 lets several RS stand together.
    let rs = 0;
    while (trimmed.charCodeAt(rs) === 0x1e) rs++;
    if (rs > 0) trimmed = trimmed.slice(rs);
    if (trimmed.trim() === '') return [];
    if (
      this.detected === 'journald' &&
      !trimmed.includes(JOURNALD_UNIT_STARTED) &&
      !trimmed.includes(JOURNALD_UNIT_FAILED) &&
      wellFormedRecord(trimmed)
    ) {
      // Most of a journal is other messages: a record without either MESSAGE_ID is no
      // initialization event, and once known to be valid JSON it needs no parsing.
      this.ignored++;
      return [];
    }
    let o: Record<string, unknown> | undefined;
    let format: EventFormat | undefined;
    try {
      o = parseObject(trimmed);
      // The format is fixed by the first record that converts: a malformed one skipped (lenient)
      // before a journal's records says nothing of the file's format.
      format = this.detected ?? detectFormat(o);
      const events = CONVERTERS[format](o);
      // Podman's records convert to nothing in every format: a whole export would be ignored.
      if (events.length === 0 && isPodmanRecord(o))
        throw new LineError(`not a ${format} record`);
      if (this.detected === undefined) {
        this.detected = format;
        this.detectedAt = this.lines;
      }
      // A record with another format's own fields reads as nothing in this one: jsonl clock lines
      // appended to a journal would be lost, unsaid, and with them the machine's skew.
      if (events.length === 0 && (recognizedFormat(o) ?? format) !== format)
        throw new LineError(`not a ${format} record`);
      if (events.length === 0) this.ignored++;
      else if (format === 'journald')
        this.noteMachineId(events[0].machine, o._MACHINE_ID);
      this.events += events.length;
      for (const e of events) {
        const name = e.service.includes('\uFFFD')
          ? e.service
          : e.machine.includes('\uFFFD')
            ? e.machine
            : undefined;
        if (name === undefined) continue;
        if (this.undecodable) this.undecodable.events++;
        else
          this.undecodable = {
            source: this.source,
            line: this.lines,
            name,
            events: 1,
          };
      }
      return events;
    } catch (err) {
      if (!(err instanceof LineError)) throw err;
      if (this.lenient) {
        this.skipped++;
        return [];
      }
      throw new EventParseError(
        this.source,
        this.lines,
        err.message + (o ? this.otherFormat(o, format) : ''),
        err.explained,
      );
    }
  }

  private noteMachineId(host: string, id: unknown): void {
    if (typeof id !== 'string') return;
    let ids = this.hostMachineIds.get(host);
    if (!ids) this.hostMachineIds.set(host, (ids = new Map()));
    if (!ids.has(id)) ids.set(id, { source: this.source, line: this.lines });
  }

  /**
   * What to add to the error of a record that carries another format's fields: a file that mixes
   * formats, or one forced into the wrong one, fails on fields its records never have. A Podman
   * record is named as such, with how to give its events; one read as jsonl (`format`) that has no
   * format's fields at all, with the fields each format needs.
   */
  private otherFormat(
    record: Record<string, unknown>,
    format: EventFormat | undefined,
  ): string {
    if (isPodmanRecord(record)) return PODMAN_HINT;
    const seen = recognizedFormat(record);
    if (
      seen === undefined &&
      format === 'jsonl' &&
      !JSONL_FIELDS.some(field => field in record)
    )
      return NO_FORMAT_HINT;
    if (
      this.detected === undefined ||
      seen === undefined ||
      seen === this.detected
    )
      return '';
    const why =
      this.detectedAt === undefined
        ? 'the format given'
        : `detected from its line ${this.detectedAt}`;
    return ` (a ${seen} record? This input is read as ${this.detected}, ${why}: one format a file)`;
  }
}

/**
 * What {@link parseEvents} read: the events, and counts of the lines skipped or ignored.
 *
 * @public
 */
export interface ParseResult {
  events: InitializationEvent[];
  /** Malformed lines skipped (lenient). */
  skipped: number;
  /** Irrelevant records. */
  ignored: number;
  /** Format used; undefined for an input without records. */
  format?: EventFormat;
  /**
   * What the records do not say themselves: names that were not UTF-8 ({@link undecodableNamesWarning}),
   * a hostname several machines share ({@link sharedHostnamesWarnings}).
   */
  warnings: string[];
}

/**
 * What a {@link LineSplitter} does with a line longer than its `maxLength`.
 *
 * @public
 */
export type OverLongLine =
  /** Refuses the input: throws the Error made for the line's number, as soon as the line passes the limit. */
  | { throw: (line: number) => Error }
  /** Skips the line and goes on: told its length and number once its end is read. */
  | { drop: (length: number, line: number) => void };

/**
 * Options of a {@link LineSplitter}.
 *
 * @public
 */
export interface LineSplitterOptions {
  /**
   * Longest line, in UTF-16 units (default: no limit). Checked as the line grows, so a line
   * without end (a file without line breaks, a broken stream) is never held whole.
   */
  maxLength?: number;
  /** What becomes of a longer line; default: an Error naming its number is thrown. */
  tooLong?: OverLongLine;
}

/**
 * Splits text into lines on `\n` (a `\r` before it stays, for {@link EventLineParser} to drop),
 * whole or fed in chunks as a stream reads them, and hands each line to `onLine`; after the last
 * `\n` a line follows only where text does. Chunks are split by index: readline's per-line events
 * and promises cost as much as a journal's parsing. A line longer than a chunk is kept in pieces,
 * joined once at its end: joining and searching the whole line again for each chunk took
 * quadratic time. Chunks may be UTF-8 bytes instead of text: a character cut between two chunks
 * is decoded whole (decoding each chunk alone would turn it into replacement characters).
 *
 * @public
 */
export class LineSplitter {
  /** Lines read so far, dropped ones included. */
  lines = 0;
  private readonly maxLength: number;
  private readonly tooLong: OverLongLine;
  /** Pieces of the unfinished line; none once it is past the limit, as it is being dropped. */
  private pending: string[] = [];
  /** Length of the unfinished line so far; 0 where the next chunk starts a line. */
  private pendingLength = 0;
  private decoder?: StringDecoder;
  /** The decoder may hold the start of a character: the last chunk it was given ended in a non-ASCII byte. */
  private decoderMayHold = false;

  constructor(
    private readonly onLine: (line: string) => void,
    options: LineSplitterOptions = {},
  ) {
    const maxLength = options.maxLength ?? Infinity;
    this.maxLength = maxLength;
    this.tooLong = options.tooLong ?? {
      throw: line =>
        new Error(`line ${line} is longer than ${maxLength} characters`),
    };
  }

  /** Feeds the next chunk: text, or bytes of UTF-8 text (one or the other for a whole input). */
  push(chunk: string | Uint8Array): void {
    const text = typeof chunk === 'string' ? chunk : this.decode(chunk);
    const onLine = this.onLine;
    const max = this.maxLength;
    let start = 0;
    for (
      let end = text.indexOf('\n');
      end >= 0;
      end = text.indexOf('\n', start)
    ) {
      // The common line, whole in this chunk and within the limit, goes on at once.
      if (this.pendingLength === 0 && end - start <= max)
        onLine(text.slice(start, end));
      else this.endPending(text.slice(start, end));
      this.lines++;
      start = end + 1;
    }
    if (start < text.length) this.hold(text.slice(start));
  }

  /**
   * Text of a chunk of UTF-8 bytes. A chunk all ASCII, with no character of the last one still to
   * finish, is the same text read as Latin-1, which takes a fifth of the time: most logs are ASCII
   * throughout.
   */
  private decode(bytes: Uint8Array): string {
    if (!this.decoderMayHold && isAscii(bytes))
      return Buffer.from(
        bytes.buffer,
        bytes.byteOffset,
        bytes.byteLength,
      ).toString('latin1');
    const text = (this.decoder ??= new StringDecoder('utf8')).write(bytes);
    if (bytes.length) this.decoderMayHold = bytes[bytes.length - 1] >= 0x80;
    return text;
  }

  /** The input's end: hands on the last line where it has no `\n`. */
  end(): void {
    const rest = this.decoder?.end();
    if (rest) this.push(rest);
    if (this.pendingLength === 0) return;
    this.endPending('');
    this.lines++;
  }

  /** Keeps the start of a line the next chunk goes on with; past the limit, only its length. */
  private hold(piece: string): void {
    this.pendingLength += piece.length;
    if (this.pendingLength <= this.maxLength) {
      this.pending.push(piece);
    } else {
      this.pending = [];
      if ('throw' in this.tooLong) throw this.tooLong.throw(this.lines + 1);
    }
  }

  /** Ends the unfinished line with `piece`: hands it on, or it is over-long. */
  private endPending(piece: string): void {
    const length = this.pendingLength + piece.length;
    const pieces = this.pending;
    this.pending = [];
    this.pendingLength = 0;
    if (length <= this.maxLength) {
      pieces.push(piece);
      this.onLine(pieces.join(''));
    } else if ('throw' in this.tooLong) {
      throw this.tooLong.throw(this.lines + 1);
    } else {
      this.tooLong.drop(length, this.lines + 1);
    }
  }
}

/**
 * `events` (all those `reach` was told of, from every input) without the starts and failures their
 * machine's clock reading moves past the dates a Date holds: a malformed line each, as the
 * analysis could place them on no clock. Unless `lenient`, the first in input order is thrown as
 * the {@link EventParseError} of its line; else they are left out, with how many lines that skips.
 *
 * @public
 */
export function withinClockReach(
  reach: ClockReach,
  events: InitializationEvent[],
  lenient: boolean,
): { events: InitializationEvent[]; skipped: number } {
  const found = reach.outOfReach();
  if (found.length === 0) return { events, skipped: 0 };
  const [first] = found;
  if (!lenient)
    throw new EventParseError(
      first.origin.source,
      first.origin.line,
      first.message,
    );
  const gone = new Set(found.map(f => f.event));
  // A docker line gives one event per service it names: the line is skipped once.
  const lines = new Set(
    found.map(f => `${f.origin.line}\u0000${f.origin.source}`),
  );
  return { events: events.filter(e => !gone.has(e)), skipped: lines.size };
}

/** A span of ms as a margin is given: `1 day`, `2 days`, `12 h`. */
const marginText = (ms: number) =>
  ms % 86_400_000 === 0
    ? `${ms / 86_400_000} day${ms === 86_400_000 ? '' : 's'}`
    : `${ms / 3_600_000} h`;

/**
 * `events` without those dated more than `marginMs` past `at` (see ParseOptions.received): unless
 * `lenient`, the first in input order is thrown as the {@link EventParseError} of its line; else
 * they are left out, their lines counted in `skipped` (added to `skippedBefore`).
 */
function notAfterReceived(
  events: InitializationEvent[],
  lineOf: Map<InitializationEvent, number>,
  { at, marginMs }: { at: number; marginMs: number },
  source: string,
  lenient: boolean,
  skippedBefore: number,
): { events: InitializationEvent[]; skipped: number } {
  const latest = at + marginMs;
  const past = `more than ${marginText(marginMs)} after it was received (${timeText(at)})`;
  const found: Array<{ event: InitializationEvent; message: string }> = [];
  // A reading taken in the future is no reading; the others move their machine's events.
  const readings = new Map<string, Array<ClockOffset & { line: number }>>();
  for (const e of events) {
    if (e.type !== 'clock' || typeof e.reference !== 'number') continue;
    if (e.reference > latest) {
      found.push({
        event: e,
        message: `the clock reading's 'reference' ${timeText(e.reference)} is ${past}: a reading is never taken in the future`,
      });
      continue;
    }
    let list = readings.get(e.machine);
    if (!list) readings.set(e.machine, (list = []));
    list.push({
      time: e.time,
      offset: e.reference - e.time,
      line: lineOf.get(e)!,
    });
  }
  const sorted = new Map(
    [...readings].map(([machine, list]) => {
      list.sort(byReadingTime);
      return [
        machine,
        { list, times: Float64Array.from(list, r => r.time) },
      ] as const;
    }),
  );
  for (const e of events) {
    if (e.type === 'clock') continue;
    const machine = sorted.get(e.machine);
    const reading =
      machine && machine.list[nearestReading(machine.times, e.time)];
    const moved = reading ? e.time + reading.offset : e.time;
    if (!(moved > latest)) continue;
    found.push({
      event: e,
      message: reading
        ? `its time ${timeText(e.time)} (machine time) is ${timeText(moved)} once moved by ${offsetText(reading.offset)}, the offset of ${e.machine}'s clock from its reading at line ${reading.line}: ${past}; an event from the future would stay ${e.machine}'s newest for good`
        : `its time ${timeText(e.time)} is ${past}: an event from the future would stay ${e.machine}'s newest for good. Is ${e.machine}'s clock ahead? Push a reading of it (a clock line) with its events, and its events are moved by its offset`,
    });
  }
  if (found.length === 0) return { events, skipped: skippedBefore };
  found.sort((a, b) => lineOf.get(a.event)! - lineOf.get(b.event)!);
  if (!lenient)
    throw new EventParseError(
      source,
      lineOf.get(found[0].event)!,
      found[0].message,
    );
  const gone = new Set(found.map(f => f.event));
  // A docker line gives one event per service it names: the line is skipped once.
  const lines = new Set(found.map(f => lineOf.get(f.event)!));
  return {
    events: events.filter(e => !gone.has(e)),
    skipped: skippedBefore + lines.size,
  };
}

/**
 * Parses a whole text (one record a line).
 *
 * @public
 */
export function parseEvents(
  text: string,
  options: ParseOptions = {},
): ParseResult {
  const parse = wholeTextParse(options);
  parse.push(text);
  return parse.end();
}

/**
 * Characters {@link parseEventsYielding} parses between two yields: about a thousand lines of
 * logs, a few ms of work.
 */
const YIELD_CHARACTERS = 128 * 1024;

/**
 * Parses a whole text as {@link parseEvents} does, a slice of it at a time, yielding to the event
 * loop between slices: a server parsing a pushed log of megabytes goes on serving meanwhile (its
 * health checks, a running recovery's timing) instead of stalling for seconds.
 *
 * @public
 */
export async function parseEventsYielding(
  text: string,
  options: ParseOptions = {},
): Promise<ParseResult> {
  const parse = wholeTextParse(options);
  for (let at = 0; at < text.length; at += YIELD_CHARACTERS) {
    if (at > 0) await new Promise(setImmediate);
    // A line (or a character) cut between two slices is joined again by the LineSplitter.
    parse.push(text.slice(at, at + YIELD_CHARACTERS));
  }
  return parse.end();
}

/** The parsing of a whole text, fed in one or more pieces: `end` gives its result. */
function wholeTextParse(options: ParseOptions): {
  push: (text: string) => void;
  end: () => ParseResult;
} {
  const parser = new EventLineParser(options);
  const reach = new ClockReach();
  const all: InitializationEvent[] = [];
  // Each event's line, for those dated past `received` (only then kept).
  const lineOf = options.received
    ? new Map<InitializationEvent, number>()
    : undefined;
  const lines = new LineSplitter(line => {
    for (const e of parser.push(line)) {
      reach.note(e, parser.source, parser.lines);
      lineOf?.set(e, parser.lines);
      all.push(e);
    }
  });
  return {
    push: text => lines.push(text),
    end: () => {
      lines.end();
      // Only now: a clock reading may come after the events it applies to.
      const reached = withinClockReach(reach, all, parser.lenient);
      const { events, skipped } = options.received
        ? notAfterReceived(
            reached.events,
            lineOf!,
            options.received,
            parser.source,
            parser.lenient,
            reached.skipped,
          )
        : reached;
      const garbled = parser.undecodableNames;
      const warnings = [
        ...undecodableNamesWarning(garbled ? [garbled] : []),
        ...sharedHostnamesWarnings([parser.hostMachineIds]),
      ];
      return {
        events,
        skipped: parser.skipped + skipped,
        ignored: parser.ignored,
        format: parser.format,
        warnings,
      };
    },
  };
}
