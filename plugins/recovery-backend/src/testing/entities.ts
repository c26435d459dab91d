import type { Entity } from '@backstage/catalog-model';

const P = 'recovery.backstage-recovery.io/';

/** A machine of the primary Docker engine, as the catalog holds it. */
export const machineEntity = (name: string): Entity => ({
  apiVersion: 'backstage.io/v1alpha1',
  kind: 'Resource',
  metadata: { name, namespace: 'default', annotations: { [`${P}engine`]: 'primary', [`${P}container`]: name } },
  spec: { type: 'machine' },
});

/** A service component with its dependsOn relations. */
export const componentEntity = (name: string, dependsOn: string[]): Entity => ({
  apiVersion: 'backstage.io/v1alpha1',
  kind: 'Component',
  metadata: { name, namespace: 'default' },
  spec: { type: 'service' },
  relations: dependsOn.map(targetRef => ({ type: 'dependsOn', targetRef })),
});
