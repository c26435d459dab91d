/**
 * The HTTP API on a large site: the real recovery backend in-process (startTestBackend), a catalog
 * of 1,250 entities (apiSite.ts: 50 systems, 1,000 services in dependsOn chains on 200 machines),
 * 5 captures per machine, 12 whole-site boots pushed to POST /events and analysed per system,
 * a few thousand finished runs of its history, then one real test recovery per system through
 * POST /runs on the project's fake hypervisor host. Then times the routes a portal user hits and
 * prints, per route, p50/p95/max over the requests, the catalog calls and database queries each
 * request made, and peak RSS.
 *
 * SQLite (a file) by default; BENCH_API_DB=postgres uses the PostgreSQL at 127.0.0.1:5432 (user
 * postgres, no password; BENCH_API_PG_URL for another server) in a database of its own, dropped
 * at the end. BENCH_API_REQUESTS=N requests per route (default 20; the overview a quarter of
 * that), BENCH_API_RUNS=N stored runs (default 3000), BENCH_API_ONLY=regex times only the routes
 * it matches, BENCH_API_QUERIES=1 lists the statements that took longest, BENCH_API_PROFILE=file
 * writes a CPU profile of the timed requests, BENCH_API_KEEP=1 keeps the database.
 */
import { createServiceFactory } from '@backstage/backend-plugin-api';
import { mockServices, startTestBackend } from '@backstage/backend-test-utils';
import type { GetEntitiesByRefsRequest } from '@backstage/catalog-client';
import {
  catalogServiceRef,
  type CatalogService,
} from '@backstage/plugin-catalog-node';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import type { BootPlan } from '@backstage-recovery/plugin-recovery-common';
import knexFactory, { type Knex } from 'knex';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { CaptureStore } from '../plugins/recovery-backend/src/database/CaptureStore';
import { RunStore } from '../plugins/recovery-backend/src/database/RunStore';
import { recoveryPlugin } from '../plugins/recovery-backend/src/plugin';
import { FakeCaptureSource } from '../plugins/recovery-backend/src/testing/FakeCaptureSource';
import { FakeHost } from '../plugins/recovery-backend/src/testing/FakeHost';
import { providersModule } from '../plugins/recovery-backend/src/testing/providers';
import { bootHistory, finishedRun, generateSite } from './apiSite';
import { prng } from './generate';

const DB = process.env.BENCH_API_DB ?? 'sqlite';
const REQUESTS = Number(process.env.BENCH_API_REQUESTS ?? 20);
const RUNS = Number(process.env.BENCH_API_RUNS ?? 3000);
const CAPTURES_PER_MACHINE = 5;
const BOOTS = 12;
const DAY = 86_400_000;
/** BENCH_API_ONLY=regex: time only the routes whose name matches. */
const ONLY = process.env.BENCH_API_ONLY
  ? new RegExp(process.env.BENCH_API_ONLY)
  : undefined;
/** BENCH_API_PROFILE=file.cpuprofile: a CPU profile of the timed requests only (open it in Chrome's DevTools). */
const PROFILE = process.env.BENCH_API_PROFILE;
/** BENCH_API_KEEP=1: the database stays, to look into afterwards. */
const KEEP = !!process.env.BENCH_API_KEEP;

