import { spawn, spawnSync } from 'child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join, resolve } from 'path';
import { main, readEventFiles } from './main';
import { runCli } from './testing/runCli';
import {
  generateHistory,
  toDocker,
  toJournaldRecord,
  toJsonl,
} from '../../../bench/generate';
import { evaluate } from '../../../bench/evaluate';

const ROOT = resolve(__dirname, '../../..');
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'recovery-cli-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const file = (name: string, lines: string[]) => {
  const p = join(dir, name);
  writeFileSync(p, lines.length ? `${lines.join('\n')}\n` : '');
  return p;
};

/** The real bin, as a user runs it from the repository root. */
function spawnRecovery(args: string[], { direct = false } = {}) {
  // Direct: the bin npx would run, so that a timeout stops that process itself, not npx above it.
  const [command, ...prefix] = direct
    ? [process.execPath, join(ROOT, 'packages/cli/bin/recovery')]
    : ['npx', '--no-install', 'recovery'];
  const r = spawnSync(command, [...prefix, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return {
    status: r.status,
    stdout: r.stdout,
    stderr: r.stderr
      .split('\n')
      .filter(l => !l.startsWith('npm warn'))
      .join('\n'),
  };
}

const run = runCli;

const history = generateHistory({
  seed: 5,
  machines: 5,
  services: 14,
  siteBoots: 25,
  machineReboots: 20,
});
/**
 * The generator writes clock lines for every machine; host-0 of this history hosts no service, so
 * its readings correct nothing, which is said.
 */
const hostlessClock =
  'recovery: warning: clock readings for 1 machine(s) of which no other event is known (host-0): they correct nothing (is the machine spelt otherwise in its events?)\n';

describe('recovery analyze (real bin)', () => {
  it('maps names through a regex that backtracks catastrophically, in linear time', () => {
    const m = join(dir, 'nested.json');
    // Nested repetition (/^(a+)+$/) the map refuses; overlapping alternatives it lets through.
    writeFileSync(m, JSON.stringify({ services: { '/^(a|aa)+$/': 'as' } }));
    // Backtracking on 40 a's and a b takes ~1.6^40 steps: the run would be cut off by the timeout.
    const data = file('nested.jsonl', [
      ...toJsonl(history.events),
      JSON.stringify({ time: 1, machine: 'm', service: `${'a'.repeat(40)}b` }),
      JSON.stringify({ time: 2, machine: 'm', service: 'aaaa' }),
    ]);
    const r = spawnRecovery(['analyze', data, '--map', m, '--json'], {
      direct: true,
    });
    expect(r.status).toBe(0);
    const services = JSON.parse(r.stdout).services.map(
      (s: { service: string }) => s.service,
    );
    expect(services).toEqual(
      expect.arrayContaining([`${'a'.repeat(40)}b`, 'as']),
    );
    expect(services).not.toContain('aaaa');
  });

  it('warns when a file is not UTF-8 (a Windows-1252 export) and still analyses it', () => {
    const p = join(dir, 'cp1252.jsonl');
    const lines = toJsonl(history.events);
    // 'ü' in Windows-1252 is the one byte 0xFC, which UTF-8 cannot decode.
    writeFileSync(
      p,
      Buffer.concat([
        Buffer.from(
          `${lines.join('\n')}\n{"time": 1, "machine": "m", "service": "m`,
        ),
        Buffer.from([0xfc]),
        Buffer.from('nchen"}\n'),
      ]),
    );
    const r = spawnRecovery(['analyze', p, '--json']);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.services.map((s: { service: string }) => s.service)).toContain(
      'm\uFFFDnchen',
    );
    expect(out.warnings.at(-1)).toMatch(
      new RegExp(
        `^\\S*cp1252\\.jsonl:${lines.length + 1}: 1 event names a service or machine with bytes that are not UTF-8 \\(first "m\uFFFDnchen"`,
      ),
    );
    // Said on stderr too, where whoever redirects the JSON still sees it.
    expect(r.stderr).toContain(`recovery: warning: ${out.warnings.at(-1)}\n`);
    // Several such files: one warning, at the first.
    const q = join(dir, 'cp1252-2.jsonl');
    writeFileSync(
      q,
      Buffer.concat([
        Buffer.from('{"time": 2, "machine": "m", "service": "caf'),
        Buffer.from([0xe9]),
        Buffer.from('"}\n{"time": 3, "machine": "m", "service": "na'),
        Buffer.from([0xef]),
        Buffer.from('ve"}\n'),
      ]),
    );
    const both = JSON.parse(spawnRecovery(['analyze', p, q, '--json']).stdout);
    const garbled = both.warnings.filter((w: string) =>
      w.includes('not UTF-8'),
    );
    expect(garbled).toEqual([
      expect.stringMatching(
        new RegExp(
          `^\\S*cp1252\\.jsonl:${lines.length + 1}: 3 events in 2 files name a service or machine with bytes that are not UTF-8 \\(first "m\uFFFDnchen"`,
        ),
      ),
    ]);
  });

  it('reads a pipe: bash process substitution of a compressed journal', () => {
    const data = file('piped.jsonl', toJsonl(history.events));
    const gz = spawnSync('gzip', ['-kf', data]);
    expect(gz.status).toBe(0);
    const piped = spawnSync(
      'bash',
      [
        '-c',
        `npx --no-install recovery analyze <(gzip -dc '${data}.gz') --json`,
      ],
      { cwd: ROOT, encoding: 'utf8', timeout: 60_000 },
    );
    expect(piped.status).toBe(0);
    expect(piped.stdout).toBe(
      spawnRecovery(['analyze', data, '--json']).stdout,
    );
  });
  it('reads standard input for -, naming it stdin in messages', () => {
    const data = file('stdin.jsonl', toJsonl(history.events));
    const bin = [
      join(ROOT, 'packages/cli/bin/recovery'),
      'analyze',
      '-',
      '--json',
    ];
    const piped = spawnSync(process.execPath, bin, {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
      input: readFileSync(data, 'utf8'),
    });
    expect(piped.status).toBe(0);
    expect(piped.stdout).toBe(
      spawnRecovery(['analyze', data, '--json'], { direct: true }).stdout,
    );
    const bad = spawnSync(process.execPath, bin, {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
      input: '{"time": 1700000000000}\n',
    });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^recovery: stdin:1: /);
    const twice = spawnSync(process.execPath, [...bin.slice(0, 2), '-', '-'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
      input: '',
    });
    expect(twice.stderr).toContain(
      '- (standard input) given twice: it can be read once',
    );
    // The messages about the whole input name it so too.
    const empty = spawnSync(process.execPath, bin, {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
      input: '',
    });
    expect(empty.status).toBe(2);
    expect(empty.stderr).toBe('recovery: empty input: no records in stdin\n');
    const failures = spawnSync(process.execPath, bin, {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
      input:
        '{"time": 1700000000000, "machine": "m", "service": "s", "event": "failure"}\n',
    });
    expect(failures.status).toBe(2);
    expect(failures.stderr).toMatch(
      /^recovery: no initialization \(start\) events in the input, only 1 failure: stdin \(1 line read as jsonl/,
    );
  });
  it('reproduces the ground-truth order of a small generated history (jsonl with clock lines and a map)', () => {
    const data = file('history.jsonl', toJsonl(history.events));
    const map = join(dir, 'map.json');
    writeFileSync(map, JSON.stringify(history.map));
    const r = spawnRecovery(['analyze', data, '--map', map, '--json']);
    expect(r.stderr).toBe(hostlessClock);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(Object.keys(out)).toEqual(
      expect.arrayContaining([
        'services',
        'dependencies',
        'serviceOrder',
        'machineOrder',
        'waves',
        'cycles',
        'correlation',
        'skipped',
      ]),
    );
    const e = evaluate(out, history.truth);
    expect(e.violatedServiceOrder).toBe(0);
    expect(e.violatedMachineOrder).toBe(0);
    expect(e.violatedWaves).toBe(0);
    expect(e.waves).toBeLessThanOrEqual(e.truthDepth);
    expect(new Set(out.serviceOrder)).toEqual(
      new Set(history.truth.services.map(s => s.name)),
    );
    // Deterministic, byte for byte.
    expect(
      spawnRecovery(['analyze', data, '--map', map, '--json']).stdout,
    ).toBe(r.stdout);
  });
  it('exits 2 naming file and line on a malformed line; --lenient skips and counts it', () => {
    const lines = toJsonl(history.events).slice(0, 50);
    lines.splice(3, 0, '{"time": "yesterday", "machine": "m", "service": "s"}');
    const data = file('bad.jsonl', lines);
    const r = spawnRecovery(['analyze', data]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(
      `${data}:4: 'time' must be ISO 8601 with a zone`,
    );
    const ok = spawnRecovery(['analyze', data, '--lenient', '--json']);
    expect(ok.status).toBe(0);
    expect(JSON.parse(ok.stdout).skipped).toBe(1);
  });
  it('ends quietly, status 0, when its reader closes the pipe early (`| head -c 100`)', async () => {
    // 300 services: the correlation matrix alone is far larger than a pipe's buffer (64 KiB).
    const big = generateHistory({
      seed: 3,
      machines: 30,
      services: 300,
      siteBoots: 5,
      machineReboots: 0,
    });
    const data = file('big.jsonl', toJsonl(big.events));
    const whole = spawnRecovery(['analyze', data, '--json'], { direct: true });
    expect(whole.status).toBe(0);
    expect(whole.stdout.length).toBeGreaterThan(4 * 64 * 1024);
    const child = spawn(
      process.execPath,
      [join(ROOT, 'packages/cli/bin/recovery'), 'analyze', data, '--json'],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    // The first chunk read, the reader goes away as `head` does: the writes after it fail with EPIPE.
    const first = await new Promise<string>(done =>
      child.stdout.once('data', (chunk: Buffer) => {
        child.stdout.destroy();
        done(chunk.toString('utf8'));
      }),
    );
    const [status, signal] = await new Promise<[number | null, string | null]>(
      done => child.on('close', (code, sig) => done([code, sig])),
    );
    expect(whole.stdout.startsWith(first)).toBe(true);
    expect(first.length).toBeLessThan(whole.stdout.length);
    // Its warnings, if any, and nothing else: no EPIPE error.
    const notWarnings = stderr
      .split('\n')
      .filter(l => l && !l.startsWith('recovery: warning: '));
    expect({ status, signal, notWarnings }).toEqual({
      status: 0,
      signal: null,
      notWarnings: [],
    });
  });
  it('exits 1 with the help on stderr without a subcommand, 0 with --help (bin status, not only main())', () => {
    const bare = spawnRecovery([]);
    expect(bare.status).toBe(1);
    expect(bare.stderr).toMatch(/Usage: recovery/);
    const help = spawnRecovery(['analyze', '--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/--kernel-peak <delay>/);
  });
  it('says an error of its own as an internal error, exit 3, not 1 (a failed run)', async () => {
    const data = file('internal.jsonl', toJsonl(history.events));
    let stderr = '';
    // Output that cannot be written for a reason the CLI does not know (not a closed pipe).
    const status = await main(['analyze', data], {
      stdout: () => {
        throw new TypeError('the output went away');
      },
      stderr: t => void (stderr += t),
    });
    expect(status).toBe(3);
    expect(stderr).toMatch(
      /^recovery: internal error of the CLI \(TypeError: the output went away\)\n {4}at /,
    );
  });
  it('prints a readable summary without --json', () => {
    const data = file('summary.jsonl', toJsonl(history.events));
    const r = spawnRecovery(['analyze', data, '--threshold', '0.75']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Boot waves/);
    expect(r.stdout).toMatch(/Service order: /);
    expect(r.stdout).toMatch(/→ .* score 0\.\d\d, \d+ samples/);
    const json = JSON.parse(
      spawnRecovery(['analyze', data, '--threshold', '0.75', '--json']).stdout,
    );
    expect(r.stdout).toContain(
      `Machine order: ${json.machineOrder.join(', ')}\n`,
    );
    // Every machine wait says why it is there; those that rest on reboots, how often the machine
    // followed them, in both outputs.
    const waits = json.machineDependencies.flatMap(
      (m: { machine: string; waitsFor: string[]; because: any[] }) => {
        expect(m.because.map(w => w.waitsFor)).toEqual(m.waitsFor);
        return m.because.map(w => ({ machine: m.machine, ...w }));
      },
    );
    expect(waits.length).toBeGreaterThan(0);
    const lines = r.stdout.split('\n');
    for (const w of waits) {
      const line = lines.find(l =>
        l.startsWith(`  ${w.machine} → ${w.waitsFor}  `),
      );
      expect(line, `${w.machine} → ${w.waitsFor}`).toBeDefined();
      if (w.reason !== 'reboots')
        expect(line).toContain(
          `${w.service} → ${w.dependsOn}, score ${w.score.toFixed(2)}`,
        );
    }
    expect(json.rebootsFollowed.length).toBeGreaterThan(0);
    for (const f of json.rebootsFollowed) {
      expect(
        json.machineDependencies.find(
          (m: { machine: string }) => m.machine === f.machine,
        ).waitsFor,
      ).toContain(f.waitsFor);
      expect(
        lines.find(l => l.startsWith(`  ${f.machine} → ${f.waitsFor}  `)),
      ).toContain(
        `its services came back after ${f.waitsFor} rebooted on its own, ${f.followed} of ${f.chances} reboots`,
      );
    }
  });
});

describe('recovery analyze (in process)', () => {
  it('quotes in the summary the names holding its separators or quotes, escapes invisible characters, and prints other names as they are', async () => {
    // service, machine, minutes after the first start of each boot.
    const names: Array<[string, string, number]> = [
      ['a"q', 'm"1', 0],
      ['b\\bs', 'm 2', 8.5],
      // A right-to-left override reorders the rest of a terminal line; a zero-width space hides.
      ['c\u202e\u200b', 'm\u00e9\u2603', 20],
      ['d, x \u2192 y', 'm,4', 11],
      ['e  score 0.99', 'm5\u2028', 9],
    ];
    const lines = Array.from({ length: 25 }, (_, b) =>
      names.map(([service, machine, minutes]) =>
        JSON.stringify({
          time: new Date(
            Date.UTC(2026, 0, 1 + b) +
              minutes * 60_000 +
              (minutes ? ((b * 37) % 7) * 20_000 : 0),
          ).toISOString(),
          machine,
          service,
          event: 'start',
        }),
      ),
    ).flat();
    const data = file('names.jsonl', lines);
    const r = await run(['analyze', data]);
    expect(r.status).toBe(0);
    const summary = r.stdout.slice(r.stdout.indexOf('Boot waves'));
    expect(summary).toBe(
      [
        'Boot waves (machines in a wave can boot in parallel):',
        '  1. "m\\"1"',
        '  2. m 2, m,4, "m5\\u{2028}"',
        '  3. m\u00e9\u2603',
        '',
        'Machine order: "m\\"1", m 2, "m5\\u{2028}", m,4, m\u00e9\u2603',
        '',
        'Service order: "a\\"q", b\\bs, "e  score 0.99", "d, x \u2192 y", "c\\u{202e}\\u{200b}"',
        '',
        'Dependencies (4):',
        '  b\\bs \u2192 "a\\"q"  score 0.93, 25 samples',
        '  "c\\u{202e}\\u{200b}" \u2192 "d, x \u2192 y"  score 0.89, 25 samples',
        '  "d, x \u2192 y" \u2192 "a\\"q"  score 0.96, 25 samples',
        '  "e  score 0.99" \u2192 "a\\"q"  score 0.96, 25 samples',
        '',
        'Machine waits (why each machine waits for another):',
        '  m 2 \u2192 "m\\"1"  b\\bs \u2192 "a\\"q", score 0.93',
        '  m,4 \u2192 "m\\"1"  "d, x \u2192 y" \u2192 "a\\"q", score 0.96',
        '  "m5\\u{2028}" \u2192 "m\\"1"  "e  score 0.99" \u2192 "a\\"q", score 0.96',
        '  m\u00e9\u2603 \u2192 m,4  "c\\u{202e}\\u{200b}" \u2192 "d, x \u2192 y", score 0.89',
        '',
      ].join('\n'),
    );
    expect(r.stdout).not.toMatch(/[\p{Cf}\u2028\u2029]/u);
    // The JSON keeps every name exact.
    const json = JSON.parse((await run(['analyze', data, '--json'])).stdout);
    expect(json.serviceOrder).toEqual([
      'a"q',
      'b\\bs',
      'e  score 0.99',
      'd, x \u2192 y',
      'c\u202e\u200b',
    ]);
    expect(json.machineOrder).toContain('m5\u2028');
  });
  it('prints no invisible character of a name raw in the warnings of the summary or of --json', async () => {
    // A service that only failed is named in a warning; its name holds a right-to-left override.
    const lines = [
      ...toJsonl(history.events),
      JSON.stringify({
        time: new Date(history.events[0].time).toISOString(),
        machine: 'm-x',
        service: 'batch\u202e',
        event: 'failure',
      }),
    ];
    const data = file('invisible-warning.jsonl', lines);
    const r = await run(['analyze', data]);
    expect(r.stdout).toContain(
      '  - 1 service failed but never started, left out of the analysis: batch\\u{202e} (m-x)\n',
    );
    const j = await run(['analyze', data, '--json']);
    expect(j.stderr).toContain(
      'recovery: warning: 1 service failed but never started, left out of the analysis: batch\\u{202e} (m-x)\n',
    );
    expect(JSON.parse(j.stdout).warnings).toContain(
      '1 service failed but never started, left out of the analysis: batch\u202e (m-x)',
    );
    expect(`${r.stdout}${j.stderr}`).not.toMatch(/\u202e/);
  });
  it('journald: detected, irrelevant records skipped', async () => {
    const lines = history.events.map((e, i) => toJournaldRecord(e, i));
    lines.splice(
      1,
      0,
      JSON.stringify({
        __REALTIME_TIMESTAMP: '1',
        _HOSTNAME: 'x',
        MESSAGE: 'noise',
      }),
    );
    const r = await run(['analyze', file('j.json', lines), '--json']);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.services.length).toBeGreaterThan(10);
    expect(out.serviceOrder.length).toBe(out.services.length);
  });
  it('journald: journalctl -o json-seq (an RS before each record) reads as -o json does', async () => {
    const lines = history.events.map((e, i) => toJournaldRecord(e, i));
    const json = await run(['analyze', file('j-plain.json', lines), '--json']);
    const seq = await run([
      'analyze',
      file(
        'j-seq.json',
        lines.map(l => `\u001e${l}`),
      ),
      '--json',
    ]);
    expect(seq.status).toBe(0);
    expect(seq.stdout).toBe(json.stdout);
  });
  it('--lenient: a malformed first record does not make a journal jsonl; it is read as journald, as without that record', async () => {
    const lines = history.events.map((e, i) => toJournaldRecord(e, i));
    const p = file('j-first-bad.json', ['{}', ...lines]);
    const r = await run(['analyze', p, '--json', '--lenient']);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.skipped).toBe(1);
    const clean = JSON.parse(
      (await run(['analyze', file('j-clean.json', lines), '--json'])).stdout,
    );
    expect({ ...out, skipped: 0 }).toEqual(clean);
    expect(out.services.length).toBeGreaterThan(10);
  });
  it("--at is read as a record's time is: the same forms, bounds and messages, naming --at", async () => {
    const good = file('at-good.jsonl', [
      '{"time":1700000000000,"machine":"m","service":"s"}',
    ]);
    for (const value of [
      'noon',
      '2024-02-30T00:00:00Z',
      '1969-12-31T23:59:59.999Z',
      '99999999999999999999',
      '2024-05-01T10:00:00+2',
    ]) {
      const asTime = file('at-as-time.jsonl', [
        JSON.stringify({ time: value, machine: 'm', service: 's' }),
      ]);
      const record = await run(['analyze', asTime]);
      const at = await run(['analyze', good, '--at', value]);
      expect(
        record.stderr.startsWith(`recovery: ${asTime}:1: 'time' `),
        record.stderr,
      ).toBe(true);
      expect({ status: at.status, stderr: at.stderr }).toEqual({
        status: 2,
        stderr: record.stderr.replace(`${asTime}:1: 'time'`, "'--at'"),
      });
    }
  });
  it.each([
    [
      'a malformed irrelevant journald record',
      '{"__REALTIME_TIMESTAMP": oops, "MESSAGE": "x}',
      'invalid JSON',
    ],
    [
      'a unit name longer than the store holds',
      JSON.stringify({
        __REALTIME_TIMESTAMP: '1700000000000000',
        _HOSTNAME: 'h',
        MESSAGE_ID: '39f53479d3a045ac8e11786248231fbf',
        UNIT: 'u'.repeat(256),
      }),
      "'UNIT' is longer than 255 characters (256)",
    ],
    [
      'a time past the latest valid date',
      JSON.stringify({
        __REALTIME_TIMESTAMP: '99999999999999999999999',
        _HOSTNAME: 'h',
        MESSAGE_ID: '39f53479d3a045ac8e11786248231fbf',
        UNIT: 'u',
      }),
      "'__REALTIME_TIMESTAMP' is out of range",
    ],
  ])(
    'journald: %s exits 2 naming file and line; --lenient skips and counts it',
    async (_what, bad, message) => {
      const lines = history.events.map((e, i) => toJournaldRecord(e, i));
      lines.splice(5, 0, bad);
      const p = file('j-bad.json', lines);
      const r = await run(['analyze', p, '--json']);
      expect({ status: r.status, stderr: r.stderr }).toEqual({
        status: 2,
        stderr: expect.stringContaining(`recovery: ${p}:6: ${message}`),
      });
      const lenient = await run(['analyze', p, '--json', '--lenient']);
      expect(lenient.status).toBe(0);
      expect(JSON.parse(lenient.stdout).skipped).toBe(1);
    },
  );
  it('docker: detected, forced format works too', async () => {
    const p = file('d.json', toDocker(history.events));
    const a = await run(['analyze', p, '--json']);
    const b = await run(['analyze', p, '--json', '--format', 'docker']);
    expect(a.status).toBe(0);
    expect(b.stdout).toBe(a.stdout);
    expect(JSON.parse(a.stdout).dependencies.length).toBeGreaterThan(0);
  });
  it('docker: a service label naming several services gives each its initialization', async () => {
    const start = (ms: number, name: string, service: string) =>
      JSON.stringify({
        Type: 'container',
        Action: 'start',
        Actor: {
          Attributes: {
            name,
            'recovery.backstage-recovery.io/service': service,
            'recovery.backstage-recovery.io/machine': name,
          },
        },
        timeNano: ms * 1_000_000,
      });
    const p = file('labels.json', [
      start(1_700_000_000_000, 'data-01', 'database, files'),
      start(1_700_000_600_000, 'web-01', 'web'),
    ]);
    const r = await run(['analyze', p, '--json']);
    expect(r.status).toBe(0);
    expect(
      JSON.parse(r.stdout).services.map(
        (s: { service: string; machines: string[] }) => [s.service, s.machines],
      ),
    ).toEqual([
      ['database', ['data-01']],
      ['files', ['data-01']],
      ['web', ['web-01']],
    ]);
  });
  it('several files of different formats in one run', async () => {
    const half = Math.floor(history.events.length / 2);
    const a = file('part1.jsonl', toJsonl(history.events.slice(0, half)));
    const b = file(
      'part2.json',
      history.events.slice(half).map((e, i) => toJournaldRecord(e, i)),
    );
    const r = await run(['analyze', a, b, '--json']);
    expect(r.status).toBe(0);
    // Every start of both halves counts, per service: either file alone, or one misread, falls short.
    const starts = new Map<string, number>();
    for (const e of history.events)
      if (e.type === 'start')
        starts.set(e.service, (starts.get(e.service) ?? 0) + 1);
    const out = JSON.parse(r.stdout);
    expect(
      new Map(
        out.services.map((s: { service: string; initializations: number }) => [
          s.service,
          s.initializations,
        ]),
      ),
    ).toEqual(starts);
    const read = await readEventFiles([a, b], {});
    expect(read.formats).toEqual({ [a]: 'jsonl', [b]: 'journald' });
    expect(read.lines).toBe(history.events.length);
    // journald has no clock reference, so the second half's clock records are read but irrelevant.
    expect(read.ignored).toBe(
      history.events.slice(half).filter(e => e.type === 'clock').length,
    );
    expect(read.events.filter(e => e.type === 'failure').length).toBe(
      history.events.filter(e => e.type === 'failure').length,
    );
  });
  it('journald: warns of hosts exported one file each under one _HOSTNAME (localhost), which it analyses as one machine', async () => {
    const host = (id: string) =>
      file(
        `localhost-${id}.json`,
        history.events
          .filter(e => e.type === 'start')
          .slice(0, 40)
          .map((e, i) =>
            JSON.stringify({
              ...JSON.parse(toJournaldRecord(e, i)),
              _HOSTNAME: 'localhost',
              _MACHINE_ID: id,
            }),
          ),
      );
    const [a, b] = [host('a1'), host('b2')];
    const r = await run(['analyze', a, b, '--json']);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.machineOrder).toEqual(['localhost']);
    expect(out.warnings).toContain(
      `_HOSTNAME "localhost" names 2 machines (_MACHINE_ID a1 at ${a}:1, b2 at ${b}:1): their events are analysed as one machine's. ` +
        `Several hosts, or one reinstalled? Give each host a name of its own, or each host's export (jq -c '._HOSTNAME = "web-01"')`,
    );
  });
  it('refuses a missing file or a directory among the files before reading any of them', async () => {
    // The first file would stop the run at its line 1, were it read.
    const bad = file('read-first.jsonl', ['not json']);
    expect(await run(['analyze', bad, join(dir, 'no-such.jsonl')])).toEqual({
      status: 2,
      stdout: '',
      stderr: `recovery: ${join(dir, 'no-such.jsonl')}: cannot read file (ENOENT)\n`,
    });
    expect(await run(['analyze', bad, '-', dir])).toEqual({
      status: 2,
      stdout: '',
      stderr: `recovery: ${dir}: not a file (give the log files themselves)\n`,
    });
  });
  it('names the files that gave no events beside those that did', async () => {
    const good = file('good.jsonl', toJsonl(history.events));
    const empty = file('empty.jsonl', []);
    const noise = file('noise.json', [
      JSON.stringify({
        __REALTIME_TIMESTAMP: '1700000000000000',
        _HOSTNAME: 'h',
        MESSAGE: 'cron ran',
      }),
    ]);
    const r = await run(['analyze', good, empty, noise, '--json']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).warnings).toContain(
      `2 of 3 files gave no events: ${empty} (empty), ${noise} (1 line, none an event) (the wrong file, or another format?)`,
    );
    // Alone, such a file is no input at all.
    expect((await run(['analyze', empty])).status).toBe(2);
  });
  it.each([
    ['an empty file', () => [file('empty.jsonl', [])], /empty input/],
    [
      'no initialization events',
      () => [
        file('noinit.json', [
          JSON.stringify({
            __REALTIME_TIMESTAMP: '1',
            _HOSTNAME: 'h',
            MESSAGE: 'x',
          }),
        ]),
        file('noinit2.jsonl', [
          '{"time":1714557600000,"machine":"m","event":"clock","reference":"2024-05-01T10:00:02Z"}',
        ]),
      ],
      /no initialization \(start\) events in the input, only 1 clock reading: \S*noinit\.json, \S*noinit2\.jsonl \(2 lines read as journald, jsonl, 1 irrelevant record, 0 skipped\)/,
    ],
    [
      'a missing file',
      () => [join(dir, 'nope.jsonl')],
      /nope\.jsonl: cannot read file \(ENOENT\)/,
    ],
    ['a directory', () => [dir], /: not a file/],
    [
      'a journald unit record without UNIT',
      () => [
        file('j2.json', [
          JSON.stringify({
            __REALTIME_TIMESTAMP: '1',
            _HOSTNAME: 'h',
            MESSAGE_ID: '39f53479d3a045ac8e11786248231fbf',
          }),
        ]),
      ],
      /j2\.json:1: unit record without 'UNIT'/,
    ],
    [
      'a docker start without timeNano',
      () => [
        file('d2.json', [
          JSON.stringify({
            Type: 'container',
            Action: 'start',
            Actor: { Attributes: { name: 'x' } },
          }),
        ]),
        '--format',
        'docker',
      ],
      /d2\.json:1: missing 'timeNano'/,
    ],
    [
      'invalid JSON',
      () => [file('j3.jsonl', ['{"time": 1,'])],
      /j3\.jsonl:1: invalid JSON/,
    ],
    [
      'a bad threshold',
      () => [
        file('t.jsonl', ['{"time":1,"machine":"m","service":"s"}']),
        '--threshold',
        '2',
      ],
      /--threshold/,
    ],
    [
      'a bad --kernel-peak',
      () => [
        file('t4.jsonl', ['{"time":1,"machine":"m","service":"s"}']),
        '--kernel-peak',
        '90',
      ],
      /--kernel-peak: must be from 1 s up to \(not including\) 60 min, got '90'/,
    ],
    [
      'a --kernel-peak under a second',
      () => [
        file('t4.jsonl', ['{"time":1,"machine":"m","service":"s"}']),
        '--kernel-peak',
        '0.5s',
      ],
      /--kernel-peak: must be from 1 s up to \(not including\) 60 min, got '0.5s'/,
    ],
    [
      'a --kernel-peak in hex',
      () => [
        file('t4.jsonl', ['{"time":1,"machine":"m","service":"s"}']),
        '--kernel-peak',
        '0x5',
      ],
      /--kernel-peak: must be minutes, or a duration such as 5s, 90s or 1m30s, got '0x5'/,
    ],
    [
      'a --kernel-peak in hours',
      () => [
        file('t4.jsonl', ['{"time":1,"machine":"m","service":"s"}']),
        '--kernel-peak',
        '1h',
      ],
      /--kernel-peak: must be from 1 s up to \(not including\) 60 min, got '1h'/,
    ],
    [
      'a --threshold in hex',
      () => [
        file('t4.jsonl', ['{"time":1,"machine":"m","service":"s"}']),
        '--threshold',
        '0x1',
      ],
      /--threshold: expected a plain decimal in \(0, 1\] such as 0\.7 \(no exponent, sign or spaces\), got '0x1'/,
    ],
    [
      'a bad --at',
      () => [
        file('t2.jsonl', ['{"time":1,"machine":"m","service":"s"}']),
        '--at',
        'noon',
      ],
      /^recovery: '--at' must be ISO 8601 with a zone \(e\.g\. 2024-05-01T10:00:00Z\) or epoch milliseconds, got "noon"\n$/,
    ],
    [
      'an --at past what a date holds',
      () => [
        file('t2.jsonl', ['{"time":1,"machine":"m","service":"s"}']),
        '--at',
        '99999999999999999999',
      ],
      /^recovery: '--at' is out of range \("99999999999999999999"\): valid times run from 1970 to the year \+275760\n$/,
    ],
    [
      'an --at in epoch seconds',
      () => [
        file('t2.jsonl', ['{"time":1,"machine":"m","service":"s"}']),
        '--at',
        '1733539200',
      ],
      /^recovery: '--at' looks like epoch seconds \(1733539200\): as milliseconds it is 1970-01-21T01:32:19\.200Z, before 2000; as seconds, 2024-12-07T02:40:00\.000Z\. Give epoch milliseconds or an ISO 8601 time with a zone \(e\.g\. 2024-05-01T10:00:00Z\)\n$/,
    ],
    [
      'an --at on a day the month does not have',
      () => [
        file('t2.jsonl', ['{"time":1,"machine":"m","service":"s"}']),
        '--at',
        '2024-02-30T00:00:00Z',
      ],
      /^recovery: '--at' is not a valid date: "2024-02-30T00:00:00Z"\n$/,
    ],
    [
      'an --at before 1970',
      () => [
        file('t2.jsonl', ['{"time":1,"machine":"m","service":"s"}']),
        '--at',
        '1969-12-31T23:59:59.999Z',
      ],
      /^recovery: '--at' is before 1970 \("1969-12-31T23:59:59\.999Z"\)/,
    ],
    [
      'a file without line breaks',
      () => {
        const p = join(dir, 'noline.bin');
        writeFileSync(p, Buffer.alloc(64 * 1024 * 1024 + 2 * 1024 * 1024, 'x'));
        return [
          file('ok.jsonl', [
            '{"time":1,"machine":"m","service":"s"}',
            '{"time":2,"machine":"m","service":"t"}',
          ]),
          p,
        ];
      },
      /noline\.bin:1: line longer than 64 MiB \(a file without line breaks: binary or compressed\?\)/,
    ],
    [
      'a missing map file',
      () => [
        file('t5.jsonl', ['{"time":1,"machine":"m","service":"s"}']),
        '--map',
        join(dir, 'nomap.json'),
      ],
      /nomap\.json: cannot read map file \(ENOENT\)/,
    ],
    [
      'a map that is a directory',
      () => [
        file('t6.jsonl', ['{"time":1,"machine":"m","service":"s"}']),
        '--map',
        dir,
      ],
      /: cannot read map file \(EISDIR\)/,
    ],
    [
      'a map that is null',
      () => {
        const m = join(dir, 'nullmap.json');
        writeFileSync(m, 'null');
        return [
          file('t7.jsonl', ['{"time":1,"machine":"m","service":"s"}']),
          '--map',
          m,
        ];
      },
      /nullmap\.json: service map must be a JSON object \{"services": \{"<name or \/regex\/>": "<service>"\}\}, got null\n$/,
    ],
    [
      'a map without services',
      () => {
        const m = join(dir, 'emptymap.json');
        writeFileSync(m, '{}');
        return [
          file('t9.jsonl', ['{"time":1,"machine":"m","service":"s"}']),
          '--map',
          m,
        ];
      },
      /emptymap\.json: service map has no 'services'/,
    ],
    [
      'a regex map result longer than 255 characters',
      () => {
        const m = join(dir, 'longmap.json');
        writeFileSync(
          m,
          JSON.stringify({ services: { '/^(.*)\\.service$/': '$1-$1' } }),
        );
        return [
          file('long.jsonl', [
            '{"time":1,"machine":"m","service":"db.service"}',
            `{"time":2,"machine":"m","service":"${'x'.repeat(200)}.service"}`,
          ]),
          '--map',
          m,
        ];
      },
      new RegExp(
        `^recovery: \\S*long\\.jsonl:2: service map entry '/\\^\\(\\.\\*\\)\\\\\\.service\\$/' turns '${'x'.repeat(200)}\\.service' into a service name that is longer than 255 characters \\(401\\)\n$`,
      ),
    ],
    [
      'more services than one analysis takes: the message alone, without the files',
      () => [
        file(
          'many.jsonl',
          Array.from(
            { length: 5001 },
            (_, i) =>
              `{"time":${1_700_000_000_000 + i},"machine":"m","service":"s${i}"}`,
          ),
        ),
      ],
      /^recovery: 5001 distinct services \(the analysis takes at most 5000: [^\n]*leave them out of the input\n$/,
    ],
    [
      'a map with a bad regex',
      () => {
        const m = join(dir, 'badmap.json');
        writeFileSync(m, JSON.stringify({ services: { '/(/': 'x' } }));
        return [
          file('t3.jsonl', ['{"time":1,"machine":"m","service":"s"}']),
          '--map',
          m,
        ];
      },
      /badmap\.json:1: .*invalid regular expression/,
    ],
    [
      'a map with a regex that backtracks exponentially',
      () => {
        const m = join(dir, 'nestedmap.json');
        writeFileSync(
          m,
          JSON.stringify({ services: { '/^([a-z0-9]+-?)+-prod$/': 'x' } }),
        );
        return [
          file('t3n.jsonl', ['{"time":1,"machine":"m","service":"s"}']),
          '--map',
          m,
        ];
      },
      /nestedmap\.json:1: service map entry '\/\^\(\[a-z0-9\]\+-\?\)\+-prod\$\/': the group '\(\[a-z0-9\]\+-\?\)\+' repeats what repeats within it \(nested quantifiers\)/,
    ],
    // Commander keeps the last: the site's map would be ignored unsaid.
    [
      'a second --map',
      () => [
        file('t3d.jsonl', ['{"time":1,"machine":"m","service":"s"}']),
        '--map',
        'site.json',
        '--map=team.json',
      ],
      /^recovery: --map given twice \('site\.json', then 'team\.json'\): give it once\n$/,
    ],
    // A map kept by hand, pretty-printed: the entry's line, that of the key's last writing (JSON.parse keeps it).
    [
      'a long map with a blank target, its line named',
      () => {
        const m = join(dir, 'handmap.json');
        const services = Object.fromEntries(
          Array.from({ length: 40 }, (_, i) => [
            `unit-${i}.service`,
            `svc-${i}`,
          ]),
        );
        writeFileSync(
          m,
          JSON.stringify(
            { services: { ...services, '/^db-(\\d+\\.service$/': 'db-$1' } },
            null,
            2,
          ).replace('"unit-3.service": "svc-3"', '"unit-3.service": ""'),
        );
        return [
          file('t3b.jsonl', ['{"time":1,"machine":"m","service":"s"}']),
          '--map',
          m,
        ];
      },
      /handmap\.json:6: service map entry 'unit-3\.service' must map to a non-blank string/,
    ],
    [
      'a long map with a bad regex, its line named',
      () => {
        const m = join(dir, 'handmap2.json');
        const services = Object.fromEntries(
          Array.from({ length: 40 }, (_, i) => [
            `unit-${i}.service`,
            `svc-${i}`,
          ]),
        );
        writeFileSync(
          m,
          JSON.stringify(
            { services: { ...services, '/^db-(\\d+\\.service$/': 'db-$1' } },
            null,
            2,
          ),
        );
        return [
          file('t3c.jsonl', ['{"time":1,"machine":"m","service":"s"}']),
          '--map',
          m,
        ];
      },
      /handmap2\.json:43: service map entry '\/\^db-\(\\d\+\\\.service\$\/': invalid regular expression \(.*Unterminated group\)\n$/,
    ],
  ])('%s: exit 2 with a clear message', async (_name, args, message) => {
    const r = await run(['analyze', ...(args as () => string[])()]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message as RegExp);
  });
  it.each([
    ['false', 'a boolean (false)'],
    ['0', 'a number (0)'],
    ['""', '""'],
    ['[]', 'an array ([])'],
    ['[{"services": {}}]', 'an array ([{"services":{}}])'],
    ['"x"', '"x"'],
  ])(
    'a map file holding %s, no JSON object: exit 2 naming the file and what it holds',
    async (json, got) => {
      const m = join(dir, 'notamap.json');
      writeFileSync(m, json);
      const r = await run([
        'analyze',
        file('t8.jsonl', ['{"time":1,"machine":"m","service":"s"}']),
        '--map',
        m,
      ]);
      expect({ status: r.status, stderr: r.stderr }).toEqual({
        status: 2,
        stderr: `recovery: ${m}: service map must be a JSON object {"services": {"<name or /regex/>": "<service>"}}, got ${got}\n`,
      });
    },
  );
  it('reads a map file that starts with a byte-order mark', async () => {
    const m = join(dir, 'bommap.json');
    writeFileSync(
      m,
      `\uFEFF${JSON.stringify({ services: { 'db.service': 'db' } })}`,
    );
    const r = await run([
      'analyze',
      file('bom.jsonl', ['{"time":1,"machine":"m","service":"db.service"}']),
      '--map',
      m,
      '--json',
    ]);
    expect(r.status).toBe(0);
    expect(
      JSON.parse(r.stdout).services.map((s: { service: string }) => s.service),
    ).toEqual(['db']);
  });
  it('no subcommand prints help on stderr and exits 1; --help prints it on stdout and exits 0', async () => {
    const bare = await run([]);
    expect(bare.status).toBe(1);
    expect(bare.stdout).toBe('');
    expect(bare.stderr).toMatch(/^Usage: recovery/);
    expect(bare.stderr).toMatch(/analyze \[options\] <files\.\.\.>/);
    for (const args of [['--help'], ['analyze', '--help']]) {
      const help = await run(args);
      expect(help.status).toBe(0);
      expect(help.stderr).toBe('');
      expect(help.stdout).toMatch(/^Usage: recovery/);
    }
  });
  it.each([
    [
      'the largest time there is',
      '{"time":1714557600000,"machine":"m","event":"clock","reference":8640000000000000}',
      "'reference' is 273731 years ahead of its 'time': no clock is more than 100 years off",
    ],
  ])(
    "a clock reading that would move its machine's boots (%s) exits 2 naming file and line; --lenient skips it",
    async (_what, reading, message) => {
      const p = file('farclock.jsonl', [
        ...toJsonl(history.events).slice(0, 3),
        reading,
        ...toJsonl(history.events).slice(3),
      ]);
      const r = await run(['analyze', p, '--json']);
      expect({ status: r.status, stderr: r.stderr }).toEqual({
        status: 2,
        stderr: expect.stringContaining(
          `recovery: ${p}:4: a clock reading's ${message}`,
        ),
      });
      const lenient = await run(['analyze', p, '--lenient', '--json']);
      expect({
        status: lenient.status,
        skipped: JSON.parse(lenient.stdout).skipped,
      }).toEqual({ status: 0, skipped: 1 });
    },
  );
  it.runIf(process.platform === 'linux')(
    'names the file whose read fails after it was opened (an I/O error), exit 2',
    async () => {
      // A regular file to stat, whose first read fails: the process's memory at address 0.
      expect(await run(['analyze', '/proc/self/mem'])).toEqual({
        status: 2,
        stdout: '',
        stderr: 'recovery: /proc/self/mem: cannot read file (EIO)\n',
      });
    },
  );
  it('an unknown --format is a usage error', async () => {
    const r = await run(['analyze', 'x', '--format', 'xml']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/Allowed choices are jsonl, journald, docker/);
  });
  it('a last line cut off mid-record (a log copied while being written) is named as such; --lenient skips it', async () => {
    const p = join(dir, 'cut.jsonl');
    writeFileSync(
      p,
      `${toJsonl(history.events).join('\n')}\n{"time": 1714557600000, "machine": "m", "serv`,
    );
    const r = await run(['analyze', p, '--json']);
    expect({ status: r.status, stderr: r.stderr }).toEqual({
      status: 2,
      stderr: expect.stringMatching(
        new RegExp(
          `^recovery: \\S*cut\\.jsonl:${history.events.length + 1}: invalid JSON \\(.*\\): the last line, without a line end; a log copied while it was still being written\\?\n$`,
        ),
      ),
    });
    const lenient = await run(['analyze', p, '--lenient', '--json']);
    expect({
      status: lenient.status,
      skipped: JSON.parse(lenient.stdout).skipped,
    }).toEqual({ status: 0, skipped: 1 });
    // The same broken record ended by a line break is only invalid.
    const ended = file('cut-ended.jsonl', [
      ...toJsonl(history.events),
      '{"time": 1714557600000, "machine": "m", "serv',
    ]);
    expect((await run(['analyze', ended])).stderr).toMatch(
      /cut-ended\.jsonl:\d+: invalid JSON \([^\n]*\)\n$/,
    );
  });
  it('records whose line breaks were lost, without a last line end: says so, not that the log was cut off', async () => {
    const p = join(dir, 'joined.jsonl');
    writeFileSync(p, toJsonl(history.events.slice(0, 3)).join(''));
    const r = await run(['analyze', p]);
    expect({ status: r.status, stderr: r.stderr }).toEqual({
      status: 2,
      stderr: expect.stringMatching(
        /^recovery: \S*joined\.jsonl:1: invalid JSON \(.*\): several records on one line, their line breaks lost\? Give one JSON object a line \(curl -d @FILE drops line breaks; --data-binary @FILE keeps them\)\n$/,
      ),
    });
  });
  it('a podman events export: names it as such and says how to give its events, detected or forced; a record of no format names the three', async () => {
    const podman = (status: string, extra: object) =>
      JSON.stringify({
        ID: '3f1c0a9d2b7e',
        Image: 'docker.io/library/nginx:1.25',
        Name: 'web',
        Status: status,
        Type: 'container',
        Attributes: { name: 'web' },
        ...extra,
      });
    const hint =
      " (a podman events record? Podman's own JSON is no format read here: run docker events --format '{{json .}}' against Podman's Docker-compatible API socket (podman system service), or convert it to jsonl with jq as the recovery CLI's README shows)\n";
    const before = file('podman3.json', [
      podman('start', { Time: '2026-09-01T06:00:00.123456789Z' }),
      podman('died', { Time: '2026-09-01T06:01:00Z', ContainerExitCode: 1 }),
    ]);
    const since = file('podman5.json', [
      podman('start', { time: 1788242400, timeNano: 1788242400123456789 }),
    ]);
    expect((await run(['analyze', before])).stderr).toBe(
      `recovery: ${before}:1: missing 'time'${hint}`,
    );
    expect((await run(['analyze', before, '--format', 'docker'])).stderr).toBe(
      `recovery: ${before}:1: not a docker record${hint}`,
    );
    expect((await run(['analyze', since])).stderr).toBe(
      `recovery: ${since}:1: not a docker record${hint}`,
    );
    const none = file('none.json', [
      JSON.stringify({
        ts: '2026-09-01T06:00:00Z',
        host: 'web-01',
        unit: 'db',
      }),
    ]);
    const r = await run(['analyze', none]);
    expect({ status: r.status, stderr: r.stderr }).toEqual({
      status: 2,
      stderr: `recovery: ${none}:1: missing 'time' (a record of none of the formats read: jsonl needs time, machine, service; journald (journalctl -o json) __REALTIME_TIMESTAMP, _HOSTNAME, MESSAGE_ID, UNIT; docker (docker events --format '{{json .}}') timeNano, Action, Actor with the container's name or labels)\n`,
    });
  });
  it('--lenient with every record malformed: says so, not that the input is empty', async () => {
    const p = file(
      'pretty.json',
      JSON.stringify(
        { time: 1714557600000, machine: 'm', service: 's' },
        null,
        2,
      ).split('\n'),
    );
    const r = await run(['analyze', p, '--lenient']);
    expect({ status: r.status, stderr: r.stderr }).toEqual({
      status: 2,
      stderr: `recovery: no valid records in ${p}: every record is malformed (5 lines skipped with --lenient; without it the run stops at the first and says what is wrong)\n`,
    });
  });
  it('a start that a clock reading in another file moves past the last date there is: exit 2 naming its file and line, the offset and the reading; --lenient skips and counts it', async () => {
    const events = file('edge-events.json', [
      ...toDocker(history.events.filter(e => e.type === 'start').slice(0, 40)),
      // Two services on one line: one line, skipped once.
      JSON.stringify({
        Type: 'container',
        Action: 'start',
        Actor: {
          Attributes: {
            name: 'c',
            'recovery.backstage-recovery.io/service': 'x, y',
            'recovery.backstage-recovery.io/machine': 'edge-01',
          },
        },
        timeNano: `${BigInt(8.64e15 - 5_000) * 1_000_000n}`,
      }),
    ]);
    const clocks = file('edge-clocks.jsonl', [
      JSON.stringify({
        time: '2024-05-01T10:00:00Z',
        machine: 'edge-01',
        event: 'clock',
        reference: '2024-05-01T10:00:10Z',
      }),
    ]);
    const r = await run(['analyze', events, clocks, '--json']);
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({
      status: 2,
      stdout: '',
      stderr:
        `recovery: ${events}:41: its time +275760-09-12T23:59:55.000Z (machine time) is past the last date there is (+275760-09-13T00:00:00.000Z) once moved by +10.0 s, ` +
        `the offset of edge-01's clock from its reading at ${clocks}:1 (taken at 2024-05-01T10:00:00.000Z, machine time): is the event's time, or that reading's 'reference', in the wrong unit?\n`,
    });
    const lenient = await run([
      'analyze',
      events,
      clocks,
      '--json',
      '--lenient',
    ]);
    expect(lenient.status).toBe(0);
    const out = JSON.parse(lenient.stdout);
    expect(out.skipped).toBe(1);
    expect(
      out.services.map((s: { service: string }) => s.service),
    ).not.toContain('x');
    // The summary counts it with the malformed lines.
    expect(
      (await run(['analyze', events, clocks, '--lenient'])).stdout,
    ).toMatch(/^Analysed 42 lines: .*, 1 malformed line skipped;/);
  });
  it('a name with a lone UTF-16 surrogate (a JSON "\\ud800"): exit 2 naming file, line and field, as POST /events does; --lenient skips it', async () => {
    const p = file('surrogate.jsonl', [
      '{"time":1714557600000,"machine":"m","service":"db"}',
      '{"time":1714557660000,"machine":"web-\\ud800","service":"api"}',
    ]);
    const r = await run(['analyze', p, '--json']);
    expect({ status: r.status, stderr: r.stderr }).toEqual({
      status: 2,
      stderr: `recovery: ${p}:2: 'machine' contains a lone UTF-16 surrogate (\\ud800 at character 5 of "web-\\ud800"): UTF-8 has no form for it, so it would be stored and shown as U+FFFD and match no catalog name; a name cut inside a character?\n`,
    });
    const lenient = await run(['analyze', p, '--json', '--lenient']);
    expect(lenient.status).toBe(0);
    const out = JSON.parse(lenient.stdout);
    expect(out.skipped).toBe(1);
    expect(out.machineOrder).toEqual(['m']);
    expect(lenient.stdout).not.toContain('\uFFFD');
  });
  it('the summary counts in the singular where there is one', async () => {
    const r = await run([
      'analyze',
      file('one.jsonl', [
        '{"time":1714557600000,"machine":"m","service":"s"}',
        '{"__x":1}',
      ]),
      '--lenient',
    ]);
    expect(r.stdout.split('\n')[0]).toBe(
      'Analysed 2 lines: 1 initialization of 1 service on 1 machine, 1 malformed line skipped; point in time 2024-05-01T10:00:00.000Z.',
    );
    // A dependency seen in one boot.
    const once = await run([
      'analyze',
      file('once.jsonl', [
        '{"time":"2024-05-01T10:00:00Z","machine":"m1","service":"db"}',
        '{"time":"2024-05-01T10:10:00Z","machine":"m2","service":"api"}',
      ]),
    ]);
    expect(once.stdout).toContain(
      '\n  api → db  score 1.00, 1 sample (low confidence)\n',
    );
  });
  it('--at shifts the weight to the boots near it', async () => {
    const p = file('at.jsonl', toJsonl(history.events));
    const r = await run([
      'analyze',
      p,
      '--json',
      '--at',
      '2024-01-02T00:00:00Z',
    ]);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).at).toBe('2024-01-02T00:00:00.000Z');
    // A zone in hours only, as ISO 8601 allows.
    const hours = await run([
      'analyze',
      p,
      '--json',
      '--at',
      '2024-01-02T02:00:00+02',
    ]);
    expect(hours.status).toBe(0);
    expect(JSON.parse(hours.stdout).at).toBe('2024-01-02T00:00:00.000Z');
    // Epoch milliseconds, as a record's time; only those before 2000 are taken for seconds.
    for (const [ms, at] of [
      [String(Date.UTC(2024, 0, 2)), '2024-01-02T00:00:00.000Z'],
      [String(Date.UTC(2000, 0, 1)), '2000-01-01T00:00:00.000Z'],
    ]) {
      const given = await run(['analyze', p, '--json', '--at', ms]);
      expect(given.status).toBe(0);
      expect(JSON.parse(given.stdout).at).toBe(at);
    }
  });
});

