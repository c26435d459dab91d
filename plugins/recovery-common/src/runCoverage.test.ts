import { coversPlan, failedWithin, planNotRecovered } from './runCoverage';
import type { BootPlan, ProbeSpec, RecoveryRun } from './types';

const c = (name: string) => `component:default/${name}`;
const m = (name: string) => `resource:default/${name}`;

describe('coversPlan', () => {
  const plan = (machines: Array<[string, string[]]>): BootPlan => ({
    entityRef: c('x'),
    waves: [machines.map(([ref]) => ref)],
    machines: machines.map(([machineRef, services]) => ({
      machineRef,
      wave: 1,
      services,
      waitsFor: [],
      probes: [],
    })),
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
    expect(
      coversPlan(
        head(
          plan([
            [m('shared-01'), [c('cache'), c('dns')]],
            [m('web-01'), []],
          ]),
        ),
        dns,
        c('dns'),
      ),
    ).toBe(true);
    // Booted for the cache only: the dns probes never gated the machine.
    expect(
      coversPlan(head(plan([[m('shared-01'), [c('cache')]]])), dns, c('dns')),
    ).toBe(false);
    expect(
      coversPlan(head(plan([[m('web-01'), [c('dns')]]])), dns, c('dns')),
    ).toBe(false);
  });

  it('needs every probe the plan gates a machine by, a probe added since the run among them', () => {
    const probed = (services: string[], probes: ProbeSpec[]) => {
      const p = plan([[m('shared-01'), services]]);
      p.machines[0].probes = probes;
      return p;
    };
    const tcp53: ProbeSpec = { kind: 'tcp', port: 53 };
    const health: ProbeSpec = { kind: 'http', port: 8053, path: '/healthz' };
    // dns got a probe since (or its machine one of its own): the run never ran it.
    const now = probed([c('dns')], [tcp53, health]);
    expect(coversPlan(head(probed([c('dns')], [tcp53])), now, c('dns'))).toBe(
      false,
    );
    expect(planNotRecovered(head(probed([c('dns')], [tcp53])), now)).toEqual({
      machines: [],
      services: [],
      probes: [`http:8053/healthz on ${m('shared-01')}`],
    });
    // More probes than the plan's (one removed since, another service's) leave no gap.
    expect(
      coversPlan(
        head(
          probed(
            [c('cache'), c('dns')],
            [{ kind: 'tcp', port: 6379 }, tcp53, health],
          ),
        ),
        now,
        c('dns'),
      ),
    ).toBe(true);
  });

  it('counts a run that booted a machine under its probes for the machine recovered on its own', () => {
    // A machine's own plan makes it its own service; a run of a service on it booted it all the same.
    const machineAlone = plan([[m('shared-01'), [m('shared-01')]]]);
    expect(
      coversPlan(
        head(plan([[m('shared-01'), [c('dns')]]])),
        machineAlone,
        m('shared-01'),
      ),
    ).toBe(true);
    expect(
      coversPlan(
        head(plan([[m('web-01'), [c('web')]]])),
        machineAlone,
        m('shared-01'),
      ),
    ).toBe(false);
  });

  it('leaves out a run that failed on a machine outside the plan', () => {
    const both = plan([
      [m('shared-01'), [c('dns')]],
      [m('web-01'), [c('web')]],
    ]);
    const failedOn = (machineRef?: string) =>
      head(both, { status: 'failed', error: { machineRef, message: 'boom' } });
    expect(coversPlan(failedOn(m('web-01')), dns, c('dns'))).toBe(false);
    expect(coversPlan(failedOn(m('shared-01')), dns, c('dns'))).toBe(true);
  });

  it('counts a run that failed as a whole for its own entity alone, not for the plans inside its own', () => {
    const both = plan([
      [m('shared-01'), [c('dns')]],
      [m('web-01'), [c('web')]],
    ]);
    // No room on the host for all it boots, its engine gone mid-run: no machine to blame.
    const failedAsAWhole = (entityRef: string) =>
      head(both, {
        entityRef,
        status: 'failed',
        error: { message: 'hypervisor host recovery has 11.5 MiB free' },
      });
    // dns's plan may fit where the system's did not: the run says nothing of it.
    expect(coversPlan(failedAsAWhole(c('site')), dns, c('dns'))).toBe(false);
    // Its own entity's last run, whose plan it was: failed.
    expect(coversPlan(failedAsAWhole(c('site')), both, c('site'))).toBe(true);
    // A run of dns's own that failed as a whole is dns's last.
    expect(
      coversPlan({ ...failedAsAWhole(c('dns')), plan: dns }, dns, c('dns')),
    ).toBe(true);
    // Succeeded, it covers them all.
    expect(
      coversPlan(
        { ...failedAsAWhole(c('site')), status: 'succeeded' },
        dns,
        c('dns'),
      ),
    ).toBe(true);
  });

  it('covers nothing with a run that reached no result: interrupted, pending or running', () => {
    // Its plan spans dns's and it is dns's own: only its status keeps it from covering.
    for (const status of ['interrupted', 'pending', 'running'] as const) {
      expect(coversPlan(head(dns, { status }), dns, c('dns'))).toBe(false);
      expect(
        coversPlan(
          head(dns, {
            entityRef: c('dns'),
            status,
            error: { message: 'Interrupted: the backend is shutting down' },
          }),
          dns,
          c('dns'),
        ),
      ).toBe(false);
    }
  });

  it("covers nothing with a run that could not reach its host, not even its own entity's plan", () => {
    const unreachable = head(dns, {
      entityRef: c('dns'),
      status: 'failed',
      error: {
        message: 'hypervisor host recovery cannot be reached: ECONNREFUSED',
        hostUnreachable: true,
      },
    });
    expect(coversPlan(unreachable, dns, c('dns'))).toBe(false);
    // The same failure as a whole, the host answering: its own entity's last run.
    expect(
      coversPlan(
        { ...unreachable, error: { message: unreachable.error!.message } },
        dns,
        c('dns'),
      ),
    ).toBe(true);
  });
});

