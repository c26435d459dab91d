/**
 * A night of 60 services on the real plugin (a fake host and capture source, the real stores),
 * with what an on-call engineer dreads in it: a machine never captured, a health check never
 * healthy, a hypervisor host refusing, a run someone cancels, an entity removed from the catalog
 * and one added while the night goes on, opt-outs spelled oddly. What each entity's page says the
 * morning after, and that no entity the night set out to check is left without a word.
 */
import { createServiceFactory } from '@backstage/backend-plugin-api';
import {
  mockCredentials,
  mockServices,
  startTestBackend,
} from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import {
  type CatalogService,
  catalogServiceRef,
} from '@backstage/plugin-catalog-node';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import type {
  NightlyCheckOutcome,
  ReadinessSummary,
} from '@backstage-recovery/plugin-recovery-common';
import type {
  LabHandle,
  MachineHandle,
  MachineLocator,
  RestorableCapture,
} from '@backstage-recovery/plugin-recovery-node';
import request from 'supertest';
import { recoveryPlugin } from '../../recovery-backend/src/plugin';
import { FakeCaptureSource } from '../../recovery-backend/src/testing/FakeCaptureSource';
import { FakeHost } from '../../recovery-backend/src/testing/FakeHost';
import { machineEntity } from '../../recovery-backend/src/testing/entities';
import { providersModule } from '../../recovery-backend/src/testing/providers';
import { tasksModule } from '../../recovery-backend/src/testing/tasksModule';
import { nightlyCheck, nightlyOptOuts, nightlySummary } from './nightlyCheck';

const NIGHTLY = 'recovery.backstage-recovery.io/nightly-check';
const name = (i: number) => `svc-${String(i).padStart(2, '0')}`;
const ref = (i: number) => `component:default/${name(i)}`;
const machineRef = (i: number) => `resource:default/${name(i)}-01`;
/** A service on a machine of its own, annotated as given. */
const service = (i: number, annotations?: Record<string, string>): Entity[] => [
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Component',
    metadata: { name: name(i), namespace: 'default', annotations },
    spec: { type: 'service' },
    relations: [{ type: 'dependsOn', targetRef: machineRef(i) }],
  },
  {
    ...machineEntity(`${name(i)}-01`),
    relations: [{ type: 'dependencyOf', targetRef: ref(i) }],
  },
];
const REFUSED = 'connect ECONNREFUSED /run/recovery-docker/recovery.sock';
/** Someone with no User entity in the catalog (a guest, someone who has left). */
const DR = 'user:default/dr';

