import type { Entity } from '@backstage/catalog-model';
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
