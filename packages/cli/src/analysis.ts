/**
 * `recovery analyze` offline: reading exported logs into initialization events, running the
 * dependency analysis on them, and the summary it prints.
 */
import { constants as fsConstants, createReadStream, promises as fs } from 'fs';
import {
  formatScore,
  parseDurationSeconds,
  type InitializationEvent,
} from '@backstage-recovery/plugin-recovery-common';
import {
  analyzeDependencies,
  AnalysisInputError,
  ClockReach,
  AnalysisResult,
  checkBootDurations,
  compileServiceMap,
  parseKernelShape,
  parsePlainDecimal,
  EventFormat,
  EventLineParser,
  EventParseError,
  KernelOptions,
  kernelPeakProblem,
  LineSplitter,
  NoStartEventsError,
  parseEventTime,
  ServiceMap,
  ServiceMapper,
  counted,
  HostMachineIds,
  sharedHostnamesWarnings,
  undecodableNamesWarning,
  UndecodableNames,
  withinClockReach,
} from '@backstage-recovery/plugin-recovery-node';
import { InputError } from './cli';

export interface ReadResult {
  events: InitializationEvent[];
  skipped: number;
  ignored: number;
  lines: number;
  formats: Record<string, EventFormat | undefined>;
  /** What the files' records do not say themselves (names that are not UTF-8, a hostname several machines share). */
  warnings: string[];
}

const PROGRESS_EVERY = 250_000;
/** A longer line (in UTF-16 units) is no record: most often a file without line breaks. */
const MAX_LINE = 64 * 1024 * 1024;

/**
 * Streams a file's lines (split on `\n` by the splitter that splits an API body) to `onLine`, in
 * chunks of 1 MiB.
 */
async function forEachLine(
  file: string,
  onLine: (line: string) => void,
): Promise<void> {
  // Bytes: the splitter decodes them, ASCII much faster than a stream's decoder.
  const input =
    file === STDIN
      ? process.stdin
      : createReadStream(file, { highWaterMark: 1 << 20 });
  const shown = shownName(file);
  const lines = new LineSplitter(onLine, {
    maxLength: MAX_LINE,
    tooLong: {
      throw: line =>
        new InputError(
          `${shown}:${line}: line longer than ${MAX_LINE / 1024 / 1024} MiB (a file without line breaks: binary or compressed?)`,
        ),
    },
  });
  try {
    for await (const chunk of input) lines.push(chunk as Buffer | string);
  } catch (e) {
    // The file's own read failing (a disk error, a file removed after it was looked at) is named
    // with the file, as one that cannot be opened is; a line's errors pass on as they are.
    const error = e as NodeJS.ErrnoException;
    if (error.syscall !== undefined)
      throw new InputError(
        `${shown}: cannot read file (${error.code ?? error.message})`,
      );
    throw e;
  }
  try {
    lines.end();
  } catch (e) {
    // Only a last line without its line end is handed on here: a log copied while it was being
    // written ends in half a record. Not where the parser said what else the line is (records whose
    // line breaks were lost, a pretty-printed record).
    if (
      e instanceof EventParseError &&
      e.detail.startsWith('invalid JSON (') &&
      !e.explained
    ) {
      throw new InputError(
        `${e.message}: the last line, without a line end; a log copied while it was still being written?`,
      );
    }
    throw e;
  }
}

/** `-` is standard input, as for other Unix tools: `journalctl -o json | recovery analyze -`. */
const STDIN = '-';
/** A file as messages name it. */
const shownName = (file: string) => (file === STDIN ? 'stdin' : file);