describe('a night of 60 services, as their pages say it the morning after', () => {
  it('says of each what the night did and why, losing none', async () => {
    let entities: Entity[] = [];
    for (let i = 1; i <= 60; i++) entities.push(...service(i));
    entities.push(
      ...service(62, { [NIGHTLY]: ' FALSE ' }),
      ...service(63, { [NIGHTLY]: 'flase' }),
      ...service(64, { [NIGHTLY]: 'No' }),
    );
    // The catalog as it stands at each call: it changes during the night.
    const catalog = new Proxy({} as CatalogService, {
      get: (_target, method: keyof CatalogService) =>
        typeof catalogServiceMock()[method] === 'function'
          ? (...args: unknown[]) =>
              (catalogServiceMock({ entities })[method] as Function)(...args)
          : undefined,
    });

    // svc-03's machine is never captured.
    class Source extends FakeCaptureSource {
      async capture(machine: MachineLocator, options: { captureId: string }) {
        if (machine.container === 'svc-03-01')
          throw new Error('no such container: svc-03-01');
        return super.capture(machine, options);
      }
    }
    let cancel: Promise<number> | undefined;
    class Host extends FakeHost {
      // The host refuses svc-11's machine.
      async restoreMachine(lab: LabHandle, capture: RestorableCapture) {
        if (capture.machineRef === machineRef(11)) throw new Error(REFUSED);
        return super.restoreMachine(lab, capture);
      }
      // svc-15's machine never says it is healthy: someone cancels its run.
      async inspectMachine(machine: MachineHandle) {
        if (machine.machineRef === machineRef(15))
          return { running: true, health: 'starting' as const };
        return super.inspectMachine(machine);
      }
      async startMachine(machine: MachineHandle) {
        await super.startMachine(machine);
        // svc-07's health check never passes.
        if (machine.machineRef === machineRef(7))
          this.turnUnhealthy(machine.id);
        if (machine.machineRef === machineRef(15))
          cancel = request(server)
            .post(`/api/recovery/runs/${machine.runId}/cancel`)
            .set('authorization', mockCredentials.user.header(DR))
            .then(r => r.status);
        // While svc-20 recovers, svc-40 leaves the catalog and svc-61 joins it.
        if (machine.machineRef === machineRef(20))
          entities = entities
            .filter(e => !e.metadata.name.startsWith(name(40)))
            .concat(service(61));
      }
    }
    const tasks = tasksModule();
    const logger = mockServices.logger.mock();
    const { server } = await startTestBackend({
      features: [
        recoveryPlugin,
        tasks.module,
        providersModule({
          captureSources: [new Source()],
          hypervisorHosts: [new Host({})],
        }),
        createServiceFactory({
          service: catalogServiceRef,
          deps: {},
          factory: () => catalog,
        }),
        mockServices.rootConfig.factory({
          data: {
            recovery: {
              runs: { minReadyTime: '10ms', machineReadyTimeout: '1m' },
            },
          },
        }),
      ],
    });
    const api = tasks.tasks();
    for (let i = 1; i <= 64; i++)
      if (i !== 3 && i !== 61) await api.capture(machineRef(i));

    // As the scheduled task runs it, but polling its runs faster.
    const report = await nightlyCheck(api, nightlyOptOuts(entities), logger, {
      pollIntervalMs: 20,
    });
    expect(await cancel).toBe(202);

    expect(nightlySummary(report).split('\n')[0]).toBe(
      'Nightly readiness check: 62 entities checked by 60 runs: 57 recovered, 5 not (2 in a run that failed; 1 not checked: their run was interrupted; 2 refused: no run)',
    );
    // Those whose annotation it could not read were checked, and named.
    expect(report.unread).toEqual([
      `${ref(63)}: ${NIGHTLY} "flase" is neither 'false' nor 'true', so it is checked; set it to 'false' to leave it out of the nightly check`,
      `${ref(64)}: ${NIGHTLY} "No" is neither 'false' nor 'true', so it is checked; set it to 'false' to leave it out of the nightly check`,
    ]);
    // One word for each entity the night set out to check, and none for one added since.
    const checked = [...Array(64).keys()].map(i => ref(i + 1));
    expect(report.outcomes.map(o => o.entityRef).sort()).toEqual(
      checked.filter(r => r !== ref(61)),
    );

    const items: ReadinessSummary[] = (
      await request(server)
        .get('/api/recovery/readiness')
        .set('authorization', mockCredentials.user.header())
    ).body.items;
    const page = (i: number) =>
      items.find(item => item.entityRef === ref(i))?.nightlyCheck;
    const said = (i: number): Omit<NightlyCheckOutcome, 'checkedAt'> => {
      const { checkedAt: _at, ...rest } = page(i)!;
      return rest;
    };
    const runOf = (i: number) =>
      report.outcomes.find(o => o.entityRef === ref(i))!.runId!;
    expect(said(3)).toEqual({
      outcome: 'refused',
      reason: 'uncaptured',
      message: `No capture of ${machineRef(3)} yet: capture first (POST /captures)`,
    });
    expect(said(7)).toEqual({
      outcome: 'started',
      runId: runOf(7),
      runEntityRef: ref(7),
      message: `run ${runOf(7)} failed on ${machineRef(7)}: ${machineRef(7)} failed: its health check reports unhealthy`,
    });
    expect(said(11)).toEqual({
      outcome: 'started',
      runId: runOf(11),
      runEntityRef: ref(11),
      message: `run ${runOf(11)} failed on ${machineRef(11)}: ${machineRef(11)} failed: ${REFUSED}`,
    });
    // Who cancelled it, though the catalog holds no User entity of theirs, and the run to open.
    expect(said(15)).toEqual({
      outcome: 'started',
      runId: runOf(15),
      runEntityRef: ref(15),
      message: `run ${runOf(15)} cancelled by ${DR} (not started again; a cancelled run counts for no one)`,
    });
    expect(said(62)).toEqual({
      outcome: 'excluded',
      message: `left out: its ${NIGHTLY} annotation is 'false'`,
    });
    // Removed: no page; its refusal is in the night's report.
    expect(items.some(item => item.entityRef === ref(40))).toBe(false);
    expect(report.failed).toContainEqual({
      entityRef: ref(40),
      message: `Entity ${ref(40)} not found in the catalog`,
    });
    // Added during the night: checked from the next one on.
    expect(items.find(item => item.entityRef === ref(61))).toBeDefined();
    expect(page(61)).toBeUndefined();
    const recovered = checked.filter(
      r => ![3, 7, 11, 15, 40, 61, 62].some(i => ref(i) === r),
    );
    expect(recovered).toHaveLength(57);
    for (const r of recovered) {
      const outcome = items.find(item => item.entityRef === r)?.nightlyCheck;
      expect(outcome?.outcome).toBe('started');
      expect(outcome?.message).toMatch(/^run \S+ succeeded in [\d.]+ s$/);
    }
  }, 120_000);
});
