/**
 * The `recovery` command line: `recovery analyze FILE... [options]` offline, and `readiness`,
 * `capture`, `run`, `watch` and `release` against a Backstage backend's recovery API.
 */
import { constants as fsConstants, createReadStream, promises as fs } from 'fs';
import { Command, CommanderError, Option } from 'commander';
import {
  CaptureFailedError,
  captureInTurn,
  formatBytes,
  isRunInterrupted,
  nothingToCapture,
  parseDurationSeconds,
  readRecoveryPoint,
  RECOVERY_POINT_FORMAT,
  type Capture,
  type InitializationEvent,
} from '@backstage-recovery/plugin-recovery-common';
import {
  describeMachineState,
  machineNotServing,
  machineStateWorthSaying,
} from '@backstage-recovery/plugin-recovery-common';

/**
 * What a capture's line says of the machine's state when captured: a machine not serving (stopped,
 * restarting, paused by someone else, unhealthy) is captured all the same, and the line says what
 * that means; a health check not passed yet is said too. Nothing for a machine serving.
 */
function capturedStateWords(c: Capture): string {
  const state = c.machineState;
  if (!machineStateWorthSaying(state)) return '';
  if (!machineNotServing(state))
    return `  when captured: ${describeMachineState(state)}`;
  return `  NOT SERVING when captured: ${describeMachineState(state)}; kept, but readiness puts what it serves at risk until it is captured running and not unhealthy`;
}
import {
  analyzeDependencies,
  AnalysisInputError,
  ClockReach,
  AnalysisResult,
  checkBootDurations,
  compileServiceMap,
  parseKernelShape,
  parsePlainDecimal,
  EVENT_FORMATS,
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
import { ConflictError, ResponseError } from '@backstage/errors';
import {
  backendClient,
  BackendError,
  type BackendOptions,
  DEFAULT_BACKEND_URL,
  describeBackendError,
  entityRefArg,
  followRun,
  formatFailureTail,
  formatOutcome,
  formatReadiness,
  formatReadinessList,
  formatRelease,
  RemoteInputError,
  startRun,
} from './remote';

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
  file = shownName(file);
  const lines = new LineSplitter(onLine, {
    maxLength: MAX_LINE,
    tooLong: {
      throw: line =>
        new InputError(
          `${file}:${line}: line longer than ${MAX_LINE / 1024 / 1024} MiB (a file without line breaks: binary or compressed?)`,
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
        `${file}: cannot read file (${error.code ?? error.message})`,
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
  let events: InitializationEvent[] = [];
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
  events = within.events;
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
  return { events, skipped, ignored, lines, formats, warnings };
}

/** Names the input files in a message; a long glob is cut short so the message stays one line. */
function listFiles(files: string[]): string {
  const shown = 5;
  return files.length <= shown
    ? files.join(', ')
    : `${files.slice(0, shown).join(', ')} and ${files.length - shown} more files`;
}

/** `--at`, read as a record's time is: the same forms, bounds and messages, naming `--at`. */
function parseAt(value: string): number {
  try {
    return parseEventTime(value, '--at');
  } catch (e) {
    throw new InputError((e as Error).message);
  }
}

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
        `--threshold: expected a number in (0, 1], got '${opts.threshold}'`,
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

/** Readable summary. */
export function formatSummary(
  result: AnalysisResult,
  read: ReadResult,
): string {
  const out: string[] = [];
  const inits = result.services.reduce((s, x) => s + x.initializations, 0);
  out.push(
    `Analysed ${counted(read.lines, 'line')}: ${counted(inits, 'initialization')} of ${counted(result.services.length, 'service')} on ${counted(result.machineOrder.length, 'machine')}` +
      (read.ignored ? `, ${counted(read.ignored, 'irrelevant record')}` : '') +
      (read.skipped
        ? `, ${counted(read.skipped, 'malformed line')} skipped`
        : '') +
      `; point in time ${new Date(result.at).toISOString()}.`,
  );
  out.push('', 'Boot waves (machines in a wave can boot in parallel):');
  result.waves.forEach((w, i) => out.push(`  ${i + 1}. ${w.join(', ')}`));
  // Within a wave the machines still follow what the boots show.
  out.push('', `Machine order: ${result.machineOrder.join(', ')}`);
  out.push('', `Service order: ${result.serviceOrder.join(', ')}`);
  out.push('', `Dependencies (${result.dependencies.length}):`);
  if (!result.dependencies.length) out.push('  none above the threshold');
  for (const d of result.dependencies) {
    out.push(
      `  ${d.service} → ${d.dependsOn}  score ${d.score.toFixed(2)}, ${counted(d.samples, 'sample')}${d.confidence === 'low' ? ' (low confidence)' : ''}`,
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
        `its services came back after ${w.waitsFor} rebooted on its own, ${f.followed} of ${f.chances} reboots`;
      const dependency =
        w.reason !== 'reboots' &&
        `${w.service} → ${w.dependsOn}, score ${w.score!.toFixed(2)}${w.reason === 'under threshold' ? ' (under the threshold: found, not reported, kept to order the boot)' : ''}`;
      out.push(
        `  ${w.machine} → ${w.waitsFor}  ${[dependency, reboots].filter(Boolean).join('; ')}`,
      );
    }
  }
  if (result.criticalPath) {
    const { path, duration, byWaves } = result.criticalPath;
    out.push(
      '',
      `Critical path (boot durations given): ${path.join(' → ')}, ${seconds(duration)}; wave after wave (the slowest machine of each): ${seconds(byWaves.duration)}`,
    );
  }
  // Broken cycles, service and machine, are among the warnings.
  if (result.warnings.length) {
    out.push('', 'Warnings:');
    for (const w of result.warnings) out.push(`  - ${w}`);
  }
  return `${out.join('\n')}\n`;
}

/**
 * An error the CLI did not expect, said as what it is: an answer of the backend it cannot read (a
 * backend of another version, a proxy's JSON) or a bug of its own, which says nothing of a run's
 * outcome: the run goes on on the server. The stack follows, for a bug report.
 */
export function unexpectedError(
  error: unknown,
  doing: { backend?: boolean; starting?: boolean; runId?: string },
): string {
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
  let status = 0;
  /**
   * Refuses an option given a second value: of two maps, two thresholds or two URLs, commander
   * would keep the last and ignore the other unsaid (`--map site.json --map team.json` is not both).
   */
  const onceEach = (command: Command) => {
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
  };
  const analyze = program
    .command('analyze')
    .description(
      'Learn initialization dependencies and a machine boot order from exported logs',
    )
    .argument(
      '<files...>',
      'log files (jsonl, journald json, docker events json); - for standard input',
    )
    .option(
      '--threshold <n>',
      'score a dependency must reach, in (0, 1]',
      '0.7',
    )
    .option(
      '--at <time>',
      'point in time of interest (ISO 8601 with a zone, or epoch ms); default: the latest event',
    )
    .option(
      '--map <file>',
      'JSON name map {"services": {"<name or /regex/>": "<service>"}}',
    )
    .addOption(
      new Option('--format <format>', 'force the input format').choices(
        EVENT_FORMATS,
      ),
    )
    .option('--json', 'print one JSON document')
    .option('--lenient', 'skip and count malformed lines instead of failing')
    .option(
      '--kernel-shape <shape>',
      'shape of the kernel around its peak: piecewise (default), gamma[:k] (k > 1, default 3) or lognormal[:sigma] (default 0.8); a larger k or smaller sigma is narrower',
    )
    .option(
      '--boot-durations <file>',
      'JSON {"<machine>": seconds} of each machine\'s boot: prints the critical path of the waves (in --json: criticalPath)',
    )
    .option(
      '--kernel-peak <delay>',
      "delay after a dependency at which a dependent's start counts most, in minutes or as a duration such as 5s or 1m30s (default 10, moved to the delay the boots show when many dependencies score under the threshold there; a minute or less, e.g. 5s, analyses a site that boots in seconds)",
    )
    .exitOverride();
  onceEach(analyze).action(async (files: string[], opts: AnalyzeCliOptions) => {
    // Progress goes to a terminal only, never into a pipe or a captured stream. Each redraw clears
    // to the line end (a shorter file name leaves no tail); the line ends before any message.
    let drawn = false;
    const onProgress = io.stderrIsTTY
      ? (file: string, lines: number) => {
          io.stderr(
            `\rrecovery: ${file}: ${lines.toLocaleString('en-US')} lines read\x1b[K`,
          );
          drawn = true;
        }
      : undefined;
    const { result, read } = await runAnalysis(files, {
      ...opts,
      onProgress,
    }).finally(() => {
      if (drawn) io.stderr('\n');
    });
    if (opts.json) {
      const {
        services,
        dependencies,
        serviceOrder,
        machineOrder,
        waves,
        machineDependencies,
        rebootsFollowed,
        cycles,
        machineCycles,
        criticalPath,
        correlation,
        warnings,
        skipped,
        at,
      } = result;
      io.stdout(
        `${JSON.stringify({ services, dependencies, serviceOrder, machineOrder, waves, machineDependencies, rebootsFollowed, cycles, machineCycles, criticalPath, correlation, warnings, skipped, at: new Date(at).toISOString() })}\n`,
      );
      // Also where a person sees them: `--json` output goes to a file or a pipe more often than not.
      for (const w of warnings) io.stderr(`recovery: warning: ${w}\n`);
    } else {
      io.stdout(formatSummary(result, read));
    }
  });

  // Against a backend: a token and where it listens, on each command.
  let hasToken = false;
  /**
   * What an unexpected error (an answer the CLI cannot read, a bug of its own) leaves behind: a
   * command against the backend, a run it may have started, the run it followed.
   */
  const doing: { backend?: boolean; starting?: boolean; runId?: string } = {};
  const connect = (opts: BackendOptions) => {
    doing.backend = true;
    const backend = backendClient(opts);
    hasToken = backend.hasToken;
    if (backend.warning) io.stderr(`recovery: warning: ${backend.warning}\n`);
    return backend.client;
  };
  const againstBackend = (command: Command) =>
    onceEach(
      command
        .option(
          '--url <url>',
          `the Backstage backend (default: RECOVERY_URL, else ${DEFAULT_BACKEND_URL})`,
        )
        .option(
          '--token <token>',
          'bearer token, a static token from backend.auth.externalAccess (default: RECOVERY_TOKEN)',
        )
        .option('--json', "print the API's answer as one JSON document")
        // `recovery run web api` would recover web alone and exit 0: refused, not half done.
        .allowExcessArguments(false)
        .exitOverride(),
    );
  const json = (value: unknown) => `${JSON.stringify(value)}\n`;
  const intervalMs = (text: string) => {
    const seconds = Number(text);
    if (!(seconds >= 0.1 && seconds <= 60))
      throw new InputError(`--interval: seconds from 0.1 to 60, got '${text}'`);
    return seconds * 1000;
  };
  type RunOptions = BackendOptions & { json?: boolean; interval: string };
  /** Follows a run to its end; the exit status says how it ended (1: failed; 4: interrupted, no result). */
  const follow = async (
    client: ReturnType<typeof connect>,
    run: Awaited<ReturnType<typeof startRun>>,
    opts: RunOptions,
  ) => {
    doing.runId = run.id;
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
    status =
      done.status === 'succeeded'
        ? 0
        : isRunInterrupted(done)
          ? EXIT_INTERRUPTED
          : 1;
  };

  againstBackend(
    program
      .command('readiness')
      .description(
        "an entity's recovery readiness, or every recoverable entity's, most at risk first",
      )
      .argument(
        '[entity]',
        'entity ref (component:default/web, or web for short)',
      ),
  ).action(
    async (
      entity: string | undefined,
      opts: BackendOptions & { json?: boolean },
    ) => {
      const client = connect(opts);
      if (entity) {
        const readiness = await client.getReadiness(entityRefArg(entity));
        io.stdout(opts.json ? json(readiness) : formatReadiness(readiness));
      } else {
        const items = await client.listReadiness();
        io.stdout(opts.json ? json({ items }) : formatReadinessList(items));
      }
    },
  );

  againstBackend(
    program
      .command('capture')
      .description('capture the machines an entity needs, now')
      .argument(
        '<entity>',
        'entity ref (component:default/web, or web for short)',
      ),
  ).action(
    async (entity: string, opts: BackendOptions & { json?: boolean }) => {
      // A machine at a time, each said as it is taken: a site's images take minutes to save.
      const items: Capture[] = [];
      const entityRef = entityRefArg(entity);
      try {
        await captureInTurn(connect(opts), entityRef, {
          captured: ({ capture: c, done, total }) => {
            items.push(c);
            if (opts.json) return;
            const paused = c.pausedMs
              ? `, production paused ${c.pausedMs} ms`
              : '';
            io.stdout(
              `${c.machineRef}  capture ${c.id}  ${formatBytes(c.sizeBytes)} in ${c.durationMs} ms${paused}  (${done} of ${total})${capturedStateWords(c)}${c.pauseWarning ? `  WARNING ${c.pauseWarning}` : ''}\n`,
            );
          },
        });
      } catch (error) {
        // Those taken before the failure are kept: a pipeline reading JSON hears of them as a terminal does.
        if (opts.json && items.length > 0) io.stdout(json({ items }));
        // Machines another capture was taking, or whose capture failed, named once the others were
        // taken: the backend's 409s, its failures (each naming its machine).
        if (
          error instanceof ConflictError ||
          error instanceof CaptureFailedError
        )
          throw new BackendError(error.message);
        throw error;
      }
      // A plan without machines captures nothing: a pipeline must not go on as if it had.
      if (items.length === 0)
        throw new BackendError(nothingToCapture(entityRef));
      if (opts.json) io.stdout(json({ items }));
    },
  );

  againstBackend(
    program
      .command('run')
      .description(
        'start a test recovery of an entity (or a failover) and follow it to its end; exit status 1 if it fails, 3 if the backend cannot be reached or refuses, 4 if it is interrupted (no result: run it again)',
      )
      .argument(
        '<entity>',
        'entity ref (component:default/web, or web for short)',
      )
      .option(
        '--failover',
        'a failover: machines boot on a network that is not isolated, and stay',
      )
      .option(
        '--accept-missing-dependencies',
        'recover without the dependencies the catalog names but the plan cannot include',
      )
      .option(
        '--accept-cycles',
        'recover although the catalog declares a dependency cycle: one dependency per cycle is not waited for, each named in the timeline',
      )
      .option(
        '--recovery-point <time>',
        'recover to this time (ISO 8601 with its zone, such as 2026-11-02T01:00:00Z), before a bad change: each machine restores its newest capture taken at or before it',
      )
      .option('--detach', 'print the run and return, without following it')
      .option('--interval <seconds>', 'how often to look at the run', '1'),
  ).action(
    async (
      entity: string,
      opts: RunOptions & {
        failover?: boolean;
        acceptMissingDependencies?: boolean;
        acceptCycles?: boolean;
        recoveryPoint?: string;
        detach?: boolean;
      },
    ) => {
      const client = connect(opts);
      intervalMs(opts.interval);
      // Malformed, it is refused here, before any request; the backend refuses one in its future.
      const read =
        opts.recoveryPoint === undefined
          ? undefined
          : readRecoveryPoint(opts.recoveryPoint);
      if (read && 'problem' in read) {
        throw new InputError(
          `--recovery-point: ${RECOVERY_POINT_FORMAT}, got '${opts.recoveryPoint}': ${read.problem}`,
        );
      }
      const recoveryPoint = read?.point;
      doing.starting = true;
      const run = await startRun(client, entityRefArg(entity), {
        ...opts,
        recoveryPoint,
      });
      doing.runId = run.id;
      // The point the backend recorded: a run restoring earlier captures than the latest says so.
      const at = run.recoveryPoint
        ? ` to the recovery point ${run.recoveryPoint}`
        : '';
      if (opts.detach) {
        io.stdout(
          opts.json
            ? json(run)
            : `Run ${run.id} of ${run.entityRef}${at} started: recovery watch ${run.id} follows it\n`,
        );
        return;
      }
      if (!opts.json)
        io.stdout(
          `Run ${run.id} of ${run.entityRef}${at} started (Ctrl-C stops following, not the run)\n`,
        );
      await follow(client, run, opts);
    },
  );

  againstBackend(
    program
      .command('watch')
      .description(
        'follow a run to its end; exit status 1 if it failed, 3 if the backend cannot be reached or refuses, 4 if it was interrupted (no result: run it again)',
      )
      .argument('<run>', 'run id')
      .option('--interval <seconds>', 'how often to look at the run', '1'),
  ).action(async (runId: string, opts: RunOptions) => {
    const client = connect(opts);
    intervalMs(opts.interval);
    doing.runId = runId;
    await follow(client, await client.getRun(runId), opts);
  });

  againstBackend(
    program
      .command('release')
      .description(
        'release a finished failover once production no longer needs it (failback done): remove what it kept on its hypervisor host; exit status 3 if the backend cannot be reached or refuses (not a finished failover, no permission)',
      )
      .argument('<run>', 'run id of the failover'),
  ).action(async (runId: string, opts: BackendOptions & { json?: boolean }) => {
    const run = await connect(opts).releaseFailover(runId);
    io.stdout(opts.json ? json(run) : `${formatRelease(run)}\n`);
  });

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help keeps commander's own status: 0 when asked for (--help), 1 when shown because no
      // subcommand was given. Other commander errors are usage errors, status 2 like bad input.
      const help =
        e.code === 'commander.helpDisplayed' ||
        e.code === 'commander.help' ||
        e.code === 'commander.version';
      status = help ? e.exitCode : 2;
    } else if (
      e instanceof EventParseError ||
      e instanceof InputError ||
      e instanceof RemoteInputError
    ) {
      io.stderr(`recovery: ${e.message}\n`);
      status = 2;
    } else if (e instanceof BackendError || e instanceof ResponseError) {
      io.stderr(`recovery: ${describeBackendError(e, hasToken)}\n`);
      status = 3;
    } else {
      io.stderr(`recovery: ${unexpectedError(e, doing)}\n`);
      // Not 1, a failed recovery: the CLI cannot tell how the run went, as when the backend is out of reach.
      status = 3;
    }
  }
  return status;
}
