import type {
  BackstageCredentials,
  PermissionsService,
} from '@backstage/backend-plugin-api';
import { mockCredentials } from '@backstage/backend-test-utils';
import { NotFoundError } from '@backstage/errors';
import { AuthorizeResult } from '@backstage/plugin-permission-common';
import type {
  BootPlan,
  RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import { RecoveryAuthorizer } from '../service/RecoveryAuthorizer';
import { AuthorizedRunService } from './AuthorizedRunService';
import type { StartRunRequest } from './RunService';
import type { VisibleTo } from './visibleRuns';

/*
 * The grants and catalog views runs are started, read and released with, on fakes of the policy,
 * the catalog and RunService: the rules alone, each refusal's words and the policy's calls.
 * (router.test.ts and releaseFailover.test.ts hold the same rules through the plugin's API.)
 */

const WEB = 'component:default/web';
const DB = 'component:default/db';
const WEB_01 = 'resource:default/web-01';
const DB_01 = 'resource:default/db-01';
/** Hidden from users by the catalog. */
const VAULT = 'component:default/vault';
const VAULT_01 = 'resource:default/vault-01';

/** web on web-01, waiting for db on db-01; vault on vault-01. */
const PLAN = {
  entityRef: WEB,
  waves: [[DB_01, VAULT_01], [WEB_01]],
  machines: [
    { machineRef: DB_01, services: [DB] },
    { machineRef: VAULT_01, services: [VAULT] },
    { machineRef: WEB_01, services: [WEB] },
  ],
} as unknown as BootPlan;

const runOf = (
  id: string,
  entityRef: string,
  extra: Partial<RecoveryRun> = {},
): RecoveryRun =>
  ({
    id,
    entityRef,
    mode: 'failover',
    status: 'succeeded',
    hypervisorHost: 'dr-host',
    createdAt: '2026-01-01T00:00:00.000Z',
    plan: PLAN,
    machines: [],
    ...extra,
  }) as RecoveryRun;

const ALICE = mockCredentials.user('user:default/alice');
const SCHEDULER = mockCredentials.service('plugin:recovery');

/**
 * The policy allows `allowed` (`permission@ref`, or `permission@*` for any entity) to each user;
 * every call is recorded as the `permission@ref` it asked about.
 */
function policy(allowed: Record<string, string[]>) {
  const calls: string[][] = [];
  const permissions = {
    authorize: async (
      requests: Array<{ permission: { name: string }; resourceRef?: string }>,
      { credentials }: { credentials: BackstageCredentials },
    ) => {
      const asked = requests.map(r => `${r.permission.name}@${r.resourceRef}`);
      calls.push(asked);
      const who =
        (credentials.principal as { userEntityRef?: string; subject?: string })
          .userEntityRef ??
        (credentials.principal as { subject: string }).subject;
      const grants = allowed[who] ?? [];
      return requests.map((r, i) => ({
        result:
          grants.includes(asked[i]) || grants.includes(`${r.permission.name}@*`)
            ? AuthorizeResult.ALLOW
            : AuthorizeResult.DENY,
      }));
    },
  } as unknown as PermissionsService;
  return { permissions, calls };
}

/** The catalog holds `held`; users see all of it but VAULT and VAULT_01, the plugin all of it. */
function catalog(held: string[] = [WEB, DB, VAULT, WEB_01, DB_01, VAULT_01]) {
  const shownTo = (credentials: BackstageCredentials) => (ref: string) =>
    held.includes(ref) &&
    ((credentials.principal as { type: string }).type !== 'user' ||
      ![VAULT, VAULT_01].includes(ref));
  return {
    visibleTo: async (refs: string[], credentials: BackstageCredentials) =>
      refs.filter(shownTo(credentials)),
    heldRefs: async (refs: string[]) => refs.filter(ref => held.includes(ref)),
    requireVisible: async (ref: string, credentials: BackstageCredentials) => {
      if (!shownTo(credentials)(ref))
        throw new NotFoundError(`No entity ${ref}`);
      return ref;
    },
  };
}

/** RunService as far as the caller's grants reach it: what it was asked, and its stored runs. */
function runService(stored: RecoveryRun[] = []) {
  const started: StartRunRequest[] = [];
  const released: Array<[string, string | undefined]> = [];
  const cancelled: Array<[string, string]> = [];
  const listed: Array<{ query: unknown; limit: number; filtered: boolean }> =
    [];
  const runs = {
    start: async (request: StartRunRequest) => {
      // As RunService does: the plan's grants before anything else of the run.
      await request.authorizePlan?.(PLAN);
      started.push(request);
      return runOf('new-run', request.entityRef, {
        mode: request.mode,
        status: 'pending',
      });
    },
    getRun: async (id: string) => stored.find(run => run.id === id),
    listRuns: async (
      query: { entityRef?: string },
      limit: number,
      visible?: VisibleTo,
    ) => {
      listed.push({ query, limit, filtered: visible !== undefined });
      const shown = visible
        ? new Set(await visible(stored.map(r => r.entityRef)))
        : undefined;
      return stored
        .filter(
          r =>
            (!query.entityRef || r.entityRef === query.entityRef) &&
            (!shown || shown.has(r.entityRef)),
        )
        .slice(0, limit);
    },
    releaseFailover: async (id: string, releasedBy?: string) => {
      released.push([id, releasedBy]);
      return stored.find(run => run.id === id)!;
    },
    cancel: async (id: string, cancelledBy: string) => {
      cancelled.push([id, cancelledBy]);
      return stored.find(run => run.id === id)!;
    },
  };
  return { runs, started, released, cancelled, listed };
}

/** Each answer as PlanService.runSeenBy gives it to its reader: marked with who read it. */
const plans = {
  runSeenBy: async (run: RecoveryRun, credentials: BackstageCredentials) =>
    ({
      ...run,
      seenBy:
        (credentials.principal as { userEntityRef?: string; subject?: string })
          .userEntityRef ??
        (credentials.principal as { subject: string }).subject,
    }) as RecoveryRun,
};

function service(options: {
  allowed: Record<string, string[]>;
  stored?: RecoveryRun[];
  held?: string[];
}) {
  const { permissions, calls } = policy(options.allowed);
  const fake = runService(options.stored);
  const runs = new AuthorizedRunService(
    fake.runs,
    new RecoveryAuthorizer(permissions),
    catalog(options.held),
    plans,
  );
  return { ...fake, runs, calls };
}

const WHY =
  "A failover boots live copies of them on production's subnets and keeps them: it needs that permission on each machine and " +
  `service it boots, not only on ${WEB}. A test recovery (an isolated lab) needs recovery.run.create on ${WEB} alone`;

describe('AuthorizedRunService.start', () => {
  it('starts a test recovery on recovery.run.create on its entity alone, as the user who asked, and answers it as that user sees it', async () => {
    const { runs, calls, started } = service({
      allowed: { 'user:default/alice': [`recovery.run.create@${WEB}`] },
    });
    const run = await runs.start(ALICE, {
      entityRef: WEB,
      mode: 'test',
      options: {},
      acceptMissingDependencies: false,
    });
    expect(calls).toEqual([[`recovery.run.create@${WEB}`]]);
    expect(started).toHaveLength(1);
    expect(started[0]).toMatchObject({
      entityRef: WEB,
      mode: 'test',
      trigger: 'user',
      createdBy: 'user:default/alice',
      credentials: ALICE,
      authorizePlan: undefined,
    });
    expect(run).toMatchObject({ id: 'new-run', seenBy: 'user:default/alice' });
  });

  it('refuses a test recovery without recovery.run.create on its entity, and starts nothing', async () => {
    const { runs, started } = service({
      allowed: { 'user:default/alice': [`recovery.run.failover@*`] },
    });
    await expect(
      runs.start(ALICE, { entityRef: WEB, mode: 'test' }),
    ).rejects.toMatchObject({
      name: 'NotAllowedError',
      message: `Missing permission recovery.run.create on ${WEB}`,
    });
    expect(started).toEqual([]);
  });

  it("records the plugin's own nightly check as the schedule's trigger", async () => {
    const { runs, started } = service({
      allowed: { 'plugin:recovery': ['recovery.run.create@*'] },
    });
    await runs.start(SCHEDULER, { entityRef: WEB, mode: 'test' });
    expect(started[0]).toMatchObject({
      trigger: 'schedule',
      createdBy: 'plugin:recovery',
    });
  });

  it('asks for both permissions on the entity, then, in one call, recovery.run.failover on every other machine and service its plan boots', async () => {
    const { runs, calls, started } = service({
      allowed: {
        'user:default/alice': [
          'recovery.run.create@*',
          'recovery.run.failover@*',
        ],
      },
    });
    await runs.start(ALICE, { entityRef: WEB, mode: 'failover' });
    expect(calls).toEqual([
      [`recovery.run.create@${WEB}`, `recovery.run.failover@${WEB}`],
      [DB_01, DB, VAULT_01, VAULT, WEB_01].map(
        ref => `recovery.run.failover@${ref}`,
      ),
    ]);
    expect(started).toHaveLength(1);
  });

  it('names, of a failover, only what the entity itself lacks, before looking at its plan', async () => {
    const { runs, calls, started } = service({
      allowed: { 'user:default/alice': [`recovery.run.failover@${DB_01}`] },
    });
    await expect(
      runs.start(ALICE, { entityRef: WEB, mode: 'failover' }),
    ).rejects.toMatchObject({
      name: 'NotAllowedError',
      message: `Missing permission recovery.run.create and recovery.run.failover on ${WEB}`,
    });
    expect(calls).toHaveLength(1);
    expect(started).toEqual([]);
  });

  it('refuses a failover whose plan boots what the caller may not fail over, naming what the catalog shows them and counting the rest', async () => {
    const { runs, started } = service({
      allowed: {
        'user:default/alice': [
          'recovery.run.create@*',
          `recovery.run.failover@${WEB}`,
          `recovery.run.failover@${WEB_01}`,
        ],
      },
    });
    await expect(
      runs.start(ALICE, { entityRef: WEB, mode: 'failover' }),
    ).rejects.toMatchObject({
      name: 'NotAllowedError',
      message: `Missing permission recovery.run.failover on 4 entities of the boot plan of ${WEB}: ${DB_01}, ${DB}, 2 entities the catalog does not show you. ${WHY}`,
    });
    expect(started).toEqual([]);
  });
});

describe('AuthorizedRunService.get and list', () => {
  const stored = [
    runOf('web-run', WEB),
    runOf('vault-run', VAULT, { createdAt: '2026-01-02T00:00:00.000Z' }),
  ];

  it('answers a run the caller may see as they see it; one of an entity hidden from them as one that does not exist', async () => {
    const { runs } = service({ allowed: {}, stored });
    expect(await runs.get('web-run', ALICE)).toMatchObject({
      id: 'web-run',
      seenBy: 'user:default/alice',
    });
    await expect(runs.get('vault-run', ALICE)).rejects.toMatchObject({
      name: 'NotFoundError',
      message: 'Run vault-run not found',
    });
    await expect(runs.get('nope', ALICE)).rejects.toMatchObject({
      name: 'NotFoundError',
      message: 'Run nope not found',
    });
    expect(await runs.get('vault-run', SCHEDULER)).toMatchObject({
      id: 'vault-run',
    });
  });

  it("lists runs of any entity filtered by what the caller may see; one entity's, once the catalog shows it them, unfiltered", async () => {
    const { runs, listed } = service({ allowed: {}, stored });
    expect(
      (await runs.list({ limit: 20 }, ALICE)).items.map(r => r.id),
    ).toEqual(['web-run']);
    expect(
      (
        await runs.list({ entityRef: WEB, limit: 5, active: true }, ALICE)
      ).items.map(r => r.id),
    ).toEqual(['web-run']);
    // One more than asked: whether a next page holds any.
    expect(listed).toEqual([
      {
        query: { status: undefined, after: undefined },
        limit: 21,
        filtered: true,
      },
      {
        query: {
          entityRef: WEB,
          status: ['pending', 'running'],
          after: undefined,
        },
        limit: 6,
        filtered: false,
      },
    ]);
    await expect(
      runs.list({ entityRef: VAULT, limit: 20 }, ALICE),
    ).rejects.toBeInstanceOf(NotFoundError);
  });

  it('pages after the position given, and names the last run of a page only where a next one holds any', async () => {
    const { runs, listed } = service({ allowed: {}, stored });
    const after = { createdAt: '2026-01-03T00:00:00.000Z', id: 'later' };
    expect(await runs.list({ limit: 1, after }, SCHEDULER)).toMatchObject({
      items: [{ id: 'web-run' }],
      next: { id: 'web-run' },
    });
    expect(listed[0].query).toMatchObject({ after });
    // The page holds every run left: none follows it.
    const last = await runs.list({ limit: 2 }, SCHEDULER);
    expect(last.items.map(r => r.id)).toEqual(['web-run', 'vault-run']);
    expect(last.next).toBeUndefined();
    // What the caller may not see neither fills a page nor makes a next one.
    expect(await runs.list({ limit: 1 }, ALICE)).toEqual({
      items: [expect.objectContaining({ id: 'web-run' })],
    });
  });
});

describe('AuthorizedRunService.release', () => {
  const failover = runOf('fo', WEB);

  it('releases as the caller, with recovery.run.release on its entity and on each entity it booted, asked in one call', async () => {
    const { runs, calls, released } = service({
      allowed: { 'user:default/alice': ['recovery.run.release@*'] },
      stored: [failover],
    });
    expect(await runs.release('fo', ALICE)).toMatchObject({
      id: 'fo',
      seenBy: 'user:default/alice',
    });
    expect(released).toEqual([['fo', 'user:default/alice']]);
    expect(calls).toEqual([
      [WEB, DB_01, DB, VAULT_01, VAULT, WEB_01].map(
        ref => `recovery.run.release@${ref}`,
      ),
    ]);
  });

  it('releases on recovery.run.release alone: recovery.run.failover, which starts one, neither grants it nor is asked', async () => {
    const releaser = service({
      allowed: { 'user:default/alice': ['recovery.run.release@*'] },
      stored: [failover],
    });
    await releaser.runs.release('fo', ALICE);
    expect(releaser.released).toEqual([['fo', 'user:default/alice']]);
    expect(releaser.calls.flat().map(c => c.split('@')[0])).not.toContain(
      'recovery.run.failover',
    );

    const starter = service({
      allowed: { 'user:default/alice': ['recovery.run.failover@*'] },
      stored: [failover],
    });
    await expect(starter.runs.release('fo', ALICE)).rejects.toMatchObject({
      name: 'NotAllowedError',
      message: `Missing permission recovery.run.release on ${WEB}`,
    });
    expect(starter.released).toEqual([]);
  });

  it('refuses without recovery.run.release on a machine it booted, naming it, and releases nothing', async () => {
    const grants = [WEB, DB, VAULT_01, VAULT, WEB_01].map(
      ref => `recovery.run.release@${ref}`,
    );
    const { runs, released } = service({
      allowed: { 'user:default/alice': grants },
      stored: [failover],
    });
    await expect(runs.release('fo', ALICE)).rejects.toMatchObject({
      name: 'NotAllowedError',
      message:
        `Missing permission recovery.run.release on 1 entity that failover fo booted: ${DB_01}. ` +
        'Releasing it removes their live copies from production: it needs that permission on each of them still in the catalog',
    });
    expect(released).toEqual([]);
  });

  it('answers 404 for a run that does not exist, or whose entity the catalog hides from the caller', async () => {
    const { runs, released } = service({
      allowed: { 'user:default/alice': ['recovery.run.release@*'] },
      stored: [runOf('hidden', VAULT)],
    });
    await expect(runs.release('nope', ALICE)).rejects.toMatchObject({
      name: 'NotFoundError',
      message: 'Run nope not found',
    });
    await expect(runs.release('hidden', ALICE)).rejects.toMatchObject({
      name: 'NotFoundError',
      message: 'Run hidden not found',
    });
    expect(released).toEqual([]);
  });

  it('lets the machines and services still in the catalog decide once its entity has left it, shown to whoever sees one of them', async () => {
    // web and web-01 are gone: db, db-01, and the vault the user does not see, remain.
    const held = [DB, DB_01, VAULT, VAULT_01];
    const allowed = { 'user:default/alice': ['recovery.run.release@*'] };
    const { runs, calls, released } = service({
      allowed,
      stored: [failover],
      held,
    });
    await runs.release('fo', ALICE);
    expect(calls).toEqual([
      [DB_01, DB, VAULT_01, VAULT].map(ref => `recovery.run.release@${ref}`),
    ]);
    expect(released).toEqual([['fo', 'user:default/alice']]);

    // Of what remains, the user sees only the vault's, which the catalog hides: as absent to them.
    const hiddenOnly = service({
      allowed,
      stored: [failover],
      held: [VAULT, VAULT_01],
    });
    await expect(hiddenOnly.runs.release('fo', ALICE)).rejects.toMatchObject({
      name: 'NotFoundError',
    });
    expect(hiddenOnly.calls).toEqual([]);
  });

  it('refuses, naming the label to remove by hand, a failover none of whose entities the catalog holds any more', async () => {
    const { runs, calls, released } = service({
      allowed: { 'user:default/alice': ['recovery.run.release@*'] },
      stored: [failover],
      held: [],
    });
    await expect(runs.release('fo', ALICE)).rejects.toMatchObject({
      name: 'NotAllowedError',
      message:
        'Run fo cannot be released through the API: neither its entity nor any machine or service it booted is in the catalog any ' +
        "more, so no one's recovery.run.release can be checked on them. Remove what it kept on hypervisor host 'dr-host' by hand: " +
        'everything labelled recovery.backstage-recovery.io/run-id=fo',
    });
    expect(calls).toEqual([]);
    expect(released).toEqual([]);
  });
});

describe('AuthorizedRunService.cancel', () => {
  const running = runOf('run-1', WEB, { mode: 'test', status: 'running' });
  const hidden = runOf('run-2', VAULT, { mode: 'test', status: 'running' });

  it("cancels as the caller with recovery.run.create on the run's entity, what starting it takes", async () => {
    const { runs, calls, cancelled } = service({
      allowed: { 'user:default/alice': [`recovery.run.create@${WEB}`] },
      stored: [running],
    });
    await runs.cancel('run-1', ALICE);
    expect(cancelled).toEqual([['run-1', 'user:default/alice']]);
    expect(calls).toEqual([[`recovery.run.create@${WEB}`]]);
  });

  it('refuses a caller without recovery.run.create on its entity, naming it, and cancels nothing', async () => {
    const { runs, cancelled } = service({
      allowed: { 'user:default/alice': [`recovery.run.create@${DB}`] },
      stored: [running],
    });
    await expect(runs.cancel('run-1', ALICE)).rejects.toThrow(
      `Missing permission recovery.run.create on ${WEB}`,
    );
    expect(cancelled).toEqual([]);
  });

  it('answers a run the caller may not see, or none, as absent (404), before asking the policy', async () => {
    const { runs, calls, cancelled } = service({
      allowed: { 'user:default/alice': ['recovery.run.create@*'] },
      stored: [hidden],
    });
    await expect(runs.cancel('run-2', ALICE)).rejects.toThrow(
      'Run run-2 not found',
    );
    await expect(runs.cancel('nope', ALICE)).rejects.toThrow(
      'Run nope not found',
    );
    expect(calls).toEqual([]);
    expect(cancelled).toEqual([]);
  });
});
