import { act, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { Entity } from '@backstage/catalog-model';
import type { CatalogApi } from '@backstage/plugin-catalog-react';
import { AuthorizeResult } from '@backstage/plugin-permission-common';
import type { PermissionApi } from '@backstage/plugin-permission-react';
import { RunDetails } from '../RunDetails';
import { DB, fakeRecoveryApi, makeRun, WEB } from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';

const failover = makeRun('succeeded', { id: 'fo-1', mode: 'failover' });
const releaseButton = () =>
  screen.getByRole('button', { name: 'Release failover machines' });

/** The catalog entity of a ref such as resource:default/db. */
function entityOf(ref: string): Entity {
  const [kind, rest] = ref.split(':');
  const [namespace, name] = rest.split('/');
  return {
    apiVersion: 'backstage.io/v1alpha1',
    kind: kind === 'resource' ? 'Resource' : 'Component',
    metadata: { name, namespace },
    spec: {},
  };
}
// What the fixture's failover booted (failoverEntityRefs of its plan), besides its entity.
const BOOTED = [DB, 'component:default/db', WEB];
const ENTITY = 'component:default/web';
const wholeCatalog = [ENTITY, ...BOOTED].map(entityOf);

/** An `allow` that records what it was asked about, granting recovery.run.release except on `denied`. */
function releaseGrantedExcept(...denied: string[]) {
  const asked: string[] = [];
  const allow = (permission: string, resourceRef?: string) => {
    if (permission === 'recovery.run.release') asked.push(resourceRef!);
    return !(
      permission === 'recovery.run.release' && denied.includes(resourceRef!)
    );
  };
  return { allow, asked };
}

it('keeps the release of a failover off, saying why, without the release permission on its entity, whatever the grant to fail over', async () => {
  await renderWithApis(<RunDetails run={failover} />, {
    api: fakeRecoveryApi(),
    entity: null,
    allow: permission => permission !== 'recovery.run.release',
  });
  expect(
    await screen.findByText(
      /^You are not allowed to release this failover \(recovery\.run\.release on .+\)$/,
    ),
  ).toBeInTheDocument();
  expect(releaseButton()).toBeDisabled();
});

it('offers the release to one granted recovery.run.release and refused recovery.run.failover', async () => {
  await renderWithApis(<RunDetails run={failover} />, {
    api: fakeRecoveryApi(),
    entity: null,
    allow: permission => permission !== 'recovery.run.failover',
    catalog: wholeCatalog,
  });
  await waitFor(() => expect(releaseButton()).toBeEnabled());
  expect(screen.queryByText(/not allowed to release/)).toBeNull();
});

describe('the release of a failover, asked as the backend asks it', () => {
  it('is off, naming the machine, when one machine the failover booted lacks the grant', async () => {
    const { allow, asked } = releaseGrantedExcept(DB);
    await renderWithApis(<RunDetails run={failover} />, {
      api: fakeRecoveryApi(),
      entity: null,
      allow,
      catalog: wholeCatalog,
    });
    const why =
      'You are not allowed to release this failover: it needs recovery.run.release on each machine and service it booted, ' +
      'and you lack it on 1 entity: resource:default/db';
    await waitFor(() =>
      expect(releaseButton()).toHaveAccessibleDescription(why),
    );
    expect(releaseButton()).toBeDisabled();
    expect(releaseButton().closest('span[title]')).toHaveAttribute(
      'title',
      why,
    );
    expect([...asked].sort()).toEqual([ENTITY, ...BOOTED].sort());
  });

  it('is on when the entity and every machine and service it booted have the grant', async () => {
    const { allow, asked } = releaseGrantedExcept();
    await renderWithApis(<RunDetails run={failover} />, {
      api: fakeRecoveryApi(),
      entity: null,
      allow,
      catalog: wholeCatalog,
    });
    await waitFor(() => expect(releaseButton()).toBeEnabled());
    expect(releaseButton()).not.toHaveAccessibleDescription();
    expect(screen.queryByText(/not allowed to release/)).toBeNull();
    expect([...asked].sort()).toEqual([ENTITY, ...BOOTED].sort());
  });

  it('names only the entities the catalog shows, counting the others', async () => {
    const { allow } = releaseGrantedExcept(DB, 'component:default/db', WEB);
    await renderWithApis(<RunDetails run={failover} />, {
      api: fakeRecoveryApi(),
      entity: null,
      allow,
      catalog: [ENTITY, 'component:default/db'].map(entityOf),
    });
    expect(
      await screen.findByText(
        /and you lack it on 3 entities: component:default\/db, 2 entities the catalog does not show you$/,
      ),
    ).toBeInTheDocument();
    expect(releaseButton()).toBeDisabled();
  });

  it('offers no enabled button while the grants are still being checked', async () => {
    let answer!: () => void;
    const answered = new Promise<void>(resolve => (answer = resolve));
    const permissionApi: PermissionApi = {
      authorize: async () => {
        await answered;
        return { result: AuthorizeResult.ALLOW };
      },
    };
    await renderWithApis(<RunDetails run={failover} />, {
      api: fakeRecoveryApi(),
      entity: null,
      permissionApi,
      catalog: wholeCatalog,
    });
    expect(releaseButton()).toBeDisabled();
    expect(releaseButton()).not.toHaveAccessibleDescription();
    answer();
    await waitFor(() => expect(releaseButton()).toBeEnabled());
  });

  it('says a check that failed failed, not that the grant is lacking, and asks again on Retry', async () => {
    let checks = 0;
    const permissionApi: PermissionApi = {
      authorize: async () => {
        checks += 1;
        if (checks === 1) throw new Error('Failed to fetch');
        return { result: AuthorizeResult.ALLOW };
      },
    };
    await renderWithApis(<RunDetails run={failover} />, {
      api: fakeRecoveryApi(),
      entity: null,
      permissionApi,
      catalog: wholeCatalog,
    });
    expect(
      await screen.findByText(
        'Could not check whether you may release this failover: Failed to fetch',
      ),
    ).toBeInTheDocument();
    expect(releaseButton()).toBeDisabled();

    await userEvent.click(
      screen.getByRole('button', {
        name: 'Retry checking the release permission',
      }),
    );
    await waitFor(() => expect(releaseButton()).toBeEnabled());
    expect(screen.queryByText(/Could not check/)).toBeNull();
  });

  it('says a check left unanswered for a minute failed, rather than keep the button off without a word', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      const user = userEvent.setup({ advanceTimers: vi.advanceTimersByTime });
      let checks = 0;
      const permissionApi: PermissionApi = {
        // The first round of checks is never answered (the permission backend's connection dropped).
        authorize: async () => {
          checks += 1;
          return checks <= 4
            ? new Promise<never>(() => {})
            : { result: AuthorizeResult.ALLOW };
        },
      };
      await renderWithApis(<RunDetails run={failover} />, {
        api: fakeRecoveryApi(),
        entity: null,
        permissionApi,
        catalog: wholeCatalog,
      });
      await act(() => vi.advanceTimersByTimeAsync(60_000));
      expect(
        screen.getByText(
          'Could not check whether you may release this failover: No answer from the backend within 1m',
        ),
      ).toBeInTheDocument();
      expect(releaseButton()).toBeDisabled();

      await user.click(
        screen.getByRole('button', {
          name: 'Retry checking the release permission',
        }),
      );
      await waitFor(() => expect(releaseButton()).toBeEnabled());
      expect(screen.queryByText(/Could not check/)).toBeNull();
    } finally {
      vi.useRealTimers();
    }
  });

  it('says the catalog did not answer when it cannot name the entities lacking the grant', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      const { allow } = releaseGrantedExcept(DB);
      const catalogApi = {
        getEntitiesByRefs: () => new Promise<never>(() => {}),
      } as unknown as CatalogApi;
      await renderWithApis(<RunDetails run={failover} />, {
        api: fakeRecoveryApi(),
        entity: null,
        allow,
        catalogApi,
      });
      await act(() => vi.advanceTimersByTimeAsync(60_000));
      expect(
        screen.getByText(
          /and you lack it on 1 entity: 1 entity the catalog could not name \(No answer from the backend within 1m\)$/,
        ),
      ).toBeInTheDocument();
      expect(releaseButton()).toBeDisabled();
    } finally {
      vi.useRealTimers();
    }
  });
});
