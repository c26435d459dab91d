import type { Entity } from '@backstage/catalog-model';

/** A group of the catalog, with the relations the catalog adds: its member users and its child groups. */
export function groupEntity(
  ref: string,
  members: string[],
  children: string[] = [],
): Entity {
  const [, namespace, name] = /^group:([^/]+)\/(.+)$/.exec(ref)!;
  return {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Group',
    metadata: { name, namespace },
    spec: { type: 'team', children },
    relations: [
      ...members.map(targetRef => ({ type: 'hasMember', targetRef })),
      ...children.map(targetRef => ({ type: 'parentOf', targetRef })),
    ],
  };
}
