/**
 * Fuzzing `recovery analyze` with mutated exports of each format (see testing/eventFuzz.ts): every
 * input ends in exit status 0, or 2 with a message naming the file and line (or the whole input)
 * and what is wrong; never a crash, a stack trace or a hang. `--lenient` fails on no malformed line,
 * and the same input gives the same output twice. FUZZ_SEED and FUZZ_CASES change the run; a
 * failure prints the seed of each failing case, which fuzzCase(seed) makes again.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { describeCase, fuzzCase, type FuzzCase } from './testing/eventFuzz';
import { runCli } from './testing/runCli';

const SEED = Number(process.env.FUZZ_SEED ?? 20261205);
const CASES = Number(process.env.FUZZ_CASES ?? 1500);
/** Longest a run of one fuzzed input may take (they take milliseconds; a loaded machine, a few hundred). */
const SLOW_MS = 5_000;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'recovery-fuzz-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Run = Awaited<ReturnType<typeof runCli>>;

/** Messages about the input as a whole, which no line explains (each names the files or the machine). */
const WHOLE_INPUT = [
  /^empty input: no records in /,
  /^no valid records in .*: every record is malformed/,
  /^no initialization \(start\) events in the input/,
];

/** Lines of a file as the splitter counts them: a last line without its line end counts. */
const lineCount = (data: Buffer) => {
  const text = data.toString('utf8');
  return text.split('\n').length - (text.endsWith('\n') || text === '' ? 1 : 0);
};

/** What is wrong with a run's outcome, else undefined. `lineError` says whether it failed at a line. */
function checkOutcome(
  c: FuzzCase,
  paths: string[],
  r: Run,
): { problem?: string; lineError?: boolean } {
  if (r.status !== 0 && r.status !== 2)
    return { problem: `exit status ${r.status}: ${r.stderr.slice(0, 500)}` };
  if (/\n\s+at /.test(r.stderr))
    return { problem: `a stack trace: ${r.stderr.slice(0, 500)}` };
  if (r.status === 0) {
    let out;
    try {
      out = JSON.parse(r.stdout);
    } catch (e) {
      return {
        problem: `exit 0 without one JSON document (${(e as Error).message})`,
      };
    }
    // With --json, stderr holds the document's warnings, each once, and nothing else.
    const warnings = (out.warnings as string[])
      .map(w => `recovery: warning: ${w}\n`)
      .join('');
    if (r.stderr !== warnings)
      return {
        problem: `exit 0 with stderr ${JSON.stringify(r.stderr.slice(0, 300))}, not the warnings of its output`,
      };
    const scores = [
      ...out.dependencies.map((d: { score: number }) => d.score),
      ...out.correlation.matrix.flat().map(Math.abs),
    ];
    if (
      !scores.every((s: unknown) => typeof s === 'number' && s >= 0 && s <= 1)
    )
      return {
        problem: `a score outside [0, 1]: ${scores.find((s: unknown) => !(typeof s === 'number' && s >= 0 && s <= 1))}`,
      };
    if (Number.isNaN(Date.parse(out.at)))
      return { problem: `'at' is no date: ${out.at}` };
    return {};
  }
  // One line, without a control character or line separator a terminal would act on.
  const message = r.stderr.match(
    // eslint-disable-next-line no-control-regex
    /^recovery: ([^\u0000-\u001f\u007f-\u009f\u2028\u2029]+)\n$/,
  )?.[1];
  if (message === undefined)
    return {
      problem: `exit 2 without one message line: ${JSON.stringify(r.stderr.slice(0, 500))}`,
    };
  const at = message.match(/^(.+?):(\d+): (.+)$/);
  const index = at ? paths.indexOf(at[1]) : -1;
  if (at && index >= 0) {
    const line = Number(at[2]);
    const lines = lineCount(c.files[index].data);
    if (!(line >= 1 && line <= lines))
      return {
        problem: `names line ${line} of a file of ${lines} lines: ${message}`,
      };
    if (at[3].trim().length < 10)
      return { problem: `does not say what is wrong: ${message}` };
    return { lineError: true };
  }
  if (WHOLE_INPUT.some(m => m.test(message))) return { lineError: false };
  return {
    problem: `exit 2 naming no file and line: ${message.slice(0, 500)}`,
  };
}

