import type {
  RecoveryRun,
  BootPlan,
} from '@backstage-recovery/plugin-recovery-common';

/** A probe's failure over several lines, as an engine or a probe may word it. */
const FAILURE =
  'probe tcp:5432 failed after 40s: connection refused\n  at 10.20.3.14:5432 (attempt 80 of 80)\n  last answer: ECONNREFUSED\nThe database did not come up: its data directory is damaged (see its log tail).';

const T0 = Date.parse('2026-12-07T14:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

/**
 * A run of `plan` in the backend's shape: the machines of waves before `upToWave` ready; those of
 * `upToWave` booting (running) or failed (failed: its first machine failing its probe where
 * `failAtWave` is that wave); those after it waiting, or skipped once the run failed.
 */
export function runOf(
  plan: BootPlan,
  entityRef: string,
  opts: {
    id: string;
    status: RecoveryRun['status'];
    upToWave: number;
    failAtWave?: number;
    now?: number;
    mode?: 'test' | 'failover';
  },
): RecoveryRun {
  const start = opts.now ?? T0;
  const machines: RecoveryRun['machines'] = [];
  const steps: RecoveryRun['steps'] = [];
  let failedRef: string | undefined;
  for (const pm of plan.machines as any[]) {
    const wave = pm.wave as number;
    const base = start + wave * 60_000;
    const m: any = { machineRef: pm.machineRef, wave, phase: 'waiting' };
    if (wave < opts.upToWave) {
      Object.assign(m, {
        phase: 'ready',
        restoreStartedAt: iso(base),
        restoredAt: iso(base + 8000),
        startedAt: iso(base + 9000),
        readyAt: iso(base + 40_000),
        finishedAt: iso(base + 40_000),
        capturedAt: iso(start - 3600_000),
      });
      steps.push({
        at: iso(base),
        machineRef: pm.machineRef,
        level: 'info',
        message: 'restoring capture',
      } as any);
      steps.push({
        at: iso(base + 40_000),
        machineRef: pm.machineRef,
        level: 'info',
        message: 'ready: all probes passed',
      } as any);
    } else if (wave === opts.upToWave) {
      if (opts.failAtWave === wave && !failedRef) {
        failedRef = pm.machineRef;
        Object.assign(m, {
          phase: 'failed',
          probe: 'tcp:5432',
          restoreStartedAt: iso(base),
          restoredAt: iso(base + 8000),
          startedAt: iso(base + 9000),
          finishedAt: iso(base + 49_000),
          message: FAILURE,
          logTail: `${Array.from(
            { length: 60 },
            (_, i) => `[  ${i}.000] postgres: line ${i} of the console`,
          ).join(
            '\n',
          )}\nFATAL:  could not open file "base/16384/2601": No such file or directory`,
        });
      } else if (opts.status === 'running') {
        Object.assign(m, {
          phase: 'booting',
          restoreStartedAt: iso(base),
          restoredAt: iso(base + 8000),
          startedAt: iso(base + 9000),
        });
      } else if (opts.status === 'failed') {
        Object.assign(m, {
          phase: 'failed',
          restoreStartedAt: iso(base),
          finishedAt: iso(base + 49_000),
          message: 'stopped: the run failed',
        });
      }
      steps.push({
        at: iso(base),
        machineRef: pm.machineRef,
        level: 'info',
        message: 'restoring capture',
      } as any);
    } else if (opts.status === 'failed') {
      m.phase = 'skipped';
    }
    machines.push(m);
  }
  const error = failedRef
    ? {
        machineRef: failedRef,
        probe: 'tcp:5432',
        message: FAILURE,
      }
    : undefined;
  if (failedRef)
    steps.push({
      at: iso(start + opts.upToWave * 60_000 + 49_000),
      machineRef: failedRef,
      level: 'error',
      message: error!.message,
    } as any);
  return {
    id: opts.id,
    entityRef,
    mode: opts.mode ?? 'test',
    status: opts.status,
    trigger: 'user',
    createdBy: 'user:development/guest',
    hypervisorHost: 'recovery',
    createdAt: iso(start - 1000),
    startedAt: iso(start),
    ...(opts.status === 'failed' && {
      finishedAt: iso(start + opts.upToWave * 60_000 + 50_000),
      error,
    }),
    ...(opts.status === 'succeeded' && {
      finishedAt: iso(start + 12 * 60_000 + 50_000),
      rtoSeconds: 12 * 60 + 40,
    }),
    plan,
    machines,
    steps,
  } as RecoveryRun;
}

/**
 * A catalog of a site of 150 machines in 12 waves (13 in each of the first six, 12 after): a
 * service per wave on its machines, each after the previous wave's; the first machine of each
 * wave named as long as the catalog allows, and the last service too.
 */
export function bigSiteCatalog(): string {
  const docs: object[] = [
    {
      apiVersion: 'backstage.io/v1alpha1',
      kind: 'Group',
      metadata: { name: 'platform-team' },
      spec: { type: 'team', children: [] },
    },
    {
      apiVersion: 'backstage.io/v1alpha1',
      kind: 'User',
      metadata: { name: 'guest', namespace: 'development' },
      spec: { memberOf: ['group:default/platform-team'] },
    },
    {
      apiVersion: 'backstage.io/v1alpha1',
      kind: 'System',
      metadata: {
        name: 'big-site',
        annotations: {
          'recovery.backstage-recovery.io/rpo': '24h',
          'recovery.backstage-recovery.io/rto': '1h',
        },
      },
      spec: { owner: 'platform-team' },
    },
  ];
  let n = 0;
  for (let w = 0; w < 12; w++) {
    const machines: string[] = [];
    for (let i = 0; i < (w < 6 ? 13 : 12); i++) {
      n++;
      const short = `m${String(n).padStart(3, '0')}-w${w + 1}`;
      const name =
        i === 0
          ? `${short}-payment-reconciliation-batch-processor-eu-west1`.slice(
              0,
              63,
            )
          : short;
      machines.push(name);
      docs.push({
        apiVersion: 'backstage.io/v1alpha1',
        kind: 'Resource',
        metadata: {
          name,
          annotations: {
            'recovery.backstage-recovery.io/engine': 'primary',
            'recovery.backstage-recovery.io/container': name,
          },
        },
        spec: { type: 'machine', owner: 'platform-team', system: 'big-site' },
      });
    }
    const service =
      w === 11
        ? 'customer-facing-storefront-and-checkout-orchestration-svc'
        : `svc-wave-${w + 1}`;
    docs.push({
      apiVersion: 'backstage.io/v1alpha1',
      kind: 'Component',
      metadata: { name: service },
      spec: {
        type: 'service',
        lifecycle: 'production',
        owner: 'platform-team',
        system: 'big-site',
        dependsOn: [
          ...machines.map(m => `resource:${m}`),
          ...(w ? [`component:svc-wave-${w}`] : []),
        ],
      },
    });
  }
  return `${docs.map(d => JSON.stringify(d)).join('\n---\n')}\n`;
}
