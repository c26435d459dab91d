import { coversPlan } from './runCoverage';
import type { BootPlan, RecoveryRun } from './types';

const c = (name: string) => `component:default/${name}`;
const m = (name: string) => `resource:default/${name}`;

describe('coversPlan', () => {
  const plan = (machines: Array<[string, string[]]>): BootPlan => ({
    entityRef: c('x'),
    waves: [machines.map(([ref]) => ref)],
    machines: machines.map(([machineRef, services]) => ({ machineRef, wave: 1, services, waitsFor: [], probes: [] })),
  });
  const head = (p: BootPlan, extra: Partial<RecoveryRun> = {}) => ({
    id: 'r',
    entityRef: c('other'),
    status: 'succeeded' as RecoveryRun['status'],
    plan: p,
    ...extra,
  });
  const dns = plan([[m('shared-01'), [c('dns')]]]);

  it('needs every machine of the plan booted with the probes of the services the plan puts on it', () => {
    expect(coversPlan(head(plan([[m('shared-01'), [c('cache'), c('dns')]], [m('web-01'), []]])), dns)).toBe(true);
    // Booted for the cache only: the dns probes never gated the machine.
    expect(coversPlan(head(plan([[m('shared-01'), [c('cache')]]])), dns)).toBe(false);
    expect(coversPlan(head(plan([[m('web-01'), [c('dns')]]])), dns)).toBe(false);
  });

  it('leaves out a run that failed on a machine outside the plan', () => {
    const both = plan([[m('shared-01'), [c('dns')]], [m('web-01'), [c('web')]]]);
    const failedOn = (machineRef?: string) =>
      head(both, { status: 'failed', error: { machineRef, message: 'boom' } });
    expect(coversPlan(failedOn(m('web-01')), dns)).toBe(false);
    expect(coversPlan(failedOn(m('shared-01')), dns)).toBe(true);
    // A failure of the run itself (e.g. its network) is every machine's.
    expect(coversPlan(failedOn(undefined), dns)).toBe(true);
  });
});
