import type {
  RecoveryGraph,
  ServiceNode,
} from '@backstage-recovery/plugin-recovery-node';

// A site of three machines in a chain, each serving one service: web waits for database, which
// waits for dns.

export const INFRA = 'resource:default/infra-01';
export const DATA = 'resource:default/data-01';
export const WEB = 'resource:default/web-01';

const service = (ref: string, machine: string, dependsOn: string[] = []) =>
  [
    ref,
    { ref, machines: [machine], dependsOn, probes: [{ kind: 'tcp', port: 1 }] },
  ] as [string, ServiceNode];

/** The chain's recovery graph, rooted at web. */
export const chainGraph: RecoveryGraph = {
  rootRef: 'component:default/web',
  roots: ['component:default/web'],
  services: new Map([
    service('component:default/dns', INFRA),
    service('component:default/database', DATA, ['component:default/dns']),
    service('component:default/web', WEB, ['component:default/database']),
  ]),
  machines: new Map(
    [INFRA, DATA, WEB].map(ref => [
      ref,
      {
        ref,
        locator: { machineRef: ref, engine: 'primary', container: ref },
      },
    ]),
  ),
  problems: [],
  missing: [],
  objectives: { rpoSeconds: 86400, rtoSeconds: 3600 },
};

/** On the fake host a machine's services come up only if what it needs was up when it started. */
export const chainNeeds = { [DATA]: [INFRA], [WEB]: [DATA] };
