import { createExtensionTester } from '@backstage/frontend-test-utils';
import {
  EntityCardBlueprint,
  EntityContentBlueprint,
} from '@backstage/plugin-catalog-react/alpha';
import {
  ApiBlueprint,
  coreExtensionData,
} from '@backstage/frontend-plugin-api';
import type { Entity } from '@backstage/catalog-model';
import recoveryPlugin, { recoveryApiRef } from './index';
import {
  recoveryApi,
  recoveryEntityCard,
  recoveryEntityContent,
  recoveryPage,
} from './plugin';

const entity = (kind: string, type?: string): Entity => ({
  apiVersion: 'backstage.io/v1alpha1',
  kind,
  metadata: { name: 'x' },
  spec: type ? { type } : {},
});

describe('recovery plugin (new frontend system)', () => {
  it('is the default export, with id recovery', () => {
    expect(recoveryPlugin.id).toBe('recovery');
    expect(recoveryApiRef.id).toBe('plugin.recovery.service');
    for (const id of [
      'api:recovery',
      'entity-card:recovery/readiness',
      'entity-content:recovery',
      'page:recovery',
    ]) {
      expect(recoveryPlugin.getExtension(id as any)).toBeDefined();
    }
  });

  it('shows the card on the pages of what is recovered as a service or group, not on machines', () => {
    const tester = createExtensionTester(recoveryEntityCard);
    const filter = tester.get(EntityCardBlueprint.dataRefs.filterFunction);
    expect(filter).toBeDefined();
    expect(filter!(entity('Component', 'service'))).toBe(true);
    expect(filter!(entity('System'))).toBe(true);
    // A database the catalog lists as a Resource is recovered as a service.
    expect(filter!(entity('Resource', 'database'))).toBe(true);
    expect(filter!(entity('Resource', 'machine'))).toBe(false);
    expect(filter!(entity('API'))).toBe(false);
  });

  it('adds a Recovery tab on the same pages', () => {
    const tester = createExtensionTester(recoveryEntityContent);
    expect(tester.get(coreExtensionData.routePath)).toBe('/recovery');
    expect(tester.get(EntityContentBlueprint.dataRefs.title)).toBe('Recovery');
    const filter = tester.get(EntityContentBlueprint.dataRefs.filterFunction);
    expect(filter!(entity('System'))).toBe(true);
    expect(filter!(entity('Group'))).toBe(false);
  });

  it('mounts the overview page at /recovery with a nav title', () => {
    const tester = createExtensionTester(recoveryPage);
    expect(tester.get(coreExtensionData.routePath)).toBe('/recovery');
    expect(tester.get(coreExtensionData.title)).toBe('Recovery');
  });

  it('provides the API client', () => {
    const tester = createExtensionTester(recoveryApi);
    const factory = tester.get(ApiBlueprint.dataRefs.factory);
    expect(factory.api.id).toBe('plugin.recovery.service');
    expect(Object.keys(factory.deps).sort()).toEqual([
      'discoveryApi',
      'fetchApi',
    ]);
  });
});
