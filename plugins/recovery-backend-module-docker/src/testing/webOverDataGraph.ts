import type {
  MachineNode,
  RecoveryGraph,
  ServiceNode,
} from '@backstage-recovery/plugin-recovery-node';

/** One machine of a two-machine site: its service, its Resource and its container. */
export interface SiteMachine {
  serviceRef: string;
  machineRef: string;
  container: string;
}

/**
 * The catalog graph of a web service that needs a data service, each on a machine of the
 * primary engine serving TCP 8080: the smallest site with two waves.
 */
export function webOverDataGraph(
  data: SiteMachine,
  web: SiteMachine,
): RecoveryGraph {
  const machine = (m: SiteMachine): [string, MachineNode] => [
    m.machineRef,
    {
      ref: m.machineRef,
      locator: {
        machineRef: m.machineRef,
        engine: 'primary',
        container: m.container,
      },
    },
  ];
  const service = (
    m: SiteMachine,
    dependsOn: string[],
  ): [string, ServiceNode] => [
    m.serviceRef,
    {
      ref: m.serviceRef,
      machines: [m.machineRef],
      dependsOn,
      probes: [{ kind: 'tcp', port: 8080 }],
    },
  ];
  return {
    rootRef: web.serviceRef,
    roots: [web.serviceRef],
    services: new Map([service(data, []), service(web, [data.serviceRef])]),
    machines: new Map([machine(data), machine(web)]),
    problems: [],
    missing: [],
    objectives: { rpoSeconds: 86_400, rtoSeconds: 3600 },
  };
}