describe('kernel', () => {
  it('moves the kernel peak to where fast starters start, saying so; --kernel-peak keeps the one given', async () => {
    // Services start 3-8 min after their last dependency: the default kernel (peak 10 min) scores
    // most of them under the threshold, so the peak moves to their median delay.
    const fast = generateHistory({
      seed: 9,
      machines: 6,
      services: 24,
      siteBoots: 30,
      machineReboots: 20,
      delayMinutes: [3, 8],
    });
    const p = file('fast.jsonl', toJsonl(fast.events));
    const m = join(dir, 'fast-map.json');
    writeFileSync(m, JSON.stringify(fast.map));
    const r = await run(['analyze', p, '--map', m, '--json']);
    expect(r.status).toBe(0);
    const fitted = JSON.parse(r.stdout);
    expect(fitted.warnings[0]).toMatch(
      /^the delay kernel's peak moved from 10 to [3-8]\.\d min: \d+ of \d+ dependencies the boots show scored under the threshold at 10 min, their services starting a median [3-8]\.\d min after them/,
    );
    const kept = JSON.parse(
      (await run(['analyze', p, '--map', m, '--json', '--kernel-peak', '10']))
        .stdout,
    );
    expect(kept.warnings.join('\n')).not.toMatch(/peak moved/);
    expect(kept.warnings.join('\n')).toMatch(
      /score under the threshold 0\.7: their services start a median [3-8]\.\d min after them/,
    );
    const before = evaluate(kept, fast.truth);
    const after = evaluate(fitted, fast.truth);
    expect(after.recall).toBeGreaterThan(before.recall + 0.3);
    expect(after.violatedWaves).toBe(0);
  });
  it('--kernel-peak in seconds analyses a site that boots in seconds, as its history in minutes', async () => {
    const h = generateHistory({
      seed: 4,
      machines: 6,
      services: 16,
      siteBoots: 25,
      machineReboots: 15,
    });
    const origin = h.events[0].time;
    const fast = (t: number) => Math.round(origin + (t - origin) / 60);
    const m = join(dir, 'seconds-map.json');
    writeFileSync(m, JSON.stringify(h.map));
    const inMinutes = file('minutes.jsonl', toJsonl(h.events));
    const inSeconds = file(
      'seconds.jsonl',
      toJsonl(
        h.events.map(e => ({
          ...e,
          time: fast(e.time),
          ...(e.reference === undefined
            ? {}
            : { reference: fast(e.reference) }),
        })),
      ),
    );
    const minutes = JSON.parse(
      (
        await run([
          'analyze',
          inMinutes,
          '--map',
          m,
          '--json',
          '--kernel-peak',
          '10',
        ])
      ).stdout,
    );
    const seconds = await run([
      'analyze',
      inSeconds,
      '--map',
      m,
      '--json',
      '--kernel-peak',
      '10s',
    ]);
    expect(seconds.status).toBe(0);
    const result = JSON.parse(seconds.stdout);
    expect(result.waves).toEqual(minutes.waves);
    expect(
      result.dependencies.map((d: any) => `${d.service}<${d.dependsOn}`),
    ).toEqual(
      minutes.dependencies.map((d: any) => `${d.service}<${d.dependsOn}`),
    );
    expect(evaluate(result, h.truth).violatedWaves).toBe(0);
    // The same peak written as config writes durations, or in bare minutes: the same analysis.
    for (const same of ['0.1666666666666667', '10000ms']) {
      expect(
        (
          await run([
            'analyze',
            inSeconds,
            '--map',
            m,
            '--json',
            '--kernel-peak',
            same,
          ])
        ).stdout,
      ).toBe(seconds.stdout);
    }
    const ninety = await run([
      'analyze',
      inMinutes,
      '--map',
      m,
      '--json',
      '--kernel-peak',
      '90s',
    ]);
    expect(
      (
        await run([
          'analyze',
          inMinutes,
          '--map',
          m,
          '--json',
          '--kernel-peak',
          '1m30s',
        ])
      ).stdout,
    ).toBe(ninety.stdout);
    expect(
      (
        await run([
          'analyze',
          inMinutes,
          '--map',
          m,
          '--json',
          '--kernel-peak',
          '1.5',
        ])
      ).stdout,
    ).toBe(ninety.stdout);
  });
});

