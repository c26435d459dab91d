import type { Entity } from '@backstage/catalog-model';
import { entityRole } from './entityRole';

const entity = (kind: string, spec: object = {}): Entity => ({
  apiVersion: 'backstage.io/v1alpha1',
  kind,
  metadata: { name: 'x', namespace: 'default' },
  spec,
});

describe('entityRole', () => {
  it('classifies machines, services and groups', () => {
    expect(entityRole(entity('Resource', { type: 'machine' }))).toBe('machine');
    expect(entityRole(entity('Resource', { type: 'database' }))).toBe(
      'service',
    );
    expect(entityRole(entity('Component'))).toBe('service');
    expect(entityRole(entity('System'))).toBe('group');
    expect(entityRole(entity('User'))).toBe('other');
  });
  it('reads the machine type in any case, as the catalog filters it', () => {
    expect(entityRole(entity('Resource', { type: 'Machine' }))).toBe('machine');
    expect(entityRole(entity('resource', { type: ' MACHINE ' }))).toBe(
      'machine',
    );
  });
});
