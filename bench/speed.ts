/**
 * Speed: a 1,000,000-line journald-style file (> 90% irrelevant records; 1,000 services on 200
 * machines; 100 boots) analysed through the CLI's code path, against just reading and
 * JSON-parsing every line, in one process, in alternating rounds. Prints each round, the ratio of
 * each side's best round (goal <= 3) and peak RSS.
 */
import {
  createReadStream,
  createWriteStream,
  mkdtempSync,
  rmSync,
  statSync,
} from 'fs';
import { once } from 'events';
import { tmpdir } from 'os';
import { join } from 'path';
import { createInterface } from 'readline';
import {
  generateHistory,
  journaldNoise,
  prng,
  toJournaldRecord,
} from './generate';
import { runAnalysis } from '../packages/cli/src/main';

const LINES = 1_000_000;
/** Rounds of (a) then (b); SPEED_ROUNDS=N for another count. */
const ROUNDS = Number(process.env.SPEED_ROUNDS ?? 3);

let peakRss = 0;
const sample = () => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
};

async function writeFile(path: string): Promise<{ relevant: number }> {
  const h = generateHistory({
    seed: 42,
    machines: 200,
    services: 1000,
    siteBoots: 100,
    machineReboots: 0,
    dropRate: 0.05,
    failedFirstRate: 0.02,
    clocks: false,
  });
  const events = h.events.map(e => ({ ...e, service: e.service }));
  const relevant = events.length;
  const noise = LINES - relevant;
  if (noise < relevant * 9)
    throw new Error(`too many relevant events (${relevant})`);
  const rnd = prng(7);
  const out = createWriteStream(path);
  let seq = 0;
  let written = 0;
  const first = events[0].time;
  const last = events[events.length - 1].time;
  let e = 0;
  for (let k = 0; k < noise; k++) {
    const t = first + ((last - first) * k) / noise;
    while (e < events.length && events[e].time <= t) {
      if (!out.write(`${toJournaldRecord(events[e++], seq++)}\n`))
        await once(out, 'drain');
      written++;
    }
    if (
      !out.write(
        `${journaldNoise(`host-${String(Math.floor(rnd() * 200)).padStart(3, '0')}`, t, seq++)}\n`,
      )
    )
      await once(out, 'drain');
    written++;
  }
  while (e < events.length) {
    out.write(`${toJournaldRecord(events[e++], seq++)}\n`);
    written++;
  }
  out.end();
  await once(out, 'finish');
  if (written !== LINES) throw new Error(`wrote ${written} lines`);
  return { relevant };
}

async function readAndParse(path: string): Promise<number> {
  const rl = createInterface({
    input: createReadStream(path, { encoding: 'utf8' }),
    crlfDelay: Infinity,
  });
  let n = 0;
  for await (const line of rl) {
    const o = JSON.parse(line);
    if (o) n++;
  }
  return n;
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'recovery-speed-'));
  const path = join(dir, 'journal.json');
  const timer = setInterval(sample, 50);
  try {
    let t = Date.now();
    const { relevant } = await writeFile(path);
    const size = statSync(path).size;
    console.log(
      `generated ${LINES} lines (${(size / 1e6).toFixed(0)} MB, ${relevant} relevant = ${((100 * relevant) / LINES).toFixed(1)}%) in ${((Date.now() - t) / 1000).toFixed(1)} s`,
    );
    // Alternating rounds, each side's best kept: on a shared machine a slow moment lands on one
    // side of one round, not on the ratio.
    let best = { base: Infinity, full: Infinity };
    for (let round = 1; round <= ROUNDS; round++) {
      global.gc?.();
      t = performance.now();
      const parsed = await readAndParse(path);
      const base = performance.now() - t;
      sample();
      global.gc?.();
      t = performance.now();
      const { result, read } = await runAnalysis([path], {});
      const json = JSON.stringify(result);
      const full = performance.now() - t;
      sample();
      if (round === 1) {
        console.log(
          `(b) is ${read.events.length} events, ${result.services.length} services, ${result.machineOrder.length} machines, ${result.dependencies.length} dependencies, ${result.waves.length} waves, ${(json.length / 1e6).toFixed(1)} MB JSON; (a) is ${parsed} records`,
        );
      }
      console.log(
        `round ${round}: (a) read + JSON.parse of every line ${(base / 1000).toFixed(2)} s, (b) full analysis (CLI path, incl. --json serialisation) ${(full / 1000).toFixed(2)} s, ratio ${(full / base).toFixed(2)}`,
      );
      best = {
        base: Math.min(best.base, base),
        full: Math.min(best.full, full),
      };
    }
    const ratio = best.full / best.base;
    console.log(
      `best of ${ROUNDS}: (a) ${(best.base / 1000).toFixed(2)} s, (b) ${(best.full / 1000).toFixed(2)} s`,
    );
    console.log(`ratio (b)/(a): ${ratio.toFixed(2)} (goal <= 3)`);
    console.log(
      `peak RSS over all rounds: ${(peakRss / 1024 / 1024).toFixed(0)} MiB`,
    );
    if (ratio > 3) process.exitCode = 1;
  } finally {
    clearInterval(timer);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch(e => {
  console.error(e);
  process.exitCode = 1;
});