describe('kernel shape and boot durations', () => {
  const h = generateHistory({
    seed: 7,
    machines: 5,
    services: 12,
    siteBoots: 25,
    machineReboots: 10,
  });
  it('--kernel-shape gamma or lognormal scores with that kernel, its parameter after a colon', async () => {
    const p = file('shapes.jsonl', toJsonl(h.events));
    const m = join(dir, 'shapes-map.json');
    writeFileSync(m, JSON.stringify(h.map));
    const score = async (...shape: string[]) => {
      const r = await run([
        'analyze',
        p,
        '--map',
        m,
        '--json',
        '--kernel-peak',
        '10',
        ...shape,
      ]);
      expect(r.status).toBe(0);
      const out = JSON.parse(r.stdout);
      expect(evaluate(out, h.truth).violatedWaves).toBe(0);
      return JSON.stringify(out.correlation.matrix);
    };
    const piecewise = await score();
    expect(await score('--kernel-shape', 'piecewise')).toBe(piecewise);
    const gamma = await score('--kernel-shape', 'gamma');
    expect(await score('--kernel-shape', 'gamma:3')).toBe(gamma); // 3 is gamma's default
    const shapes = [
      piecewise,
      gamma,
      await score('--kernel-shape', 'gamma:8'),
      await score('--kernel-shape', 'lognormal'),
      await score('--kernel-shape', 'lognormal:0.3'),
    ];
    expect(new Set(shapes).size).toBe(5);
  });
  it('--boot-durations gives the critical path of the waves, and with --json criticalPath', async () => {
    const p = file('durations.jsonl', toJsonl(h.events));
    const m = join(dir, 'durations-map.json');
    writeFileSync(m, JSON.stringify(h.map));
    const plain = JSON.parse(
      (await run(['analyze', p, '--map', m, '--json'])).stdout,
    );
    const durations = Object.fromEntries(
      plain.machineOrder.map((machine: string, i: number) => [machine, 10 + i]),
    );
    const d = join(dir, 'durations.json');
    writeFileSync(d, JSON.stringify(durations));
    const r = await run([
      'analyze',
      p,
      '--map',
      m,
      '--json',
      '--boot-durations',
      d,
    ]);
    expect(r.status).toBe(0);
    const { criticalPath } = JSON.parse(r.stdout);
    // Wave after wave, the slowest machine of each.
    const slowest = plain.waves.map((w: string[]) =>
      Math.max(...w.map(x => durations[x])),
    );
    expect(criticalPath.byWaves.duration).toBe(
      slowest.reduce((a: number, b: number) => a + b, 0),
    );
    // The longest chain of machine waits: each machine on it waits for the one before it.
    const waits = new Map<string, string[]>(
      plain.machineDependencies.map(
        (x: { machine: string; waitsFor: string[] }) => [x.machine, x.waitsFor],
      ),
    );
    criticalPath.path
      .slice(1)
      .forEach((x: string, i: number) =>
        expect(waits.get(x)).toContain(criticalPath.path[i]),
      );
    expect(criticalPath.duration).toBe(
      criticalPath.path.reduce((a: number, x: string) => a + durations[x], 0),
    );
    expect(criticalPath.duration).toBeLessThanOrEqual(
      criticalPath.byWaves.duration,
    );
    const summary = await run([
      'analyze',
      p,
      '--map',
      m,
      '--boot-durations',
      d,
    ]);
    expect(summary.stdout).toContain(
      `Critical path (boot durations given): ${criticalPath.path.join(' → ')}, ${criticalPath.duration} s; wave after wave (the slowest machine of each): ${criticalPath.byWaves.duration} s`,
    );
    expect(
      JSON.parse((await run(['analyze', p, '--map', m, '--json'])).stdout),
    ).not.toHaveProperty('criticalPath');
  });
  it.each([
    [
      'an unknown shape',
      ['--kernel-shape', 'triangle'],
      "--kernel-shape: expected piecewise, gamma[:k] or lognormal[:sigma], got 'triangle'",
    ],
    [
      'a parameter that is no number',
      ['--kernel-shape', 'gamma:x'],
      "--kernel-shape: expected piecewise, gamma[:k] or lognormal[:sigma], k and sigma plain decimals, got 'gamma:x'",
    ],
    [
      'a parameter out of range',
      ['--kernel-shape', 'gamma:1'],
      "--kernel-shape: kernel gammaShape must be a finite number over 1 (got 1), got 'gamma:1'",
    ],
    [
      'a parameter to piecewise',
      ['--kernel-shape', 'piecewise:2'],
      "--kernel-shape: piecewise takes no parameter, got 'piecewise:2'",
    ],
  ])('refuses %s for --kernel-shape, exit 2', async (_, args, message) => {
    const r = await run([
      'analyze',
      file('shape-bad.jsonl', ['{"time":1,"machine":"m","service":"s"}']),
      ...args,
    ]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`recovery: ${message}\n`);
  });
  it.each([
    ['not JSON', '{"m1": 1,', /durations-bad\.json: invalid JSON/],
    [
      'an array',
      '[1, 2]',
      /durations-bad\.json: boot durations must be a JSON object \{"<machine>": seconds\}/,
    ],
    [
      'a negative duration',
      '{"m1": -1}',
      /durations-bad\.json: the boot duration of m1 must be a finite number, 0 or more \(got -1\)/,
    ],
    [
      'a duration as a string',
      '{"m1": "10s"}',
      /durations-bad\.json: the boot duration of m1 must be a finite number, 0 or more \(got "10s"\)/,
    ],
  ])(
    'refuses a --boot-durations file holding %s, naming it, exit 2',
    async (_, text, message) => {
      const d = join(dir, 'durations-bad.json');
      writeFileSync(d, text);
      const r = await run([
        'analyze',
        file('durations-bad.jsonl', ['{"time":1,"machine":"m","service":"s"}']),
        '--boot-durations',
        d,
      ]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(message);
    },
  );
});

describe('reading big inputs', () => {
  it('reads lines across chunk boundaries: multi-byte characters, CRLF, a last line without a newline', async () => {
    // Over 1 MiB, the size of a read chunk, so lines and characters straddle chunks.
    const lines = Array.from({ length: 12_000 }, (_, i) =>
      JSON.stringify({
        time: 1_700_000_000_000 + i * 1000,
        machine: 'mà-01',
        service: `sérvice-🚀-${i % 7}`,
        note: 'x'.repeat(i % 97),
      }),
    );
    const p = join(dir, 'chunks.jsonl');
    writeFileSync(p, lines.join('\r\n'));
    const read = await readEventFiles([p], {});
    expect(read.lines).toBe(12_000);
    expect(read.events).toHaveLength(12_000);
    expect(new Set(read.events.map(e => `${e.machine} ${e.service}`))).toEqual(
      new Set(Array.from({ length: 7 }, (_, k) => `mà-01 sérvice-🚀-${k}`)),
    );
    expect(read.events[11_999].time).toBe(1_700_000_000_000 + 11_999_000);
  });
  it('reports progress line by line while it streams a file', async () => {
    const data = file('progress.jsonl', toJsonl(history.events).slice(0, 95));
    const seen: Array<[string, number]> = [];
    const read = await readEventFiles([data], {
      onProgress: (f, lines) => seen.push([f, lines]),
      progressEvery: 30,
    });
    expect(read.lines).toBe(95);
    expect(seen).toEqual([
      [data, 30],
      [data, 60],
      [data, 90],
    ]);
  });
  it('draws progress on a terminal only, clearing each redraw to the line end, and ends its line before an error and at the end', async () => {
    // Blank lines count as lines: 250,000 of them reach the CLI's progress step cheaply.
    const lines = [
      ...toJsonl(history.events),
      ...Array<string>(250_000).fill(''),
    ];
    const long = file('progress-with-a-long-name.jsonl', lines);
    const short = file('p.jsonl', lines);
    let err = '';
    const tty = {
      stdout: () => {},
      stderr: (t: string) => (err += t),
      stderrIsTTY: true,
    };
    const drawn = (f: string) => `\rrecovery: ${f}: 250,000 lines read\x1b[K`;
    expect(await main(['analyze', long, short, '--json'], tty)).toBe(0);
    // The progress line ended before the warnings that follow it.
    expect(err.slice(0, err.indexOf('\n') + 1)).toBe(
      `${drawn(long)}${drawn(short)}\n`,
    );
    expect(
      err
        .slice(err.indexOf('\n') + 1)
        .split('\n')
        .filter(l => l && !l.startsWith('recovery: warning: ')),
    ).toEqual([]);
    const bad = file('progress-bad.jsonl', [...lines, '{"time": 1,']);
    err = '';
    expect(await main(['analyze', bad, '--json'], tty)).toBe(2);
    const failed = `${drawn(bad)}\nrecovery: ${bad}:${lines.length + 1}: invalid JSON`;
    expect(err.slice(0, failed.length)).toBe(failed);
    // Not a terminal (a pipe, a captured stream): no progress at all.
    expect((await run(['analyze', long, '--json'])).stderr).toBe(hostlessClock);
  });
  it('reads a line as long as the limit whole across many chunks; one more character is refused, even where the line ends in the chunk that passes the limit', async () => {
    const max = 64 * 1024 * 1024;
    const head = '{"time":2,"machine":"m","service":"long","note":"';
    const ok = join(dir, 'longest.jsonl');
    writeFileSync(
      ok,
      `{"time":1,"machine":"m","service":"s"}\n${head}${'x'.repeat(max - head.length - 2)}"}\n{"time":3,"machine":"m","service":"t"}\n`,
    );
    expect((await readEventFiles([ok], {})).events.map(e => e.service)).toEqual(
      ['s', 'long', 't'],
    );
    // 64 MiB fill the first 64 chunks exactly; the line ends in the 65th.
    const over = join(dir, 'over.jsonl');
    writeFileSync(
      over,
      `${'x'.repeat(max + 1)}\n{"time":3,"machine":"m","service":"t"}\n`,
    );
    await expect(readEventFiles([over], {})).rejects.toThrow(
      `${over}:1: line longer than 64 MiB (a file without line breaks: binary or compressed?)`,
    );
  });
});
