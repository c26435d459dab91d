/** Prefix of every annotation this product reads (Backstage reserves `backstage.io/`). */
export const RECOVERY_ANNOTATION_PREFIX = 'recovery.backstage-recovery.io/';

/**
 * On a machine `Resource` (`spec.type: machine`): id of the configured primary engine
 * that runs the machine, e.g. `primary`.
 *
 * @public
 */
export const ANNOTATION_ENGINE = `${RECOVERY_ANNOTATION_PREFIX}engine`;
/**
 * On a machine `Resource`: the container (or VM) name on that engine.
 *
 * @public
 */
export const ANNOTATION_CONTAINER = `${RECOVERY_ANNOTATION_PREFIX}container`;
/**
 * On a service (or a machine, for itself): readiness probes checked against the service's
 * machines after boot, comma separated: `tcp:53`, `http:80/healthz`.
 *
 * @public
 */
export const ANNOTATION_PROBES = `${RECOVERY_ANNOTATION_PREFIX}probes`;
/**
 * Recovery point objective, e.g. `24h`, `30m`.
 *
 * @public
 */
export const ANNOTATION_RPO = `${RECOVERY_ANNOTATION_PREFIX}rpo`;
/**
 * Recovery time objective, e.g. `15m`.
 *
 * @public
 */
export const ANNOTATION_RTO = `${RECOVERY_ANNOTATION_PREFIX}rto`;
/**
 * `"false"` (in any case) leaves the entity out of the nightly readiness check, which covers every
 * other one; a value neither `false` nor `true` is checked and named in the check's summary.
 *
 * @public
 */
export const ANNOTATION_NIGHTLY_CHECK = `${RECOVERY_ANNOTATION_PREFIX}nightly-check`;

/**
 * On a machine `Resource`: `"true"` (in any case) says the machine is a job that runs to
 * completion (an init, a migration): a run boots it, counts it ready once it exits with code 0,
 * and starts its dependents after; it is not expected to keep running. `"false"`, or none: it must
 * keep running. Read only from the catalog: a capture of a machine that had exited with code 0
 * may as well be of a service an operator stopped.
 *
 * @public
 */
export const ANNOTATION_JOB = `${RECOVERY_ANNOTATION_PREFIX}job`;

/**
 * Label put on every resource a recovery run creates on a hypervisor host.
 *
 * @public
 */
export const RUN_ID_LABEL = `${RECOVERY_ANNOTATION_PREFIX}run-id`;
/**
 * Labels on primary containers naming their machine and service (event collection).
 *
 * @public
 */
export const MACHINE_LABEL = `${RECOVERY_ANNOTATION_PREFIX}machine`;
/**
 * Label on a primary container naming the service it runs (event collection).
 *
 * @public
 */
export const SERVICE_LABEL = `${RECOVERY_ANNOTATION_PREFIX}service`;

/**
 * `spec.type` of a catalog `Resource` that is a primary machine.
 *
 * @public
 */
export const MACHINE_RESOURCE_TYPE = 'machine';
