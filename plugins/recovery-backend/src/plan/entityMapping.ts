import {
  Entity,
  RELATION_DEPENDS_ON,
  RELATION_HAS_PART,
  stringifyEntityRef,
} from '@backstage/catalog-model';
import {
  ANNOTATION_CONTAINER,
  ANNOTATION_ENGINE,
  ANNOTATION_PROBES,
  ANNOTATION_RPO,
  ANNOTATION_RTO,
  EntityProblem,
  ProbeSpec,
  parseDurationSeconds,
} from '@backstage-recovery/plugin-recovery-common';
import type { MachineLocator } from '@backstage-recovery/plugin-recovery-node';

/** Reads where a machine's running state lives from its annotations. */
export function readMachine(entity: Entity): {
  locator?: MachineLocator;
  problems: EntityProblem[];
} {
  const entityRef = stringifyEntityRef(entity);
  const annotations = entity.metadata.annotations ?? {};
  const problems: EntityProblem[] = [];
  const engine = annotations[ANNOTATION_ENGINE]?.trim();
  const container = annotations[ANNOTATION_CONTAINER]?.trim();
  if (!engine) {
    problems.push({
      entityRef,
      annotation: ANNOTATION_ENGINE,
      message: `Machine ${entityRef} has no ${ANNOTATION_ENGINE} annotation: set it to the id of the primary engine that runs it`,
    });
  }
  if (!container) {
    problems.push({
      entityRef,
      annotation: ANNOTATION_CONTAINER,
      message: `Machine ${entityRef} has no ${ANNOTATION_CONTAINER} annotation: set it to the container name on its engine`,
    });
  } else if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(container)) {
    problems.push({
      entityRef,
      annotation: ANNOTATION_CONTAINER,
      message: `Machine ${entityRef}: ${ANNOTATION_CONTAINER} "${container}" is not a valid container name`,
    });
  }
  if (problems.length > 0) return { problems };
  return { locator: { machineRef: entityRef, engine: engine!, container: container! }, problems };
}

/** Parses the probes annotation: `tcp:53, http:80/healthz` (the kind in any case). */
export function readProbes(entity: Entity): {
  probes: ProbeSpec[];
  problems: EntityProblem[];
} {
  const entityRef = stringifyEntityRef(entity);
  const text = entity.metadata.annotations?.[ANNOTATION_PROBES];
  const probes: ProbeSpec[] = [];
  const problems: EntityProblem[] = [];
  if (!text) return { probes, problems };
  for (const item of text.split(',').map(s => s.trim()).filter(Boolean)) {
    const match = /^(tcp|http):(\d{1,5})(\/\S*)?$/i.exec(item);
    const kind = match?.[1].toLowerCase();
    const port = match ? Number(match[2]) : NaN;
    if (!match || port < 1 || port > 65535 || (kind === 'tcp' && match[3])) {
      problems.push({
        entityRef,
        annotation: ANNOTATION_PROBES,
        message: `${entityRef}: probe "${item}" in ${ANNOTATION_PROBES} is not valid; expected tcp:PORT or http:PORT/PATH, separated by commas`,
      });
      continue;
    }
    probes.push(
      kind === 'http'
        ? { kind: 'http', port, path: match[3] ?? '/' }
        : { kind: 'tcp', port },
    );
  }
  return { probes, problems };
}

/** Reads RPO/RTO objectives, falling back to the configured defaults. */
export function readObjectives(
  entity: Entity,
  defaults: { rpoSeconds: number; rtoSeconds: number },
): { rpoSeconds: number; rtoSeconds: number; problems: EntityProblem[] } {
  const entityRef = stringifyEntityRef(entity);
  const problems: EntityProblem[] = [];
  const read = (annotation: string, fallback: number) => {
    const text = entity.metadata.annotations?.[annotation];
    if (text === undefined) return fallback;
    const seconds = parseDurationSeconds(text);
    if (seconds === undefined || seconds <= 0) {
      problems.push({
        entityRef,
        annotation,
        message: `${entityRef}: ${annotation} "${text}" is not a duration such as 30m, 4h or 1d`,
      });
      return fallback;
    }
    return seconds;
  };
  return {
    rpoSeconds: read(ANNOTATION_RPO, defaults.rpoSeconds),
    rtoSeconds: read(ANNOTATION_RTO, defaults.rtoSeconds),
    problems,
  };
}

/**
 * The targets of an entity's relations of a type, each once: the catalog keeps a relation once per
 * entity that declares it, so `A dependsOn B` comes twice when B also names A in spec.dependencyOf.
 */
export function relationTargets(entity: Entity, type: string): string[] {
  return [...new Set((entity.relations ?? []).filter(r => r.type === type).map(r => r.targetRef))].sort();
}

export const dependsOnTargets = (entity: Entity) =>
  relationTargets(entity, RELATION_DEPENDS_ON);
export const partTargets = (entity: Entity) =>
  relationTargets(entity, RELATION_HAS_PART);
