import {
  Entity,
  RELATION_DEPENDS_ON,
  RELATION_HAS_PART,
  stringifyEntityRef,
} from '@backstage/catalog-model';
import {
  ANNOTATION_CONTAINER,
  ANNOTATION_ENGINE,
  ANNOTATION_JOB,
  ANNOTATION_PROBES,
  ANNOTATION_RPO,
  ANNOTATION_RTO,
  EntityProblem,
  MACHINE_RESOURCE_TYPE,
  ProbeSpec,
  formatSeconds,
  parseDurationSeconds,
} from '@backstage-recovery/plugin-recovery-common';
import type { MachineLocator } from '@backstage-recovery/plugin-recovery-node';

/**
 * The annotations that map a machine to its primary engine (readMachine): read on a machine alone,
 * a machine with one missing or bad is not mapped, and nothing captures it.
 */
export const MAPPING_ANNOTATIONS: ReadonlySet<string> = new Set([
  ANNOTATION_ENGINE,
  ANNOTATION_CONTAINER,
]);

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
  return {
    locator: { machineRef: entityRef, engine: engine!, container: container! },
    problems,
  };
}

/**
 * Whether a machine is a job that runs to completion (its job annotation, `true` or `false` in any
 * case). The annotation is the one signal: a capture of a machine that had exited with code 0 under
 * restart policy `no` is as likely of a service an operator stopped cleanly, which must run again.
 * Any other value is a problem, and the machine boots as one that must keep running.
 */
export function readJob(entity: Entity): {
  job: boolean;
  problems: EntityProblem[];
} {
  const value = entity.metadata.annotations?.[ANNOTATION_JOB];
  const said = value?.trim().toLowerCase();
  if (value === undefined || said === 'false')
    return { job: false, problems: [] };
  if (said === 'true') return { job: true, problems: [] };
  const entityRef = stringifyEntityRef(entity);
  return {
    job: false,
    problems: [
      {
        entityRef,
        annotation: ANNOTATION_JOB,
        message: `Machine ${entityRef}: ${ANNOTATION_JOB} "${value}" is neither 'true' nor 'false', so it is booted as a machine that must keep running; set it to 'true' if it runs to completion (an init, a migration)`,
      },
    ],
  };
}

/**
 * The machine annotations (engine, container, job) on an entity that is no machine: they are read only
 * on a machine Resource, so here they are ignored and the machine they were meant for is not
 * captured by them. Each is a problem naming the entity and the annotation.
 */
export function misplacedMachineAnnotations(entity: Entity): EntityProblem[] {
  const entityRef = stringifyEntityRef(entity);
  const annotations = entity.metadata.annotations ?? {};
  const kind = entity.kind.toLocaleLowerCase('en-US');
  const what = entity.spec?.type
    ? `a ${entity.kind} of type ${String(entity.spec.type)}`
    : `a ${entity.kind}`;
  const where =
    kind === 'component' || kind === 'resource'
      ? `the machine Resource ${entityRef} runs on (its dependsOn)`
      : 'the machine Resource it describes';
  // A Resource of another type may be a machine typed otherwise (`spec.type: vm`).
  const retype =
    kind === 'resource'
      ? `, or, if ${entityRef} is itself a machine, set its spec.type to ${MACHINE_RESOURCE_TYPE}`
      : '';
  return [ANNOTATION_ENGINE, ANNOTATION_CONTAINER, ANNOTATION_JOB]
    .filter(annotation => annotations[annotation] !== undefined)
    .map(annotation => ({
      entityRef,
      annotation,
      message: `${entityRef} is ${what}, not a machine: ${annotation} "${annotations[annotation]}" is read only on a machine Resource (spec.type: ${MACHINE_RESOURCE_TYPE}), so it is ignored here; move it to ${where}${retype}`,
    }));
}

/**
 * Machines whose engine annotation names no primary engine a capture source serves (`engines`, as
 * configured): nothing captures them. The catalog cannot tell; the configuration can.
 */
export function unknownEngineProblems(
  machines: Iterable<{ ref: string; locator?: MachineLocator }>,
  engines: string[],
): EntityProblem[] {
  const known = new Set(engines);
  const configured =
    engines.length > 0 ? [...engines].sort().join(', ') : 'none';
  return [...machines].flatMap(({ ref, locator }) =>
    locator && !known.has(locator.engine)
      ? [
          {
            entityRef: ref,
            annotation: ANNOTATION_ENGINE,
            message: `Machine ${ref}: ${ANNOTATION_ENGINE} "${locator.engine}" is no configured primary engine (configured: ${configured}), so it is not captured: set it to one of them`,
          },
        ]
      : [],
  );
}

