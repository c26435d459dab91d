import { TestDatabases } from '@backstage/backend-test-utils';
import { ServiceUnavailableError } from '@backstage/errors';
import type { RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
import type {
  CapturedNetwork,
  HostPortInUse,
  LabHandle,
  PortBinding,
  RecoveryGraph,
  RestorableCapture,
  RestoredMachine,
} from '@backstage-recovery/plugin-recovery-node';
import {
  describePortBinding,
  engineError,
  failoverPorts,
} from '@backstage-recovery/plugin-recovery-node';
import { CaptureStore } from '../database/CaptureStore';
import { migrate } from '../database/migrations';
import { RunStore } from '../database/RunStore';
import { FakeHost } from '../testing/FakeHost';
import { storedCapture } from '../testing/entities';
import { runServiceOver } from '../testing/runService';

const WEB = 'component:default/web';
const INFRA_01 = 'resource:default/infra-01';
const WEB_01 = 'resource:default/web-01';

/** web on web-01, which waits for infra-01. */
const graph: RecoveryGraph = {
  rootRef: WEB,
  roots: [WEB],
  services: new Map([
    [
      'component:default/dns',
      {
        ref: 'component:default/dns',
        machines: [INFRA_01],
        dependsOn: [],
        probes: [{ kind: 'tcp', port: 53 }],
      },
    ],
    [
      WEB,
      {
        ref: WEB,
        machines: [WEB_01],
        dependsOn: ['component:default/dns'],
        probes: [{ kind: 'tcp', port: 80 }],
      },
    ],
  ]),
  machines: new Map(
    [INFRA_01, WEB_01].map(ref => [
      ref,
      {
        ref,
        locator: {
          machineRef: ref,
          engine: 'primary',
          container: ref.split('/')[1],
        },
      },
    ]),
  ),
  problems: [],
  missing: [],
  objectives: { rpoSeconds: 86_400, rtoSeconds: 3600 },
};

/**
 * A host that publishes, as the Docker host does, the ports failoverPorts gives in a failover's lab
 * (not internal) and none in a test lab; it lists `inUse` as the ports its containers hold.
 */
class PublishingHost extends FakeHost {
  readonly internal = new Map<string, boolean>();
  /** Times the run asked which host ports are in use. */
  asked = 0;

  constructor(private readonly inUse?: () => Promise<HostPortInUse[]>) {
    super({ [WEB_01]: [INFRA_01] });
    if (inUse)
      Object.assign(this, {
        hostPortsInUse: () => {
          this.asked++;
          return this.inUse!();
        },
      });
  }

  async createLab(
    runId: string,
    networks: CapturedNetwork[],
    options?: { internal: boolean },
  ): Promise<LabHandle> {
    this.internal.set(runId, options!.internal);
    return super.createLab(runId, networks);
  }

  async restoreMachine(
    lab: LabHandle,
    capture: RestorableCapture,
  ): Promise<RestoredMachine> {
    const restored = await super.restoreMachine(lab, capture);
    const published = this.internal.get(lab.runId)
      ? []
      : failoverPorts(capture.runtime.portBindings).publish.map(
          describePortBinding,
        );
    return {
      ...restored,
      adaptations: [],
      ...(published.length > 0 ? { published } : {}),
    };
  }
}

/** `text` matched as it is in a RegExp. */
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

describe.each(databases.eachSupportedId())(
  "a failover's host ports on %s",
  databaseId => {
    let captureStore: CaptureStore;
    let runStore: RunStore;

    /**
     * Captures web-01 publishing `web` in production, infra-01 `infra`; `adapted`: a machine's
     * capture's adaptations.
     */
    async function captured(
      web: PortBinding[],
      infra: PortBinding[] = [],
      adapted: Partial<Record<'web-01' | 'infra-01', string[]>> = {},
    ): Promise<void> {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      captureStore = new CaptureStore(knex);
      runStore = new RunStore(knex);
      for (const [name, portBindings] of [
        ['infra-01', infra],
        ['web-01', web],
      ] as const) {
        const capture = storedCapture(name);
        await captureStore.insertCapture({
          ...capture,
          adaptations: adapted[name] ?? capture.adaptations,
          runtime: {
            ...capture.runtime,
            ...(portBindings.length > 0 ? { portBindings } : {}),
          },
        });
      }
    }

    async function run(
      host: PublishingHost,
      mode: 'test' | 'failover',
    ): Promise<RecoveryRun> {
      const runs = runServiceOver(runStore, captureStore, host, graph);
      const started = await runs.start({
        entityRef: WEB,
        mode,
        trigger: 'user',
      });
      await runs.waitFor(started.id);
      return (await runStore.getRun(started.id))!;
    }

    const said = (r: RecoveryRun) =>
      r.steps
        .filter(s => /host port/i.test(s.message))
        .map(s => [s.level, s.machineRef, s.message]);

    it("publishes production's host ports in a failover once it found them free, and says which for each machine; a test recovery none, asking nothing", async () => {
      await captured([
        { containerPort: '80/tcp', hostPort: 8080 },
        { containerPort: '443/tcp', hostPort: 8443, hostIp: '127.0.0.1' },
        // Its engine picked it: not published, not checked.
        { containerPort: '9000/tcp' },
      ]);
      // Free: other ports, and 8080 on another protocol.
      const host = new PublishingHost(async () => [
        { hostPort: 9090, protocol: 'tcp', holder: 'container metrics' },
        { hostPort: 8080, protocol: 'udp', holder: 'container syslog' },
      ]);
      // Production still runs: its lab stays isolated, and where it publishes nothing no port is checked.
      const test = await run(host, 'test');
      expect(test.status).toBe('succeeded');
      expect(said(test)).toEqual([]);
      expect(host.asked).toBe(0);

      const failover = await run(host, 'failover');
      expect(failover.status).toBe('succeeded');
      expect(host.asked).toBe(1);
      expect(said(failover)).toEqual([
        [
          'info',
          undefined,
          `Host ports this failover publishes are free on fake: 8080 -> 80/tcp (${WEB_01}), 127.0.0.1:8443 -> 443/tcp (${WEB_01})`,
        ],
        [
          'info',
          WEB_01,
          'Published host ports 8080 -> 80/tcp, 127.0.0.1:8443 -> 443/tcp on the recovery host, as production did',
        ],
      ]);
    });

    it('refuses a failover before it builds anything where a container of the host holds a port it publishes, naming machine, port and holder', async () => {
      await captured([
        { containerPort: '80/tcp', hostPort: 8080 },
        { containerPort: '443/tcp', hostPort: 8443, hostIp: '127.0.0.1' },
      ]);
      const host = new PublishingHost(async () => [
        // Docker lists a port on every address once per address family: one holder.
        {
          hostPort: 8080,
          protocol: 'tcp',
          hostIp: '0.0.0.0',
          holder: 'container web-prod',
        },
        {
          hostPort: 8080,
          protocol: 'tcp',
          hostIp: '::',
          holder: 'container web-prod',
        },
        // On every address, so on loopback too.
        {
          hostPort: 8443,
          protocol: 'tcp',
          holder: `machine ${WEB_01} of run kept (container rr-kept-web-01)`,
        },
      ]);
      const failover = await run(host, 'failover');
      expect(failover.status).toBe('failed');
      expect(failover.error).toEqual({
        message:
          `${WEB_01} cannot publish host port 8080 -> 80/tcp on fake: container web-prod holds it there; ` +
          `${WEB_01} cannot publish host port 127.0.0.1:8443 -> 443/tcp on fake: machine ${WEB_01} of run kept (container rr-kept-web-01) holds it there. ` +
          'Free the port (stop what holds it), or fail over onto another hypervisor host; nothing of it is on fake',
      });
      expect(host.started).toEqual([]);
      expect(host.labels.size).toBe(0);
      expect(failover.machines.map(m => m.phase)).toEqual([
        'skipped',
        'skipped',
      ]);
    });

    it('refuses a failover two of whose machines published the same host port in production', async () => {
      await captured(
        [{ containerPort: '80/tcp', hostPort: 8080 }],
        [{ containerPort: '8080/tcp', hostPort: 8080, hostIp: '127.0.0.1' }],
      );
      const host = new PublishingHost(async () => []);
      const failover = await run(host, 'failover');
      expect(failover.status).toBe('failed');
      expect(failover.error?.message).toBe(
        `${INFRA_01} and ${WEB_01} both published host port 8080 -> 80/tcp in production: fake can publish it for one of them only. ` +
          'Publish another port for one of them in production and capture it again, or fail them over onto different hypervisor hosts; nothing of it is on fake',
      );
      expect(host.labels.size).toBe(0);
    });

    it("fails a failover at the host, naming no machine, where something of the host holds a port as the machine starts: the host's state, not the machine's", async () => {
      await captured([{ containerPort: '80/tcp', hostPort: 8080 }]);
      // Free when the pre-flight looked (a process of the host only the engine sees as it binds).
      const host = new PublishingHost(async () => []);
      const start = host.startMachine.bind(host);
      const refused = `starting ${WEB_01} in the lab of run r failed: Docker engine 'fake' answered HTTP 500: driver failed programming external connectivity on endpoint rr-web-01: Bind for 0.0.0.0:8080 failed: port is already allocated`;
      host.startMachine = async machine => {
        if (machine.machineRef === WEB_01)
          throw engineError(refused, 'fake', 'answered', {
            kind: 'port-held',
            hostPort: 8080,
          });
        return start(machine);
      };
      const failover = await run(host, 'failover');
      expect(failover.status).toBe('failed');
      // Host, port and the machine that wanted it, and no machineRef: readiness and owners'
      // notices blame no machine for it, as where the pre-flight found the port held.
      expect(failover.error?.machineRef).toBeUndefined();
      expect(failover.error?.message).toMatch(
        new RegExp(
          `^hypervisor host fake has host port 8080, which ${WEB_01} publishes as production did, held by something else: ${escape(refused)}\\. Free the port there, or fail over onto another hypervisor host; kept `,
        ),
      );
      expect(failover.machines.map(m => [m.machineRef, m.phase])).toEqual([
        [INFRA_01, 'ready'],
        [WEB_01, 'failed'],
      ]);
      // The machine's own record says the engine's words; no step says the machine failed.
      expect(failover.machines[1].message).toBe(refused);
      expect(
        failover.steps.filter(s => s.message.startsWith(`${WEB_01} failed`)),
      ).toEqual([]);
    });

    it('finds a port free beside one bound on the other address family alone: Docker binds [::] IPv6-only, 0.0.0.0 IPv4-only', async () => {
      await captured([
        { containerPort: '80/tcp', hostPort: 8080, hostIp: '127.0.0.1' },
        { containerPort: '443/tcp', hostPort: 8443, hostIp: '::1' },
      ]);
      const host = new PublishingHost(async () => [
        {
          hostPort: 8080,
          protocol: 'tcp',
          hostIp: '::',
          holder: 'container web-prod-v6',
        },
        {
          hostPort: 8443,
          protocol: 'tcp',
          hostIp: '0.0.0.0',
          holder: 'container web-prod-v4',
        },
      ]);
      const failover = await run(host, 'failover');
      expect(failover.status).toBe('succeeded');
      expect(said(failover)[0]).toEqual([
        'info',
        undefined,
        `Host ports this failover publishes are free on fake: 127.0.0.1:8080 -> 80/tcp (${WEB_01}), [::1]:8443 -> 443/tcp (${WEB_01})`,
      ]);
    });

    it('warns, naming them, of machines whose captures predate the recording of host ports: it publishes none of theirs', async () => {
      await captured([], [], {
        // As captures said before they recorded production's host ports.
        'web-01': [
          'host port binding 8080 -> 80/tcp dropped (reach the port on the lab network)',
          'host port binding 127.0.0.1:8443 -> 443/tcp dropped (reach the port on the lab network)',
          'bind mount of host path /srv at /srv dropped',
        ],
        'infra-01': ['bind mount of host path /etc at /etc dropped'],
      });
      const host = new PublishingHost(async () => []);
      const failover = await run(host, 'failover');
      expect(failover.status).toBe('succeeded');
      expect(said(failover)).toEqual([
        [
          'warning',
          undefined,
          `Host ports production published for ${WEB_01} (8080 -> 80/tcp, 127.0.0.1:8443 -> 443/tcp) are not published: its capture predates the recording of host ports. ` +
            "Capture it again for a failover to publish production's ports",
        ],
        [
          'info',
          WEB_01,
          'Adapted at capture: host port binding 8080 -> 80/tcp dropped (reach the port on the lab network); host port binding 127.0.0.1:8443 -> 443/tcp dropped (reach the port on the lab network); bind mount of host path /srv at /srv dropped',
        ],
      ]);
      // Nothing else to publish, so nothing to ask the host.
      expect(host.asked).toBe(0);
    });

    it('goes on, warning, where the host cannot list its ports or the look fails; fails at the host where it cannot be reached', async () => {
      await captured([{ containerPort: '80/tcp', hostPort: 8080 }]);
      const silent = await run(new PublishingHost(), 'failover');
      expect(silent.status).toBe('succeeded');
      expect(said(silent)[0]).toEqual([
        'warning',
        undefined,
        `Host ports on fake not checked (the host does not say): a port taken there fails the start of the machine publishing it; this failover publishes 8080 -> 80/tcp (${WEB_01})`,
      ]);

      const failing = await run(
        new PublishingHost(async () => {
          throw new Error('engine answered HTTP 500');
        }),
        'failover',
      );
      expect(failing.status).toBe('succeeded');
      expect(said(failing)[0]).toEqual([
        'warning',
        undefined,
        `Host ports on fake not checked (engine answered HTTP 500): a port taken there fails the start of the machine publishing it; this failover publishes 8080 -> 80/tcp (${WEB_01})`,
      ]);

      const unreachable = await run(
        new PublishingHost(async () => {
          throw new ServiceUnavailableError(
            "Docker engine 'fake' is unreachable (ECONNREFUSED)",
          );
        }),
        'failover',
      );
      expect(unreachable.status).toBe('failed');
      expect(unreachable.error?.message).toMatch(
        /^hypervisor host fake cannot be reached: Docker engine 'fake' is unreachable \(ECONNREFUSED\)/,
      );
    });
  },
);