/** Reads files line by line (streaming), parsing each with its own (detected or forced) format. */
export async function readEventFiles(
  files: string[],
  options: {
    format?: EventFormat;
    lenient?: boolean;
    onProgress?: (file: string, lines: number) => void;
    progressEvery?: number;
    /** The `--map`: a start or failure whose service it maps to no valid name stops the run at its line. */
    map?: ServiceMapper;
  },
): Promise<ReadResult> {
  const map = options.map;
  const every = options.progressEvery ?? PROGRESS_EVERY;
  const events: InitializationEvent[] = [];
  // A machine's clock readings may come after its events, or in another file.
  const reach = new ClockReach();
  let skipped = 0;
  let ignored = 0;
  let lines = 0;
  const formats: Record<string, EventFormat | undefined> = {};
  const undecodable: UndecodableNames[] = [];
  const hostMachineIds: HostMachineIds[] = [];
  const eventless: string[] = [];
  if (files.filter(f => f === STDIN).length > 1)
    throw new InputError(
      `${STDIN} (standard input) given twice: it can be read once`,
    );
  // Every file is looked at before any is read: a missing one or a directory at the end of a glob
  // stops the run at once, not after the gigabytes before it.
  for (const path of files) {
    if (path === STDIN) continue;
    let stat;
    try {
      stat = await fs.stat(path);
      await fs.access(path, fsConstants.R_OK);
    } catch (e) {
      throw new InputError(
        `${path}: cannot read file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      );
    }
    // A FIFO too: `<(zcat journal.json.gz)`.
    if (!stat.isFile() && !stat.isFIFO())
      throw new InputError(
        `${path}: not a file (give the log files themselves)`,
      );
  }
  for (const path of files) {
    const file = shownName(path);
    const before = events.length;
    const parser = new EventLineParser({
      format: options.format,
      source: file,
      lenient: options.lenient,
    });
    await forEachLine(path, line => {
      // A docker service label may name several services: one event each.
      for (const e of parser.push(line)) {
        if (map && e.type !== 'clock') {
          const problem = map.problem(e.service);
          if (problem)
            throw new InputError(`${file}:${parser.lines}: ${problem}`);
        }
        reach.note(e, file, parser.lines);
        events.push(e);
      }
      if (options.onProgress && parser.lines % every === 0)
        options.onProgress(file, parser.lines);
    });
    skipped += parser.skipped;
    ignored += parser.ignored;
    lines += parser.lines;
    formats[file] = parser.format;
    const garbled = parser.undecodableNames;
    if (garbled) undecodable.push(garbled);
    // Hosts exported one file each, all named `localhost`: only all files together show it.
    hostMachineIds.push(parser.hostMachineIds);
    if (events.length === before)
      eventless.push(
        `${file} (${parser.lines === 0 ? 'empty' : `${counted(parser.lines, 'line')}, none an event`})`,
      );
  }
  const within = withinClockReach(reach, events, options.lenient ?? false);
  skipped += within.skipped;
  const warnings = [
    ...undecodableNamesWarning(undecodable),
    ...sharedHostnamesWarnings(hostMachineIds),
  ];
  // With no events at all the analysis refuses the input; beside other files, say which gave none.
  if (eventless.length && eventless.length < files.length) {
    warnings.push(
      `${eventless.length} of ${files.length} files gave no events: ${listFiles(eventless)} (the wrong file, or another format?)`,
    );
  }
  return { events: within.events, skipped, ignored, lines, formats, warnings };
}

/** Names the input files in a message; a long glob is cut short so the message stays one line. */
function listFiles(files: string[]): string {
  const shown = 5;
  return files.length <= shown
    ? files.join(', ')
    : `${files.slice(0, shown).join(', ')} and ${files.length - shown} more files`;
}

/**
 * `--at`, read as a record's time is: the same forms, bounds and messages, naming `--at`. But
 * typed by hand, not read from a log: a bare number before 2000 is epoch seconds (`date +%s`) read
 * as milliseconds, a point in time of interest in January 1970 that would weigh every boot alike.
 */
function parseAt(value: string): number {
  let at: number;
  try {
    at = parseEventTime(value, '--at');
  } catch (e) {
    throw new InputError((e as Error).message);
  }
  if (/^\d+$/.test(value) && at < AT_SECONDS_BELOW) {
    throw new InputError(
      `'--at' looks like epoch seconds (${value}): as milliseconds it is ${new Date(at).toISOString()}, before 2000; ` +
        `as seconds, ${new Date(at * 1000).toISOString()}. Give epoch milliseconds or an ISO 8601 time with a zone (e.g. 2024-05-01T10:00:00Z)`,
    );
  }
  return at;
}

/** A bare `--at` below this (2000-01-01) is taken for epoch seconds: no boot log of today is older. */
const AT_SECONDS_BELOW = Date.UTC(2000, 0, 1);

/** The `--map` file, compiled: the reading checks each mapped name with it, the analysis maps with it. */
async function readMap(file: string): Promise<ServiceMapper> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new InputError(
      `${file}: cannot read map file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  let map: ServiceMap;
  try {
    map = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (e) {
    throw new InputError(`${file}: invalid JSON (${(e as Error).message})`);
  }
  try {
    // `null` would pass for no map at all; false, 0, "" or an array the compiler refuses.
    if (map === null)
      throw new Error(
        'service map must be a JSON object {"services": {"<name or /regex/>": "<service>"}}, got null',
      );
    return compileServiceMap(map);
  } catch (e) {
    throw new InputError(
      `${file}${failingEntryLine(text, map)}: ${(e as Error).message}`,
    );
  }
}

/**
 * `:LINE` of the map entry that the map does not compile for (an invalid regex, a target that is
 * no name), where its key stands in the file as JSON writes it; '' where no one entry is at fault
 * (the map's shape) or the key is written otherwise. A map of hundreds of entries is edited by hand.
 */
function failingEntryLine(text: string, map: ServiceMap | null): string {
  const services = map?.services;
  if (
    typeof services !== 'object' ||
    services === null ||
    Array.isArray(services)
  )
    return '';
  for (const [key, to] of Object.entries(services)) {
    try {
      compileServiceMap({ services: { [key]: to } });
    } catch {
      // The last time the key is written: JSON.parse keeps the last of a key given twice.
      const written = [
        ...text.matchAll(
          new RegExp(
            `${JSON.stringify(key).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*:`,
            'g',
          ),
        ),
      ].at(-1);
      return written
        ? `:${text.slice(0, written.index).split('\n').length}`
        : '';
    }
  }
  return '';
}

/** `--kernel-shape`: a shape, with its parameter after a colon where it has one. */
function kernelShape(value: string): KernelOptions {
  try {
    return parseKernelShape(value);
  } catch (e) {
    throw new InputError(
      `--kernel-shape: ${(e as Error).message}, got '${value}'`,
    );
  }
}

/**
 * `--half-life`: a duration as config takes one (`90d`, `12h`, `1d12h`), longer than 0s as
 * `recovery.analysis.halfLife` must be: neither takes 0 for no decay.
 */
function halfLifeMs(value: string): number {
  const seconds = parseDurationSeconds(value);
  if (seconds === undefined)
    throw new InputError(
      `--half-life: must be a duration such as 90d, 12h or 1d12h (units ms, s, m, h, d), got '${value}'`,
    );
  if (!(seconds > 0))
    throw new InputError(
      `--half-life: must be longer than 0s (for next to no decay, one far longer than the history, such as 36500d), got '${value}'`,
    );
  return seconds * 1000;
}

/** `--boot-durations FILE`: `{"<machine>": seconds}`, as the logs name the machines. */
async function readBootDurations(
  file: string,
): Promise<Record<string, number>> {
  let durations: unknown;
  try {
    durations = JSON.parse(
      (await fs.readFile(file, 'utf8')).replace(/^\uFEFF/, ''),
    );
  } catch (e) {
    const error = e as NodeJS.ErrnoException;
    throw new InputError(
      `${file}: ${error.code ? `cannot read boot durations file (${error.code})` : `invalid JSON (${error.message})`}`,
    );
  }
  if (
    typeof durations !== 'object' ||
    durations === null ||
    Array.isArray(durations)
  ) {
    throw new InputError(
      `${file}: boot durations must be a JSON object {"<machine>": seconds}`,
    );
  }
  try {
    checkBootDurations(durations as Record<string, unknown>);
  } catch (e) {
    throw new InputError(`${file}: ${(e as Error).message}`);
  }
  return durations as Record<string, number>;
}

export interface AnalyzeCliOptions {
  threshold?: string;
  at?: string;
  map?: string;
  format?: EventFormat;
  json?: boolean;
  lenient?: boolean;
  /** Delay after a dependency at which a dependent's start counts most: minutes, or a duration (`5s`, `1m30s`). */
  kernelPeak?: string;
  /** `piecewise`, `gamma[:k]` or `lognormal[:sigma]`. */
  kernelShape?: string;
  /** How far from `--at` an initialization weighs half: a duration (`90d`, `12h`). */
  halfLife?: string;
  /** JSON file of each machine's boot duration in seconds: the summary then gives the critical path. */
  bootDurations?: string;
  /** Reports reading progress on big inputs. */
  onProgress?: (file: string, lines: number) => void;
}

/** The analysis as the CLI runs it (also used by the speed benchmark). */
export async function runAnalysis(
  files: string[],
  opts: AnalyzeCliOptions,
): Promise<{ result: AnalysisResult; read: ReadResult }> {
  let threshold: number | undefined;
  if (opts.threshold !== undefined) {
    threshold = parsePlainDecimal(opts.threshold);
    if (!(threshold > 0 && threshold <= 1))
      throw new InputError(
        `--threshold: expected a plain decimal in (0, 1] such as 0.7 (no exponent, sign or spaces), got '${opts.threshold}'`,
      );
  }
  let kernel: KernelOptions | undefined;
  if (opts.kernelPeak !== undefined) {
    // A bare number is minutes, as before durations were read; else a duration as config takes it.
    const minutes = parsePlainDecimal(opts.kernelPeak);
    const seconds = Number.isNaN(minutes)
      ? parseDurationSeconds(opts.kernelPeak)
      : minutes * 60;
    const peakDelay = seconds === undefined ? NaN : seconds * 1000;
    const problem = Number.isNaN(peakDelay)
      ? 'must be minutes, or a duration such as 5s, 90s or 1m30s'
      : kernelPeakProblem(peakDelay);
    if (problem)
      throw new InputError(
        `--kernel-peak: ${problem}, got '${opts.kernelPeak}'`,
      );
    kernel = { peakDelay };
  }
  if (opts.kernelShape !== undefined)
    kernel = { ...kernel, ...kernelShape(opts.kernelShape) };
  const at = opts.at !== undefined ? parseAt(opts.at) : undefined;
  const halfLife =
    opts.halfLife !== undefined ? halfLifeMs(opts.halfLife) : undefined;
  const map = opts.map !== undefined ? await readMap(opts.map) : undefined;
  const bootDurations =
    opts.bootDurations !== undefined
      ? await readBootDurations(opts.bootDurations)
      : undefined;
  const read = await readEventFiles(files, {
    format: opts.format,
    lenient: opts.lenient,
    onProgress: opts.onProgress,
    map,
  });
  if (read.events.length + read.ignored === 0) {
    // With --lenient, records may all have been skipped: that input is not empty.
    throw new InputError(
      read.skipped
        ? `no valid records in ${listFiles(files.map(shownName))}: every record is malformed (${counted(read.skipped, 'line')} skipped with --lenient; without it the run stops at the first and says what is wrong)`
        : `empty input: no records in ${listFiles(files.map(shownName))}`,
    );
  }
  let result: AnalysisResult;
  try {
    result = analyzeDependencies(read.events, {
      threshold,
      at,
      halfLife,
      // Warnings name the options a CLI user gives, not the backend's setting.
      halfLifeSetting: '--half-life',
      atSetting: '--at',
      map,
      kernel,
      skipped: read.skipped,
      bootDurations,
    });
  } catch (e) {
    if (e instanceof NoStartEventsError) {
      // The format each file was read as: a file detected as another format than meant has only
      // irrelevant records.
      const formats = [
        ...new Set(Object.values(read.formats).filter(f => f !== undefined)),
      ].join(', ');
      throw new InputError(
        `${e.message}: ${listFiles(files.map(shownName))} (${counted(read.lines, 'line')} read${formats ? ` as ${formats}` : ''}, ${counted(read.ignored, 'irrelevant record')}, ${read.skipped} skipped)`,
      );
    }
    // The others (too many services, a map that makes a name invalid, ...) say what is wrong
    // themselves; the files and counts would only lengthen them.
    if (e instanceof AnalysisInputError) throw new InputError(e.message);
    throw e;
  }
  if (read.warnings.length)
    result = { ...result, warnings: [...result.warnings, ...read.warnings] };
  return { result, read };
}

const seconds = (s: number) => `${Number(s.toFixed(3))} s`;

/**
 * What the summary never prints raw: controls, format characters (category Cf: bidirectional
 * overrides such as U+202E, which reorder the rest of a terminal line, zero-width characters),
 * line and paragraph separators and lone surrogates.
 */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Cs}\u2028\u2029]/u;
const EVERY_INVISIBLE = new RegExp(INVISIBLE.source, 'gu');
export const escapeInvisible = (text: string) =>
  text.replace(EVERY_INVISIBLE, c => `\\u{${c.codePointAt(0)!.toString(16)}}`);

/**
 * A service or machine name as the readable summary prints it: as is where it reads
 * unambiguously; JSON-quoted, its invisible characters (INVISIBLE) escaped as `\u{...}`, where it
 * holds one of the summary's own separators (`, `, ` → `, two spaces), a quote, an invisible
 * character, or is empty or starts or ends with a space. The JSON output keeps names exact.
 */
export function summaryName(name: string): string {
  const plain =
    name !== '' && !/^\s|\s$|, | → | {2}|"/.test(name) && !INVISIBLE.test(name);
  return plain ? name : escapeInvisible(JSON.stringify(name));
}

const names = (list: string[], separator = ', ') =>
  list.map(summaryName).join(separator);

/** Readable summary. */
export function formatSummary(
  result: AnalysisResult,
  read: ReadResult,
): string {
  const out: string[] = [];
  const inits = result.services.reduce((s, x) => s + x.initializations, 0);
  out.push(
    `Analysed ${counted(read.lines, 'line')}: ${counted(inits, 'initialization')} of ${counted(result.services.length, 'service')} on ${counted(result.machineOrder.length, 'machine')}${
      read.ignored ? `, ${counted(read.ignored, 'irrelevant record')}` : ''
    }${
      read.skipped ? `, ${counted(read.skipped, 'malformed line')} skipped` : ''
    }; point in time ${new Date(result.at).toISOString()}.`,
  );
  out.push('', 'Boot waves (machines in a wave can boot in parallel):');
  result.waves.forEach((w, i) => out.push(`  ${i + 1}. ${names(w)}`));
  // Within a wave the machines still follow what the boots show.
  out.push('', `Machine order: ${names(result.machineOrder)}`);
  out.push('', `Service order: ${names(result.serviceOrder)}`);
  out.push('', `Dependencies (${result.dependencies.length}):`);
  if (!result.dependencies.length) out.push('  none above the threshold');
  for (const d of result.dependencies) {
    out.push(
      `  ${summaryName(d.service)} → ${summaryName(d.dependsOn)}  score ${formatScore(d.score)}, ${counted(d.samples, 'sample')}${d.confidence === 'low' ? ' (low confidence)' : ''}`,
    );
  }
  // Every wait of the waves, with what put it there: some rest on no dependency listed above.
  const waits = result.machineDependencies.flatMap(d =>
    (d.because ?? []).map(w => ({ machine: d.machine, ...w })),
  );
  if (waits.length) {
    out.push('', 'Machine waits (why each machine waits for another):');
    const followed = new Map(
      result.rebootsFollowed.map(f => [`${f.machine}\u0000${f.waitsFor}`, f]),
    );
    for (const w of waits) {
      const f = followed.get(`${w.machine}\u0000${w.waitsFor}`);
      const reboots =
        f &&
        `its services came back after ${summaryName(w.waitsFor)} rebooted on its own, ${f.followed} of ${f.chances} reboots`;
      const dependency =
        w.reason !== 'reboots' &&
        `${summaryName(w.service!)} → ${summaryName(w.dependsOn!)}, score ${formatScore(w.score!)}${w.reason === 'under threshold' ? ' (under the threshold: found, not reported, kept to order the boot)' : ''}`;
      out.push(
        `  ${summaryName(w.machine)} → ${summaryName(w.waitsFor)}  ${[dependency, reboots].filter(Boolean).join('; ')}`,
      );
    }
  }
  if (result.criticalPath) {
    const { path, duration, byWaves } = result.criticalPath;
    out.push(
      '',
      `Critical path (boot durations given): ${names(path, ' → ')}, ${seconds(duration)}; wave after wave (the slowest machine of each): ${seconds(byWaves.duration)}`,
    );
  }
  // Broken cycles, service and machine, are among the warnings.
  if (result.warnings.length) {
    out.push('', 'Warnings:');
    // Names in warnings are the engine's, unquoted; none prints invisible characters raw.
    for (const w of result.warnings) out.push(`  - ${escapeInvisible(w)}`);
  }
  return `${out.join('\n')}\n`;
}