describe('recovery analyze on fuzzed exports', () => {
  it(`exits 0, or 2 naming file and line; --lenient skips; deterministic (seed ${SEED}, ${CASES} cases)`, async () => {
    const failures: string[] = [];
    const started = Date.now();
    const tally = { ok: 0, lineError: 0, wholeInput: 0, lenientOk: 0 };
    for (let i = 0; i < CASES && failures.length < 20; i++) {
      const c = fuzzCase(SEED + i);
      const paths = c.files.map(f => join(dir, f.name));
      c.files.forEach((f, k) => writeFileSync(paths[k], f.data));
      const args = [
        'analyze',
        ...paths,
        '--json',
        ...(c.forced ? ['--format', c.forced] : []),
      ];
      const fail = (problem: string) =>
        failures.push(`${problem}\n  ${describeCase(c)}`);
      // A run that blocks for good never returns to say so; one that takes seconds on a file of a
      // megabyte at most is a hang in the making (quadratic, backtracking).
      const timed = async (argv: string[]) => {
        const t = Date.now();
        const r = await runCli(argv);
        if (Date.now() - t > SLOW_MS)
          fail(
            `a run took ${Date.now() - t} ms: recovery ${argv.slice(2).join(' ')}`,
          );
        return r;
      };
      const strict = await timed(args);
      const outcome = checkOutcome(c, paths, strict);
      if (outcome.problem) {
        fail(`strict: ${outcome.problem}`);
        continue;
      }
      tally[
        strict.status === 0
          ? 'ok'
          : outcome.lineError
            ? 'lineError'
            : 'wholeInput'
      ]++;
      const again = await timed(args);
      if (
        again.status !== strict.status ||
        again.stdout !== strict.stdout ||
        again.stderr !== strict.stderr
      ) {
        fail(
          `not deterministic: ${strict.status} then ${again.status}; ${JSON.stringify(strict.stderr.slice(0, 200))} then ${JSON.stringify(again.stderr.slice(0, 200))}`,
        );
        continue;
      }
      const lenient = await timed([...args, '--lenient']);
      const l = checkOutcome(c, paths, lenient);
      if (lenient.status === 0) tally.lenientOk++;
      if (l.problem) fail(`--lenient: ${l.problem}`);
      else if (l.lineError)
        fail(`--lenient fails on a line: ${lenient.stderr}`);
      else if (
        strict.status === 0 &&
        (lenient.status !== 0 || lenient.stdout !== strict.stdout)
      )
        fail(
          `--lenient differs from a strict run that succeeded: ${lenient.stderr}`,
        );
      else if (
        outcome.lineError &&
        lenient.status === 0 &&
        JSON.parse(lenient.stdout).skipped < 1
      )
        fail(
          `--lenient skips nothing where the strict run failed: ${strict.stderr}`,
        );
      // The readable summary of what --json printed.
      if (strict.status === 0 && i % 4 === 0) {
        const summary = await timed(args.filter(a => a !== '--json'));
        if (
          summary.status !== 0 ||
          summary.stderr !== '' ||
          !summary.stdout.startsWith('Analysed ')
        )
          fail(
            `the summary of a run that succeeded with --json: ${summary.status} ${summary.stderr.slice(0, 300)}`,
          );
      }
      for (const p of paths) rmSync(p);
    }
    // eslint-disable-next-line no-console
    if (failures.length === 0)
      console.log(
        `fuzzed ${CASES} inputs (seed ${SEED}) in ${Date.now() - started} ms: ${JSON.stringify(tally)}`,
      );
    expect(
      failures,
      `seed ${SEED}: ${failures.length} failing case(s)\n${failures.join('\n\n')}`,
    ).toEqual([]);
  }, 120_000);
});