/** Peak RSS of the whole run, and of the timed requests alone. */
let peakRss = 0;
let peakTimed = 0;
const sample = () => {
  const rss = process.memoryUsage().rss;
  peakRss = Math.max(peakRss, rss);
  peakTimed = Math.max(peakTimed, rss);
};
const mib = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MiB`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The database the plugin gets, and how to remove it afterwards. */
async function openDatabase(): Promise<{
  knex: Knex;
  close: () => Promise<void>;
  name: string;
}> {
  if (DB === 'postgres' || DB === 'pg') {
    const url =
      process.env.BENCH_API_PG_URL ??
      'postgres://postgres@127.0.0.1:5432/postgres';
    const database = `recovery_bench_api_${process.pid}`;
    const admin = knexFactory({ client: 'pg', connection: url });
    await admin.raw('create database ??', [database]);
    const conn = new URL(url);
    conn.pathname = `/${database}`;
    const knex = knexFactory({ client: 'pg', connection: conn.toString() });
    return {
      knex,
      name: `PostgreSQL ${(await knex.raw('show server_version')).rows[0].server_version} (${conn.host})`,
      close: async () => {
        await knex.destroy();
        if (KEEP) console.log(`kept the database ${database}`);
        else await admin.raw('drop database if exists ??', [database]);
        await admin.destroy();
      },
    };
  }
  if (DB !== 'sqlite')
    throw new Error(`BENCH_API_DB must be sqlite or postgres, got "${DB}"`);
  const dir = mkdtempSync(join(tmpdir(), 'recovery-bench-api-'));
  const file = join(dir, 'recovery.sqlite');
  const knex = knexFactory({
    client: 'better-sqlite3',
    connection: { filename: file },
    useNullAsDefault: true,
  });
  return {
    knex,
    name: 'SQLite (a file)',
    close: async () => {
      await knex.destroy();
      if (KEEP) console.log(`kept the database ${file}`);
      else rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The in-memory catalog, counting the calls the plugin makes to it. */
function countingCatalog(
  entities: ReturnType<typeof generateSite>['entities'],
) {
  const catalog = catalogServiceMock({ entities });
  const counts = { calls: 0, refs: 0 };
  const proxy = new Proxy(catalog, {
    get: (target, key) => {
      const value = Reflect.get(target, key);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        counts.calls++;
        if (key === 'getEntitiesByRefs')
          counts.refs += (
            args[0] as GetEntitiesByRefsRequest
          ).entityRefs.length;
        return value.apply(target, args);
      };
    },
  }) as CatalogService;
  return { catalog: proxy, counts };
}

const post = (session: Session, method: string): Promise<any> =>
  new Promise((resolve, reject) =>
    session.post(method, (error, result) =>
      error ? reject(error) : resolve(result),
    ),
  );

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];

async function main() {
  const timer = setInterval(sample, 20);
  const began = Date.now();
  const site = generateSite({
    seed: 7,
    systems: 50,
    platformSystems: 5,
    machinesPerSystem: 4,
    servicesPerSystem: 20,
  });
  const db = await openDatabase();
  let queries = 0;
  // BENCH_API_QUERIES=1: the statements that took longest in all, over the timed requests.
  const slowest = new Map<string, { n: number; ms: number }>();
  const pending = new Map<string, { sql: string; at: number }>();
  let timing = false;
  db.knex.on('query', (q: { sql: string; __knexQueryUid: string }) => {
    queries++;
    if (timing)
      pending.set(q.__knexQueryUid, {
        sql: q.sql.replace(/\$\d+/g, '?').replace(/(\?, )+\?/g, '?…'),
        at: performance.now(),
      });
  });
  db.knex.on('query-response', (_r: unknown, q: { __knexQueryUid: string }) => {
    const p = pending.get(q.__knexQueryUid);
    if (!p) return;
    pending.delete(q.__knexQueryUid);
    const s = slowest.get(p.sql) ?? { n: 0, ms: 0 };
    s.n++;
    s.ms += performance.now() - p.at;
    slowest.set(p.sql, s);
  });
  const { catalog, counts } = countingCatalog(site.entities);
  const host = new FakeHost({});
  const started = startTestBackend({
    features: [
      recoveryPlugin,
      providersModule({
        captureSources: [new FakeCaptureSource()],
        hypervisorHosts: [host],
      }),
      createServiceFactory({
        service: catalogServiceRef,
        deps: {},
        factory: () => catalog,
      }),
      mockServices.database.factory({ knex: db.knex }),
      mockServices.rootLogger.factory({ level: 'warn' }),
      // Its runs fill the store: the hold before each final check would only add 5 s to each.
      mockServices.rootConfig.factory({
        data: {
          recovery: { runs: { probeInterval: '100ms', minReadyTime: '100ms' } },
        },
      }),
    ],
  });
  // The database goes whatever happens (a PostgreSQL one is dropped).
  const backend = await started.catch(async error => {
    clearInterval(timer);
    await db.close();
    throw error;
  });
  const base = `http://127.0.0.1:${backend.server.port()}/api/recovery`;
  const call = async (
    method: string,
    path: string,
    body?: unknown,
    type = 'application/json',
  ) => {
    const send = () =>
      fetch(`${base}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': type },
        body:
          body === undefined
            ? undefined
            : typeof body === 'string'
              ? body
              : JSON.stringify(body),
      });
    // A kept-alive connection the server closed while this process was busy (storing runs) is
    // reset before the server reads anything: sent again, on a new one.
    const res = await send().catch(error => {
      if ((error as { cause?: { code?: string } }).cause?.code !== 'ECONNRESET')
        throw error;
      return send();
    });
    const text = await res.text();
    if (!res.ok)
      throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 500)}`);
    return { json: JSON.parse(text), bytes: text.length };
  };
  const path = (ref: string) => ref.replace(':', '/');

  try {
    console.log(
      `site: ${site.systemRefs.length} systems, ${site.serviceRefs.length} services on ${site.machineRefs.length} machines; ` +
        `deepest service ${site.deepest} (a chain of ${site.deepestChain} services); database ${db.name}`,
    );

    // Boot history, pushed as an event source would, then the scheduled sweep's analysis.
    let t = Date.now();
    const start = Date.now() - (BOOTS * 2 + 2) * DAY;
    const lines = bootHistory(site, { seed: 11, boots: BOOTS, start, days: 2 });
    for (let i = 0; i < lines.length; i += 5000) {
      await call(
        'POST',
        '/events?source=bench',
        lines.slice(i, i + 5000).join('\n'),
        'text/plain',
      );
    }
    const sweep = (await call('POST', '/analysis', {})).json;
    if (sweep.failed.length)
      throw new Error(`analysis failed: ${JSON.stringify(sweep.failed[0])}`);
    console.log(
      `${lines.length} events pushed and ${sweep.analysed.length} systems analysed in ${seconds(Date.now() - t)}`,
    );

    // Hourly captures, the newest an hour old.
    t = Date.now();
    const now = Date.now();
    await db.knex.transaction(async tx => {
      const s = new CaptureStore(tx);
      for (const machineRef of site.machineRefs) {
        const name = machineRef.split('/')[1];
        for (let c = CAPTURES_PER_MACHINE; c >= 1; c--) {
          const id = `cap-${name}-${c}`;
          await s.insertCapture({
            id,
            machineRef,
            engine: 'primary',
            container: name,
            imageId: `sha256:${id}`,
            sizeBytes: 400_000_000,
            checksum: `sha256:${id}`,
            artifact: `/captures/${id}.tar`,
            runtime: {
              hostname: name,
              networks: [
                { name: 'prod', subnet: '172.29.0.0/16', aliases: [name] },
              ],
              env: ['A=1'],
              exposedPorts: ['80/tcp'],
              labels: {},
            },
            adaptations: ['dropped host port binding 8080->80/tcp'],
            durationMs: 4000,
            pausedMs: 150,
            createdAt: new Date(now - c * 3_600_000).toISOString(),
          });
        }
      }
    });
    console.log(
      `${site.machineRefs.length * CAPTURES_PER_MACHINE} captures stored in ${seconds(Date.now() - t)}`,
    );

    // Runs of the last 60 days: nightly checks of systems, engineers' runs of services, each
    // with the plan GET /plan gives.
    t = Date.now();
    const rnd = prng(3);
    const products = site.systemRefs.slice(5);
    const sampledServices = Array.from(
      { length: 100 },
      () => site.serviceRefs[Math.floor(rnd() * site.serviceRefs.length)],
    );
    const plans = new Map<string, BootPlan>();
    for (const ref of [...site.systemRefs, ...new Set(sampledServices)]) {
      const {
        problems: _p,
        disagreements: _d,
        ...plan
      } = (await call('GET', `/plan/${path(ref)}`)).json;
      plans.set(ref, plan);
    }
    const firstRunAt = now - 60 * DAY;
    let machineRows = 0;
    let stepRows = 0;
    for (let batch = 0; batch < RUNS; batch += 200) {
      await db.knex.transaction(async tx => {
        const s = new RunStore(tx);
        for (let i = batch; i < Math.min(RUNS, batch + 200); i++) {
          const bySchedule = rnd() < 0.8;
          const entityRef = bySchedule
            ? site.systemRefs[i % site.systemRefs.length]
            : sampledServices[Math.floor(rnd() * sampledServices.length)];
          const createdAt = firstRunAt + ((now - DAY - firstRunAt) * i) / RUNS;
          const r = finishedRun(plans.get(entityRef)!, {
            id: `run-${String(i).padStart(5, '0')}`,
            createdAt,
            rnd,
            trigger: bySchedule ? 'schedule' : 'user',
          });
          await s.insertRun(r.run, new Date(createdAt));
          await s.updateRun(r.run.id, {
            status: 'running',
            startedAt: r.startedAt,
          });
          for (const { machineRef, ...patch } of r.machines)
            await s.updateRunMachine(r.run.id, machineRef, patch);
          for (const step of r.steps) await s.appendStep(r.run.id, step);
          await s.updateRun(r.run.id, {
            status: r.status,
            finishedAt: r.finishedAt,
            rtoSeconds: r.rtoSeconds,
            error: r.error,
          });
          machineRows += r.machines.length;
          stepRows += r.steps.length;
        }
      });
    }
    console.log(
      `${RUNS} finished runs stored (${machineRows} machine rows, ${stepRows} steps) in ${seconds(Date.now() - t)}`,
    );

    // The newest runs are real: a test recovery of each system through the API.
    t = Date.now();
    for (const system of site.systemRefs) {
      const { json: run } = await call('POST', '/runs', { entityRef: system });
      for (
        let status = run.status;
        status === 'pending' || status === 'running';
      ) {
        await new Promise(r => setTimeout(r, 20));
        status = (await call('GET', `/runs/${run.id}`)).json.status;
      }
    }
    console.log(
      `${site.systemRefs.length} test recoveries run through POST /runs in ${seconds(Date.now() - t)}`,
    );
    console.log(
      `populated in ${seconds(Date.now() - began)}; peak RSS so far ${mib(peakRss)}`,
    );

    // What a portal user's pages ask for.
    const pick = <T>(items: T[], k: number) => items[(k * 7919) % items.length];
    const routes: Array<{
      name: string;
      requests: number;
      path: (k: number) => string;
    }> = [
      {
        name: 'GET /readiness (overview)',
        requests: Math.max(3, Math.round(REQUESTS / 4)),
        path: () => '/readiness',
      },
      // What the nightly check asks: the overview with every plan in full.
      {
        name: 'GET /readiness?include=plan',
        requests: Math.max(3, Math.round(REQUESTS / 4)),
        path: () => '/readiness?include=plan',
      },
      {
        name: 'GET /readiness/:service',
        requests: REQUESTS,
        path: k => `/readiness/${path(pick(site.serviceRefs, k))}`,
      },
      {
        name: 'GET /readiness/:system',
        requests: REQUESTS,
        path: k => `/readiness/${path(pick(products, k))}`,
      },
      {
        name: 'GET /plan/:deepest service',
        requests: REQUESTS,
        path: () => `/plan/${path(site.deepest)}`,
      },
      {
        name: 'GET /plan/:system',
        requests: REQUESTS,
        path: k => `/plan/${path(pick(products, k))}`,
      },
      {
        name: 'GET /runs?entityRef=:system',
        requests: REQUESTS,
        path: k => `/runs?entityRef=${pick(site.systemRefs, k)}`,
      },
      {
        name: 'GET /runs?entityRef=:service',
        requests: REQUESTS,
        path: k => `/runs?entityRef=${pick(sampledServices, k)}`,
      },
      {
        name: 'GET /runs?active=true',
        requests: REQUESTS,
        path: () => '/runs?active=true',
      },
      { name: 'GET /runs', requests: REQUESTS, path: () => '/runs' },
      {
        name: 'GET /captures?machineRef=',
        requests: REQUESTS,
        path: k => `/captures?machineRef=${pick(site.machineRefs, k)}`,
      },
      {
        name: 'GET /analysis/:system',
        requests: REQUESTS,
        path: k => `/analysis/${path(pick(site.systemRefs, k))}`,
      },
    ];
    const load = loadavg();
    console.log(
      `\nload average before timing: ${load.map(l => l.toFixed(2)).join(' ')} (2 cores)`,
    );
    console.log(
      `${'route'.padEnd(30)} ${'n'.padStart(3)} ${'p50 ms'.padStart(8)} ${'p95 ms'.padStart(8)} ${'max ms'.padStart(8)} ${'catalog'.padStart(8)} ${'refs'.padStart(7)} ${'queries'.padStart(8)} ${'KiB'.padStart(6)}`,
    );
    const rssBefore = process.memoryUsage().rss;
    peakTimed = rssBefore;
    timing = !!process.env.BENCH_API_QUERIES;
    const session = new Session();
    if (PROFILE) {
      session.connect();
      await post(session, 'Profiler.enable');
      await post(session, 'Profiler.start');
    }
    for (const route of routes.filter(r => !ONLY || ONLY.test(r.name))) {
      // One request first, untimed: the analysis read into the plan's cache, as after any restart.
      await call('GET', route.path(0));
      const times: number[] = [];
      const before = { ...counts, queries };
      let bytes = 0;
      for (let k = 1; k <= route.requests; k++) {
        const s = performance.now();
        bytes += (await call('GET', route.path(k))).bytes;
        times.push(performance.now() - s);
      }
      times.sort((a, b) => a - b);
      const per = (n: number) => (n / route.requests).toFixed(0);
      console.log(
        `${route.name.padEnd(30)} ${String(route.requests).padStart(3)} ${quantile(times, 0.5).toFixed(1).padStart(8)} ${quantile(times, 0.95).toFixed(1).padStart(8)} ${times[times.length - 1].toFixed(1).padStart(8)} ` +
          `${per(counts.calls - before.calls).padStart(8)} ${per(counts.refs - before.refs).padStart(7)} ${per(queries - before.queries).padStart(8)} ${(bytes / route.requests / 1024).toFixed(0).padStart(6)}`,
      );
    }
    if (PROFILE) {
      const { profile } = await post(session, 'Profiler.stop');
      writeFileSync(PROFILE, JSON.stringify(profile));
      session.disconnect();
      console.log(`CPU profile of the timed requests in ${PROFILE}`);
    }
    if (timing) {
      console.log('statements by total time while timing:');
      for (const [sql, { n, ms }] of [...slowest]
        .sort((a, b) => b[1].ms - a[1].ms)
        .slice(0, 8)) {
        console.log(
          `  ${ms.toFixed(0).padStart(7)} ms ${String(n).padStart(6)}× ${sql.slice(0, 400)}`,
        );
      }
    }
    console.log(
      '(catalog: calls to the catalog per request; refs: entity refs asked for per request; queries: database queries per request; KiB: answer size)',
    );
    console.log(
      `peak RSS ${mib(peakRss)}, while timing ${mib(peakTimed)} (${mib(rssBefore)} before it); load average after: ${loadavg()
        .map(l => l.toFixed(2))
        .join(' ')}`,
    );
  } finally {
    clearInterval(timer);
    await backend.stop();
    await db.close();
  }
}

main().then(
  // Whatever a plugin left scheduled (the interrupted-runs task) must not keep the process alive.
  () => process.exit(),
  error => {
    console.error(error);
    process.exit(1);
  },
);
