import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import {
  createExtensionTester,
  mockApis,
  renderTestApp,
} from '@backstage/frontend-test-utils';
import { catalogApiRef, entityRouteRef } from '@backstage/plugin-catalog-react';
import { catalogApiMock } from '@backstage/plugin-catalog-react/testUtils';
import { permissionApiRef } from '@backstage/plugin-permission-react';
import {
  EntityCardBlueprint,
  EntityContentBlueprint,
} from '@backstage/plugin-catalog-react/alpha';
import {
  ApiBlueprint,
  coreExtensionData,
} from '@backstage/frontend-plugin-api';
import type { Entity } from '@backstage/catalog-model';
import recoveryPlugin from '@backstage-recovery/plugin-recovery/alpha';
import * as main from '@backstage-recovery/plugin-recovery';
import { recoveryApiRef } from './index';
import {
  recoveryApi,
  recoveryEntityCard,
  recoveryEntityContent,
  recoveryPage,
} from './plugin';

import {
  fakeRecoveryApi,
  makeReadinessSummary,
  makeRun,
  makeRunSummary,
} from './testUtils/fixtures';

const entity = (
  kind: string,
  type?: string,
  relations: Array<[string, string]> = [],
): Entity => ({
  apiVersion: 'backstage.io/v1alpha1',
  kind,
  metadata: { name: 'x' },
  spec: type ? { type } : {},
  relations: relations.map(([t, targetRef]) => ({ type: t, targetRef })),
});
/** What ties a service to the machine it runs on, and a System to its services. */
const RUNS_ON: [string, string] = ['dependsOn', 'resource:default/web-01'];
const HAS_SERVICE: [string, string] = ['hasPart', 'component:default/web'];

/** A page loaded lazily, the first time slowly under a loaded test run. */
const LOADED = { timeout: 20_000 };

describe('recovery plugin (new frontend system)', () => {
  it("is the default export of the package's /alpha entry, with id recovery; the main entry is the legacy one", () => {
    expect(main).not.toHaveProperty('default');
    expect(main.recoveryPlugin.getId()).toBe('recovery');
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

  it('shows the card on the pages of services and groups tied to machines, not on machines', () => {
    const tester = createExtensionTester(recoveryEntityCard);
    const filter = tester.get(EntityCardBlueprint.dataRefs.filterFunction);
    expect(filter).toBeDefined();
    expect(filter!(entity('Component', 'service', [RUNS_ON]))).toBe(true);
    expect(filter!(entity('System', undefined, [HAS_SERVICE]))).toBe(true);
    // A database the catalog lists as a Resource is recovered as a service.
    expect(filter!(entity('Resource', 'database', [RUNS_ON]))).toBe(true);
    // A Component on no machine (a library) has nothing to recover.
    expect(filter!(entity('Component', 'library'))).toBe(false);
    expect(filter!(entity('Resource', 'machine', [RUNS_ON]))).toBe(false);
    expect(filter!(entity('API'))).toBe(false);
  });

  it('adds a Recovery tab on the same pages', () => {
    const tester = createExtensionTester(recoveryEntityContent);
    expect(tester.get(coreExtensionData.routePath)).toBe('/recovery');
    expect(tester.get(EntityContentBlueprint.dataRefs.title)).toBe('Recovery');
    const filter = tester.get(EntityContentBlueprint.dataRefs.filterFunction);
    expect(filter!(entity('System', undefined, [HAS_SERVICE]))).toBe(true);
    expect(filter!(entity('System'))).toBe(false);
    expect(filter!(entity('Component', 'service'))).toBe(false);
    expect(filter!(entity('Group'))).toBe(false);
  });

  it('filters with the predicate the main entry gives legacy apps for EntitySwitch', () => {
    const card = createExtensionTester(recoveryEntityCard);
    const tab = createExtensionTester(recoveryEntityContent);
    expect(card.get(EntityCardBlueprint.dataRefs.filterFunction)).toBe(
      main.isRecoveryAvailable,
    );
    expect(tab.get(EntityContentBlueprint.dataRefs.filterFunction)).toBe(
      main.isRecoveryAvailable,
    );
  });

  it('mounts the overview page at /recovery with a nav title', () => {
    const tester = createExtensionTester(recoveryPage);
    expect(tester.get(coreExtensionData.routePath)).toBe('/recovery');
    expect(tester.get(coreExtensionData.title)).toBe('Recovery');
  });

  it("serves a run's page under the overview, which links each entity's last run to it", async () => {
    const api = fakeRecoveryApi({
      listReadiness: async () => [
        makeReadinessSummary({ lastRun: makeRunSummary(makeRun('failed')) }),
      ],
      getRun: async id => makeRun('failed', { id }),
    });
    renderTestApp({
      features: [recoveryPlugin],
      initialRouteEntries: ['/recovery'],
      mountedRoutes: { '/catalog/:namespace/:kind/:name': entityRouteRef },
      apis: [
        [recoveryApiRef, api],
        [permissionApiRef, mockApis.permission()],
        [catalogApiRef, catalogApiMock()],
      ],
    });

    const row = (
      await screen.findByRole('link', { name: 'web' }, { timeout: 20_000 })
    ).closest('tr')!;
    // The app gives the page its header: the page is the <main> landmark all the same, once.
    await waitFor(() =>
      expect(screen.getByRole('main')).toContainElement(
        screen.getByRole('link', { name: 'web' }),
      ),
    );
    expect(within(row).getByTitle('Run run-1')).toHaveAttribute(
      'href',
      '/recovery/runs/run-1',
    );
    // The table renders its rows anew once after the first time: a link found then may be gone.
    await waitFor(async () => {
      const run = screen.queryByTitle('Run run-1');
      if (run) await userEvent.click(run);
      expect(
        screen.getByRole('heading', { name: 'Test recovery of web' }),
      ).toBeInTheDocument();
    }, LOADED);
    expect(screen.getByText('Recovery failed')).toBeInTheDocument();
    expect(screen.getByRole('main')).toContainElement(
      screen.getByText('Recovery failed'),
    );
    expect(api.getRun).toHaveBeenCalledWith('run-1');
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