/**
 * Parses the probes annotation of a service or a machine: `tcp:53, http:80/healthz` (the kind in
 * any case, `http:80` for `http:80/`). A probe named twice is probed once; a bad one is a problem
 * saying what is wrong.
 */
export function readProbes(entity: Entity): {
  probes: ProbeSpec[];
  problems: EntityProblem[];
} {
  const entityRef = stringifyEntityRef(entity);
  const text = entity.metadata.annotations?.[ANNOTATION_PROBES];
  const probes: ProbeSpec[] = [];
  const problems: EntityProblem[] = [];
  if (!text) return { probes, problems };
  const seen = new Set<string>();
  for (const item of text
    .split(',')
    .map(s => s.trim())
    .filter(Boolean)) {
    const match = /^(tcp|http):(\d{1,5})(\/\S*)?$/i.exec(item);
    const kind = match?.[1].toLowerCase();
    const port = match ? Number(match[2]) : NaN;
    if (!match || port < 1 || port > 65535 || (kind === 'tcp' && match[3])) {
      problems.push({
        entityRef,
        annotation: ANNOTATION_PROBES,
        message: `${entityRef}: probe "${item}" in ${ANNOTATION_PROBES} is not valid${whyNotProbe(item, match)}; expected tcp:PORT or http:PORT/PATH, separated by commas`,
      });
      continue;
    }
    const probe: ProbeSpec =
      kind === 'http'
        ? { kind: 'http', port, path: match[3] ?? '/' }
        : { kind: 'tcp', port };
    const key = `${probe.kind}:${probe.port}${probe.path ?? ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    probes.push(probe);
  }
  return { probes, problems };
}

/** Why a probe is not valid, where it is plain: `: …`, or nothing. */
function whyNotProbe(item: string, match: RegExpExecArray | null): string {
  if (match) {
    const port = Number(match[2]);
    if (port < 1 || port > 65535)
      return ` (port ${match[2]} is not between 1 and 65535)`;
    return ' (a tcp probe takes no path)';
  }
  const https = /^https:(\d{1,5})/i.exec(item);
  if (https)
    return ` (there are no https probes: tcp:${https[1]} checks that the port answers)`;
  if (/^(tcp|http):\/\//i.test(item))
    return " (a port and path, not a URL: the lab probes each of the service's machines)";
  // `tcp:53 tcp:80`, `tcp:53; http:80/`: probes, but not separated as the annotation separates them.
  const pieces = item.split(/[\s;]+/).filter(Boolean);
  if (
    pieces.length > 1 &&
    pieces.every(p => /^(tcp|http):\d{1,5}(\/\S*)?$/i.test(p))
  )
    return ' (probes are separated by commas)';
  return '';
}

/**
 * Reads RPO/RTO objectives, falling back to the configured defaults. One that does not parse is a
 * problem saying what is wrong with it and which objective is used meanwhile.
 */
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
        message: `${entityRef}: ${annotation} "${text}" ${whyNotObjective(text, seconds)}; until it is mended, the site's default of ${formatSeconds(fallback)} applies`,
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

/** What is wrong with an objective's text, as people get them wrong. */
function whyNotObjective(text: string, seconds: number | undefined): string {
  const trimmed = text.trim();
  if (seconds !== undefined || /^0+(\.0+)?$/.test(trimmed))
    return 'is no time at all: an objective must be longer than 0s';
  if (trimmed === '')
    return 'is empty: set a duration such as 30m, 4h or 1d, or remove it';
  if (trimmed.startsWith('-'))
    return 'is negative: an objective must be longer than 0s';
  if (/^\d+(\.\d+)?$/.test(trimmed))
    return `has no unit: add one, e.g. ${trimmed}m or ${trimmed}h (units ms, s, m, h, d)`;
  const lower = trimmed.toLowerCase();
  if (lower !== trimmed && parseDurationSeconds(lower) !== undefined)
    return `is not a duration: units are lower case (${lower})`;
  return 'is not a duration such as 30m, 4h, 1d or 1h30m (a number and a unit: ms, s, m, h or d, no spaces)';
}

/**
 * The targets of an entity's relations of a type, each once: the catalog keeps a relation once per
 * entity that declares it, so `A dependsOn B` comes twice when B also names A in spec.dependencyOf.
 */
export function relationTargets(entity: Entity, type: string): string[] {
  return [
    ...new Set(
      (entity.relations ?? [])
        .filter(r => r.type === type)
        .map(r => r.targetRef),
    ),
  ].sort();
}

export const dependsOnTargets = (entity: Entity) =>
  relationTargets(entity, RELATION_DEPENDS_ON);
export const partTargets = (entity: Entity) =>
  relationTargets(entity, RELATION_HAS_PART);
