import type { Entity } from '@backstage/catalog-model';
import { entityRole, isRecoveryAvailable } from './entityRole';

const entity = (
  kind: string,
  spec: object = {},
  relations: Array<[string, string]> = [],
): Entity => ({
  apiVersion: 'backstage.io/v1alpha1',
  kind,
  metadata: { name: 'x', namespace: 'default' },
  spec,
  relations: relations.map(([type, targetRef]) => ({ type, targetRef })),
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

describe('isRecoveryAvailable', () => {
  it('holds for a service that dependsOn a machine, not for one on nothing', () => {
    const machine: [string, string] = ['dependsOn', 'resource:default/web-01'];
    expect(isRecoveryAvailable(entity('Component', {}, [machine]))).toBe(true);
    // A database the catalog lists as a Resource, on its own machine.
    expect(
      isRecoveryAvailable(entity('Resource', { type: 'database' }, [machine])),
    ).toBe(true);
    expect(isRecoveryAvailable(entity('Component'))).toBe(false);
    // Ownership and membership lead a plan to no machine.
    expect(
      isRecoveryAvailable(
        entity('Component', {}, [
          ['ownedBy', 'group:default/team-a'],
          ['partOf', 'system:default/site'],
          ['dependencyOf', 'component:default/web'],
        ]),
      ),
    ).toBe(false);
  });

  it('holds for a service that waits for what runs on machines, or is made of it', () => {
    for (const [type, targetRef] of [
      ['dependsOn', 'component:default/db'],
      ['dependsOn', 'system:default/platform'],
      ['dependsOn', 'api:default/orders'],
      ['hasPart', 'component:default/worker'],
    ])
      expect(
        isRecoveryAvailable(entity('Component', {}, [[type, targetRef]])),
      ).toBe(true);
  });

  it('does not hold for a dependsOn on what a plan cannot boot', () => {
    expect(
      isRecoveryAvailable(
        entity('Component', {}, [['dependsOn', 'group:default/team-a']]),
      ),
    ).toBe(false);
  });

  it('holds for a System with parts, not for one with none or only dependsOn', () => {
    expect(
      isRecoveryAvailable(
        entity('System', {}, [['hasPart', 'component:default/web']]),
      ),
    ).toBe(true);
    expect(isRecoveryAvailable(entity('System'))).toBe(false);
    // A System's own dependsOn is not walked by a plan.
    expect(
      isRecoveryAvailable(
        entity('System', {}, [['dependsOn', 'resource:default/web-01']]),
      ),
    ).toBe(false);
  });

  it('does not hold for a machine itself, nor for a Group', () => {
    expect(
      isRecoveryAvailable(
        entity('Resource', { type: 'machine' }, [
          ['dependsOn', 'resource:default/db-01'],
          ['dependencyOf', 'component:default/web'],
        ]),
      ),
    ).toBe(false);
    expect(
      isRecoveryAvailable(
        entity('Group', { type: 'team' }, [
          ['hasPart', 'component:default/web'],
        ]),
      ),
    ).toBe(false);
  });
});