describe('failedWithin', () => {
  const tcp80: ProbeSpec = { kind: 'tcp', port: 80 };
  const machine = (
    machineRef: string,
    services: string[],
    probes: ProbeSpec[] = [],
  ): BootPlan['machines'][number] => ({
    machineRef,
    wave: 0,
    services,
    waitsFor: [],
    probes,
  });
  const shop: Pick<BootPlan, 'machines'> = {
    machines: [
      machine(m('db-01'), [c('db')]),
      machine(m('web-01'), [c('web')], [tcp80]),
    ],
  };
  const failed = (machines: BootPlan['machines'], machineRef?: string) => ({
    status: 'failed' as RecoveryRun['status'],
    plan: { machines },
    error: { machineRef, message: 'probe did not pass' },
  });

  it('counts a run that failed on a machine of the plan gated there by no more than the plan gates it by, whatever else it booted', () => {
    // web's run (db-01 and web-01, or web-01 alone, or the machine recovered on its own) failed on web-01.
    expect(failedWithin(failed(shop.machines, m('web-01')), shop)).toBe(true);
    expect(
      failedWithin(
        failed([machine(m('web-01'), [c('web')], [tcp80])], m('web-01')),
        shop,
      ),
    ).toBe(true);
    expect(
      failedWithin(
        failed([machine(m('web-01'), [m('web-01')])], m('web-01')),
        shop,
      ),
    ).toBe(true);
    // Booted there for more than the plan's services, on another machine, as a whole, or not failed at all: no.
    expect(
      failedWithin(
        failed(
          [
            machine(
              m('web-01'),
              [c('web'), c('api')],
              [tcp80, { kind: 'tcp', port: 8080 }],
            ),
          ],
          m('web-01'),
        ),
        shop,
      ),
    ).toBe(false);
    expect(
      failedWithin(
        failed(
          [
            machine(
              m('web-01'),
              [c('web')],
              [tcp80, { kind: 'tcp', port: 8080 }],
            ),
          ],
          m('web-01'),
        ),
        shop,
      ),
    ).toBe(false);
    expect(
      failedWithin(
        failed([machine(m('cache-01'), [c('cache')])], m('cache-01')),
        shop,
      ),
    ).toBe(false);
    expect(failedWithin(failed(shop.machines), shop)).toBe(false);
    expect(
      failedWithin(
        { ...failed(shop.machines, m('web-01')), status: 'succeeded' },
        shop,
      ),
    ).toBe(false);
  });
  it('does not count a failure where the plan now boots a machine first that the run did not boot before it', () => {
    const db = { ...machine(m('db-01'), [c('db')]), wave: 0 };
    const web = {
      ...machine(m('web-01'), [c('web')], [tcp80]),
      wave: 1,
      waitsFor: [m('db-01')],
    };
    const plan: Pick<BootPlan, 'machines'> = { machines: [db, web] };
    // web-01 booted without its database (a dependsOn added since): its failure may be that.
    expect(
      failedWithin(
        failed([{ ...web, wave: 0, waitsFor: [] }], m('web-01')),
        plan,
      ),
    ).toBe(false);
    // Booted in the same wave as the database, not after it: the same.
    expect(
      failedWithin(
        failed([db, { ...web, wave: 0, waitsFor: [] }], m('web-01')),
        plan,
      ),
    ).toBe(false);
    // Booted after it, as the plan boots it: the failure is the plan's.
    expect(failedWithin(failed([db, web], m('web-01')), plan)).toBe(true);
  });
});
