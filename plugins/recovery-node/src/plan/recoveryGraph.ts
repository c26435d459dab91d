import type {
  EntityProblem,
  ProbeSpec,
} from '@backstage-recovery/plugin-recovery-common';
import type { MachineLocator } from '../providers';

/**
 * A service as the boot plan sees it.
 *
 * @public
 */
export interface ServiceNode {
  ref: string;
  /** Machines the service runs on. */
  machines: string[];
  /** Services it depends on. */
  dependsOn: string[];
  /**
   * Of dependsOn, those it waits for through what it declares (an API they provide, a System or a
   * component they are part of): that entity, so a cycle can say which dependsOn makes it.
   */
  through?: Record<string, string>;
  probes: ProbeSpec[];
  /** The System it is part of (spec.system, as a ref): a plan breaking cycles drops an edge between Systems first. */
  system?: string;
}

/**
 * A machine of the recovery graph: its catalog ref, its locator and what it declares it depends on.
 *
 * @public
 */
export interface MachineNode {
  ref: string;
  /** Undefined when the machine's annotations are missing or wrong (see problems). */
  locator?: MachineLocator;
  /** What it declares it depends on itself (a Resource's dependsOn): machines and services. */
  dependsOn?: string[];
  /** Of dependsOn, those it waits for through what it declares (an API, a System): that entity. */
  through?: Record<string, string>;
  /** Machines it waits for beyond what its services' dependencies say (learned from reboots). */
  waitsFor?: string[];
  /** Its own probes annotation: they gate it besides its services' (a database machine's `tcp:5432`). */
  probes?: ProbeSpec[];
  /** The System it is part of (spec.system, as a ref). */
  system?: string;
  /** A job that runs to completion (its job annotation): ready once it exits with code 0. */
  job?: boolean;
}

/**
 * The part of the catalog a recovery of `rootRef` touches.
 *
 * @public
 */
export interface RecoveryGraph {
  rootRef: string;
  /** Services (and machines) the recovery starts from: the entity itself and its parts, or a system's parts. */
  roots: string[];
  services: Map<string, ServiceNode>;
  machines: Map<string, MachineNode>;
  /**
   * Per service or machine (and the root): the Systems and APIs its dependsOn (the root: its parts)
   * go through to what it waits for. Their problems are of the plans that take it (narrowedToPlan).
   */
  wholes?: Map<string, string[]>;
  problems: EntityProblem[];
  /**
   * Of the problems, the dependencies the catalog declares (dependsOn, a system's hasPart) on
   * entities it does not hold, or on an API no component provides: a plan cannot recover them, so
   * a run without them tests less than the real recovery.
   */
  missing: EntityProblem[];
  objectives: { rpoSeconds: number; rtoSeconds: number };
}
