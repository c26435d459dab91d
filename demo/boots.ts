/*
 * Writes demo/boots.jsonl: a sample boot history of the demo site for the offline analysis
 * (`npx recovery analyze demo/boots.jsonl`), as its machines' own logs would give it had its
 * services taken minutes to start, as a production site's do. From the repository root:
 *   npx node -r @backstage/cli/config/nodeTransform.cjs demo/boots.ts
 *
 * The site's machines and services are the demo's (DEMO_MACHINES). Twenty whole-site boots a week
 * apart: every machine powers on within a minute, a service with no dependency starts 1–3 min
 * after its machine, any other 5–13 min after the last of its dependencies started. Each machine's
 * clock is off by its own minutes, drifting a little, and read against the reference clock at
 * each boot (a clock line). Between them, three single-machine reboots of data-01, web following
 * it back, and one start of web that failed (a failure event) before its dependencies were up.
 * Deterministic: the same file every time.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEMO_MACHINES } from './site';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const FIRST_BOOT = Date.UTC(2026, 8, 7, 6, 0, 0);
const BOOTS = 20;

/** A small deterministic generator (mulberry32). */
function random(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = random(20261207);
const between = (min: number, max: number) => min + (max - min) * rand();
const whole = (ms: number) => Math.round(ms / 1000) * 1000;

/** Each machine's clock offset from the reference, minutes: machine time = true time + offset. */
const SKEW: Record<string, number> = {
  'infra-01': 0.5,
  'data-01': -3,
  'web-01': 4,
};
const machineOf = new Map(
  DEMO_MACHINES.flatMap(m => m.services.map(s => [s.name, m.name] as const)),
);
const dependsOn = new Map(
  DEMO_MACHINES.flatMap(m =>
    m.services.map(s => [s.name, s.dependsOn] as const),
  ),
);

type Line = { at: number; record: Record<string, unknown> };
const lines: Line[] = [];
/** A record in its machine's own clock, drifting `drift` minutes off its usual skew. */
const log = (
  machine: string,
  trueTime: number,
  record: Record<string, unknown>,
  drift: number,
) => {
  const time = whole(trueTime + (SKEW[machine] + drift) * MINUTE);
  lines.push({
    at: trueTime,
    record: { time: new Date(time).toISOString(), machine, ...record },
  });
};
const clockLine = (machine: string, trueTime: number, drift: number) =>
  log(
    machine,
    trueTime,
    { event: 'clock', reference: new Date(whole(trueTime)).toISOString() },
    drift,
  );

/** Starts the services given (and what they wait for) from `up`, each machine powered on at `poweredOn`. */
function boot(
  services: string[],
  poweredOn: Map<string, number>,
  started: Map<string, number>,
  drift: Record<string, number>,
) {
  const pending = new Set(services);
  while (pending.size) {
    for (const service of pending) {
      const needs = dependsOn.get(service)!;
      if (needs.some(n => pending.has(n))) continue;
      const machine = machineOf.get(service)!;
      const after = needs.length
        ? Math.max(...needs.map(n => started.get(n)!)) + between(5, 13) * MINUTE
        : poweredOn.get(machine)! + between(1, 3) * MINUTE;
      started.set(service, after);
      log(machine, after, { service, event: 'start' }, drift[machine]);
      pending.delete(service);
    }
  }
}

const allServices = DEMO_MACHINES.flatMap(m => m.services.map(s => s.name));
for (let k = 0; k < BOOTS; k++) {
  const t0 = FIRST_BOOT + k * 7 * DAY + between(0, 60) * MINUTE;
  const drift = Object.fromEntries(
    DEMO_MACHINES.map(m => [m.name, between(-0.5, 0.5)]),
  );
  const poweredOn = new Map(
    DEMO_MACHINES.map(m => [m.name, t0 + between(0, 1) * MINUTE]),
  );
  for (const [machine, at] of poweredOn)
    clockLine(machine, at + 20_000, drift[machine]);
  const started = new Map<string, number>();
  if (k === 6) {
    // web came up before its dependencies, failed, and was started again by its supervisor.
    const at = poweredOn.get('web-01')! + 2 * MINUTE;
    log('web-01', at, { service: 'web', event: 'start' }, drift['web-01']);
    log(
      'web-01',
      at + 40_000,
      { service: 'web', event: 'failure' },
      drift['web-01'],
    );
  }
  boot(allServices, poweredOn, started, drift);
  if (k === 3 || k === 9 || k === 15) {
    // data-01 rebooted on its own days later (a kernel update): its services, then web.
    const at = t0 + between(2, 4) * DAY;
    clockLine('data-01', at + 20_000, drift['data-01']);
    const again = new Map(started);
    const rebooted = DEMO_MACHINES.find(
      m => m.name === 'data-01',
    )!.services.map(s => s.name);
    for (const service of rebooted) {
      const after = at + between(1, 3) * MINUTE;
      again.set(service, after);
      log('data-01', after, { service, event: 'start' }, drift['data-01']);
    }
    const web =
      Math.max(...rebooted.map(s => again.get(s)!)) + between(5, 13) * MINUTE;
    log('web-01', web, { service: 'web', event: 'start' }, drift['web-01']);
  }
}

// A file per site as one collector would write it: in the order the records arrived.
lines.sort((a, b) => a.at - b.at);
const file = join(__dirname, 'boots.jsonl');
writeFileSync(file, `${lines.map(l => JSON.stringify(l.record)).join('\n')}\n`);
console.log(`${file}: ${lines.length} lines`);
