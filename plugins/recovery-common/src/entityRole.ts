import {
  type Entity,
  RELATION_DEPENDS_ON,
  RELATION_HAS_PART,
} from '@backstage/catalog-model';
import { MACHINE_RESOURCE_TYPE } from './annotations';

/**
 * What the catalog says an entity is, for recovery purposes.
 *
 * @public
 */
export type EntityRole = 'machine' | 'service' | 'group' | 'other';

/**
 * A machine Resource is a machine; a Component or any other Resource (a database, say) is a
 * service; a System groups services.
 *
 * @public
 */
export function entityRole(entity: Entity): EntityRole {
  const kind = entity.kind.toLocaleLowerCase('en-US');
  // In any case, as the catalog's own filters match it (`spec.type: Machine` is a machine too).
  const type = String(entity.spec?.type ?? '')
    .trim()
    .toLocaleLowerCase('en-US');
  if (kind === 'resource' && type === MACHINE_RESOURCE_TYPE) {
    return 'machine';
  }
  if (kind === 'component' || kind === 'resource') return 'service';
  if (kind === 'system') return 'group';
  return 'other';
}

/** Kinds through which a boot plan reaches machines: what it walks by dependsOn and hasPart. */
const PLANNED_KINDS = ['component', 'resource', 'system', 'api'];

/**
 * Whether the backend can build a boot plan for the entity, as far as the entity itself tells (no
 * catalog look-up): a service that dependsOn, or is made of (hasPart), a Component, Resource, System
 * or API, through which the plan finds machine Resources; a System with such parts. A relation's
 * target is only a ref, so a Resource it names is taken for a machine. Machines are recovered with
 * the services that run on them, so they are not among these.
 *
 * @public
 */
export function isRecoveryAvailable(entity: Entity): boolean {
  const role = entityRole(entity);
  if (role !== 'service' && role !== 'group') return false;
  // A System's own dependsOn is not walked: only its parts are recovered with it.
  const followed =
    role === 'group'
      ? [RELATION_HAS_PART]
      : [RELATION_DEPENDS_ON, RELATION_HAS_PART];
  return (entity.relations ?? []).some(
    relation =>
      followed.includes(relation.type) &&
      PLANNED_KINDS.includes(targetKind(relation.targetRef)),
  );
}

/** The kind of a relation's target ref (`kind:namespace/name`, as the catalog writes them). */
function targetKind(ref: string): string {
  return ref.slice(0, Math.max(ref.indexOf(':'), 0)).toLocaleLowerCase('en-US');
}