/** Cases the fuzzing found, each cut down to what shows it. */
describe('recovery analyze: what the fuzzing found', () => {
  const write = (name: string, lines: string[]) => {
    const path = join(dir, name);
    writeFileSync(path, `${lines.join('\n')}\n`);
    return path;
  };
  const start = JSON.stringify({
    time: '2024-05-01T10:00:00Z',
    machine: 'm',
    service: 'a',
  });
  const deep = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

  it('a value nested 10,000 deep (JSON.parse reads it, JSON.stringify cannot write it) is a malformed line, not a crash', async () => {
    const path = write('deep.jsonl', [
      start,
      `{"time":${deep(10_000)},"machine":"m","service":"b"}`,
      `{"time":1714557700000,"machine":"m","service":"c","event":${deep(10_000)}}`,
    ]);
    const strict = await runCli(['analyze', path, '--json']);
    expect(strict).toMatchObject({ status: 2, stdout: '' });
    expect(strict.stderr).toBe(
      `recovery: ${path}:2: 'time' must be epoch milliseconds or ISO 8601 with a zone, got an array ([[[… nested too deep to show)\n`,
    );
    const lenient = await runCli(['analyze', path, '--json', '--lenient']);
    expect(lenient.status).toBe(0);
    expect(JSON.parse(lenient.stdout).skipped).toBe(2);
  });

  it('a docker death whose exitCode is an object (its own toString no function) is a malformed line, not a crash', async () => {
    const container = (
      action: string,
      name: string,
      attrs: object,
      s: number,
    ) =>
      JSON.stringify({
        Type: 'container',
        Action: action,
        Actor: { Attributes: { name, ...attrs } },
        timeNano: `${1714557600 + s}000000000`,
      });
    const path = write('exitcode.json', [
      container('start', 'a', {}, 0),
      container('die', 'b', { exitCode: { toString: 1 } }, 60),
    ]);
    const strict = await runCli(['analyze', path, '--json']);
    expect(strict.status).toBe(2);
    expect(strict.stderr).toBe(
      `recovery: ${path}:2: 'exitCode' must be the container's exit status, got an object ({"toString":1})\n`,
    );
    const lenient = await runCli(['analyze', path, '--json', '--lenient']);
    expect(lenient.status).toBe(0);
    expect(JSON.parse(lenient.stdout).skipped).toBe(1);
  });

  it('escapes in a message the C1 controls and line separators of a value, which JSON leaves as they are', async () => {
    const path = write('c1.jsonl', [
      start,
      JSON.stringify({
        time: 1714557700000,
        machine: 'm',
        service: 'b',
        event: '\u009b31mred\u2028',
      }),
    ]);
    const r = await runCli(['analyze', path, '--json']);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      `recovery: ${path}:2: unknown event "\\u009b31mred\\u2028" (expected start, failure or clock)\n`,
    );
  });

  it('a last line cut inside a character (a log copied while being written) is named as cut, not as a binary file', async () => {
    const path = join(dir, 'cut-character.jsonl');
    // 'é' is two bytes in UTF-8: the copy ends after the first.
    writeFileSync(
      path,
      Buffer.concat([
        Buffer.from(
          `${start}\n{"time":1714557700000,"machine":"m","service":"caf`,
        ),
        Buffer.from([0xc3]),
      ]),
    );
    const r = await runCli(['analyze', path]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      `recovery: ${path}:2: invalid JSON (Unterminated string in JSON at position 51 (line 1 column 52)): the last line, without a line end; a log copied while it was still being written?\n`,
    );
    expect(
      JSON.parse(
        (await runCli(['analyze', path, '--json', '--lenient'])).stdout,
      ).skipped,
    ).toBe(1);
  });

  it('reads a line behind two byte-order marks, as POST /events does (its body decoder drops the first)', async () => {
    const path = join(dir, 'two-boms.jsonl');
    writeFileSync(path, `\uFEFF\uFEFF${start}\n`);
    const r = await runCli(['analyze', path, '--json']);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout).services).toEqual([
      { service: 'a', machines: ['m'], initializations: 1 },
    ]);
  });
});
