import { mockServices, TestDatabases } from '@backstage/backend-test-utils';
import type { ReadinessStatus, ReadinessSummary } from '@backstage-recovery/plugin-recovery-common';
import type { Entity } from '@backstage/catalog-model';
import type { CatalogService } from '@backstage/plugin-catalog-node';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import type { NotificationSendOptions } from '@backstage/plugin-notifications-node';
import { ReadinessNoticeStore } from '../database/ReadinessNoticeStore';
import { RecoveryStore } from '../database/RecoveryStore';
import { departureNotice, noticeRecipients, readinessNotice, ReadinessNotifier, recoveryTabLink, usersReached } from './ReadinessNotifier';

const WEB = 'component:default/web';
const TEAM_A = 'group:default/team-a';
const ALICE = 'user:default/alice';

/** A group of the catalog, with the relations the catalog adds: its member users and its child groups. */
function group(ref: string, members: string[], children: string[] = []): Entity {
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
const T0 = '2026-12-01T00:00:00.000Z';
const T1 = '2026-12-02T00:00:00.000Z';

describe('readinessNotice', () => {
  const now = (status: ReadinessStatus, reasons: string[] = []) => ({ entityRef: WEB, status, reasons });

  it('tells the owners of an entity that becomes not recoverable, also when first seen so, with its reasons and page', () => {
    for (const before of [undefined, { entityRef: WEB, status: 'ready' as const, since: T0 }]) {
      const { notice, payload } = readinessNotice(before, now('not-recoverable', ['resource:default/web-01 has never been captured']), T1);
      expect(notice).toEqual({ entityRef: WEB, status: 'not-recoverable', since: T1 });
      expect(payload).toEqual({
        title: `${WEB} is not recoverable`,
        description: 'resource:default/web-01 has never been captured',
        severity: 'high',
        link: '/catalog/default/component/web/recovery',
        topic: 'recovery readiness',
        scope: `recovery-readiness:${WEB}`,
        metadata: { entityRef: WEB, status: 'not-recoverable' },
      });
    }
  });

  it('tells nothing more while it stays not recoverable, whatever its reasons become, and keeps since when', () => {
    const before = { entityRef: WEB, status: 'not-recoverable' as const, since: T0 };
    const { notice, payload } = readinessNotice(before, now('not-recoverable', ['Last test recovery failed: boom']), T1);
    expect(payload).toBeUndefined();
    expect(notice).toBe(before);
  });

  it('tells, in the same scope and at low severity, that it is recoverable again, how long it was not, and what is left', () => {
    const before = { entityRef: WEB, status: 'not-recoverable' as const, since: T0 };
    const { notice, payload } = readinessNotice(before, now('at-risk', ['Last capture of resource:default/web-01 is 2d old, over the RPO of 1d']), T1);
    expect(notice).toEqual({ entityRef: WEB, status: 'at-risk', since: T1 });
    expect(payload).toMatchObject({
      title: `${WEB} is recoverable again (at risk)`,
      description: `Not recoverable for 24 h, from ${T0} to ${T1}; now at risk: Last capture of resource:default/web-01 is 2d old, over the RPO of 1d`,
      severity: 'low',
      scope: `recovery-readiness:${WEB}`,
    });
    expect(readinessNotice(before, now('ready'), T1).payload).toMatchObject({
      title: `${WEB} is recoverable again (ready)`,
      description: `Not recoverable for 24 h, from ${T0} to ${T1}`,
    });
  });

  it('keeps any other change without a notice: the overview and the page show it', () => {
    const before = { entityRef: WEB, status: 'ready' as const, since: T0 };
    const { notice, payload } = readinessNotice(before, now('at-risk', ['old capture']), T1);
    expect(payload).toBeUndefined();
    expect(notice).toEqual({ entityRef: WEB, status: 'at-risk', since: T1 });
    expect(readinessNotice(undefined, now('unknown', ['Never test-recovered']), T1).payload).toBeUndefined();
  });

  it('quotes three reasons and counts the rest', () => {
    const { payload } = readinessNotice(undefined, now('not-recoverable', ['a', 'b', 'c', 'd', 'e']), T1);
    expect(payload?.description).toBe('a; b; c; and 2 more');
  });

  it('closes, in the same scope, the notice of an entity no longer assessed that was not recoverable; of no other', () => {
    const before = { entityRef: WEB, status: 'not-recoverable' as const, since: T0, owners: ['group:default/team-a'] };
    expect(departureNotice(before, T1)).toEqual({
      title: `${WEB} is no longer assessed for recovery`,
      description: `It left the catalog, or runs on no machine now; it had been not recoverable for 24 h, from ${T0} to ${T1}`,
      severity: 'low',
      topic: 'recovery readiness',
      scope: `recovery-readiness:${WEB}`,
      metadata: { entityRef: WEB, status: 'not-assessed' },
    });
    for (const status of ['ready', 'at-risk', 'unknown'] as const) {
      expect(departureNotice({ entityRef: WEB, status, since: T0 }, T1)).toBeUndefined();
    }
  });

  it('sends a closing notice also to the users the loss reached, each once, the entity first', () => {
    const told = {
      entityRef: WEB,
      status: 'not-recoverable' as const,
      since: T0,
      owners: [TEAM_A, 'user:default/jane'],
      // jane owns it herself; the catalog writes refs in any case.
      users: [ALICE, 'user:default/jane', 'User:default/Bob'],
    };
    expect(noticeRecipients(WEB, told)).toEqual({
      type: 'entity',
      entityRef: [WEB, TEAM_A, 'user:default/jane', ALICE, 'User:default/Bob'],
    });
    expect(noticeRecipients(WEB, { ...told, owners: ['USER:default/alice', WEB], users: ['user:default/alice'] })).toEqual({
      type: 'entity',
      entityRef: [WEB, 'USER:default/alice'],
    });
    // A loss that reached no one (its owner then not in the catalog) adds nobody.
    expect(noticeRecipients(WEB, { ...told, owners: [TEAM_A], users: [] })).toEqual({ type: 'entity', entityRef: [WEB, TEAM_A] });
    // Told nothing: the entity alone.
    expect(noticeRecipients(WEB, { ...told, status: 'ready' })).toEqual({ type: 'entity', entityRef: WEB });
  });

  it("finds the users a notice to owners reaches as the notifications plugin does: a user itself, a group's members and its sub-groups', however deep", () => {
    const groups = new Map(
      [
        group(TEAM_A, [ALICE, 'user:default/bob'], ['group:default/team-a-ops']),
        group('group:default/team-a-ops', ['user:default/carol', ALICE], ['group:default/on-call']),
        // A cycle, and a member that is no user: neither loops nor counts.
        group('group:default/on-call', ['user:default/dave', 'group:default/team-b'], [TEAM_A]),
        group('group:default/team-b', ['user:default/erin']),
      ].map(g => [`group:default/${g.metadata.name}`, g]),
    );
    expect(usersReached([TEAM_A], groups)).toEqual([ALICE, 'user:default/bob', 'user:default/carol', 'user:default/dave']);
    // A user who owns is reached whether or not the catalog holds them; refs in any case.
    expect(usersReached(['user:default/jane', 'Group:Default/Team-B'], groups)).toEqual(['user:default/erin', 'user:default/jane']);
    // A group the catalog no longer holds reaches no one.
    expect(usersReached(['group:default/gone'], groups)).toEqual([]);
    expect(usersReached([], groups)).toEqual([]);
  });

  it('sends to the entity, and to whoever was told it is not recoverable', () => {
    expect(noticeRecipients(WEB)).toEqual({ type: 'entity', entityRef: WEB });
    expect(noticeRecipients(WEB, { entityRef: WEB, status: 'not-recoverable', since: T0, owners: ['group:default/team-a'] })).toEqual({
      type: 'entity',
      entityRef: [WEB, 'group:default/team-a'],
    });
    // Records from before owners were kept, and notices that told nothing.
    expect(noticeRecipients(WEB, { entityRef: WEB, status: 'not-recoverable', since: T0 })).toEqual({ type: 'entity', entityRef: WEB });
    expect(noticeRecipients(WEB, { entityRef: WEB, status: 'ready', since: T0, owners: ['group:default/x'] })).toEqual({ type: 'entity', entityRef: WEB });
  });

  it("links to the entity's Recovery tab as the portal routes it", () => {
    expect(recoveryTabLink('System:Team-B/Shop Floor')).toBe('/catalog/Team-B/system/Shop%20Floor/recovery');
  });
});

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

describe.each(databases.eachSupportedId())('ReadinessNotifier on %s', databaseId => {
  /** A notifier over a real store, with readiness and the notifications service played by the test. */
  async function notifier() {
    const knex = await databases.init(databaseId);
    await RecoveryStore.migrate(knex);
    const notices = new ReadinessNoticeStore(knex);
    const state = {
      entities: [] as string[],
      statuses: new Map<string, ReadinessStatus>(),
      owners: new Map<string, string[]>([[WEB, [TEAM_A]]]),
      /** The catalog's groups; team-a's member is alice. */
      groups: [group(TEAM_A, [ALICE])] as Entity[],
      /** Requests for the catalog's entities (the groups). */
      reads: 0,
      sent: [] as NotificationSendOptions[],
      /** Entities whose notice the notifications service refuses. */
      refuse: new Set<string>(),
      /** Owners the catalog no longer holds. */
      gone: new Set<string>(),
      /** Awaited before each send: one that never ends plays a backend stopped mid-sweep. */
      hold: undefined as undefined | (() => Promise<void>),
    };
    const readiness = {
      readinessOf: async (refs: string[], _credentials: unknown, options?: { ownRunsOnly?: boolean }) => {
        // Owners are told of no other entity's run but as readiness withholds it.
        if (!options?.ownRunsOnly) throw new Error('readiness assessed for owners with the runs of entities they may not see');
        return refs.map(entityRef => ({ entityRef, status: state.statuses.get(entityRef)!, reasons: ['why'] }) as ReadinessSummary);
      },
    };
    const notifications = {
      send: async (options: NotificationSendOptions) => {
        const refs = options.recipients.type === 'entity' ? [options.recipients.entityRef].flat() : [];
        if (refs.some(ref => state.refuse.has(ref))) throw new Error('Request failed with 404 Not Found');
        await state.hold?.();
        state.sent.push(options);
      },
    };
    const logger = mockServices.logger.mock();
    const catalog = {
      recoverableEntities: async () => state.entities,
      ownersOf: async (refs: string[]) => new Map(refs.map(ref => [ref, state.owners.get(ref) ?? []])),
    };
    /** The catalog's groups, less those it no longer holds, as the catalog answers queries of them. */
    const directory: Pick<CatalogService, 'getEntitiesByRefs'> = {
      getEntitiesByRefs: async (request, options) => {
        state.reads += 1;
        const entities = state.groups.filter(g => !state.gone.has(`group:${g.metadata.namespace}/${g.metadata.name}`));
        return catalogServiceMock({ entities }).getEntitiesByRefs(request, options);
      },
    };
    const sweeper = new ReadinessNotifier(notices, readiness, catalog, directory, notifications, mockServices.auth(), logger);
    return { sweeper, notices, state, logger, knex };
  }

  it('notifies each change once across sweeps, to the entity, which the notifications plugin resolves to its owners', async () => {
    const { sweeper, notices, state } = await notifier();
    state.entities = [WEB, 'system:default/shop'];
    state.statuses.set(WEB, 'not-recoverable').set('system:default/shop', 'ready');
    expect(await sweeper.sweep()).toEqual({ entities: 2, sent: 1, failed: 0 });
    expect(state.sent.map(s => [s.recipients, s.payload.title])).toEqual([
      [{ type: 'entity', entityRef: WEB }, `${WEB} is not recoverable`],
    ]);
    expect(await sweeper.sweep()).toEqual({ entities: 2, sent: 0, failed: 0 });

    state.statuses.set(WEB, 'ready').set('system:default/shop', 'not-recoverable');
    expect(await sweeper.sweep()).toEqual({ entities: 2, sent: 2, failed: 0 });
    expect(state.sent.slice(1).map(s => [s.recipients, s.payload.title]).sort()).toEqual([
      // Also to whom it was told, should the entity have changed owners since.
      [{ type: 'entity', entityRef: [WEB, TEAM_A, ALICE] }, `${WEB} is recoverable again (ready)`],
      [{ type: 'entity', entityRef: 'system:default/shop' }, 'system:default/shop is not recoverable'],
    ]);
    expect([...(await notices.all()).values()].map(n => [n.entityRef, n.status, n.owners, n.users]).sort()).toEqual([
      [WEB, 'ready', undefined, undefined],
      ['system:default/shop', 'not-recoverable', [], []],
    ]);
  });

  it('sends a notice it could not send at the next sweep, and says why in one warning', async () => {
    const { sweeper, state, logger } = await notifier();
    state.entities = [WEB];
    state.statuses.set(WEB, 'not-recoverable');
    state.refuse.add(WEB);
    expect(await sweeper.sweep()).toEqual({ entities: 1, sent: 0, failed: 1 });
    expect(logger.warn).toHaveBeenCalledWith(expect.stringContaining(`1 entities, retried at the next sweep`));
    expect(logger.warn).toHaveBeenCalledWith(expect.stringContaining(`${WEB}: Request failed with 404 Not Found`));
    state.refuse.clear();
    expect(await sweeper.sweep()).toEqual({ entities: 1, sent: 1, failed: 0 });
    expect(await sweeper.sweep()).toEqual({ entities: 1, sent: 0, failed: 0 });
  });

  it('records each notice as it is sent: a sweep stopped halfway (a backend restarted) sends none of them twice', async () => {
    const { sweeper, state } = await notifier();
    const SHOP = 'system:default/shop';
    state.entities = [WEB, SHOP];
    state.statuses.set(WEB, 'not-recoverable').set(SHOP, 'not-recoverable');
    // The second send never ends: the backend stops there, before the sweep's end.
    let stopped!: () => void;
    const stoppedAt = new Promise<void>(ok => (stopped = ok));
    state.hold = () => {
      if (state.sent.length === 0) return Promise.resolve();
      stopped();
      return new Promise<void>(() => {});
    };
    void sweeper.sweep();
    await stoppedAt;
    const [first] = state.sent.map(s => s.recipients.type === 'entity' && s.recipients.entityRef);
    state.hold = undefined;
    // The next sweep, by this replica or another, sends only the notice not sent.
    expect(await sweeper.sweep()).toMatchObject({ sent: 1 });
    expect(state.sent.map(s => s.recipients.type === 'entity' && s.recipients.entityRef)).toEqual([first, first === WEB ? SHOP : WEB]);
  });

  it("sends no more once the scheduler aborts the sweep at its timeout, when another replica may start one", async () => {
    const { sweeper, state } = await notifier();
    const SHOP = 'system:default/shop';
    state.entities = [WEB, SHOP];
    state.statuses.set(WEB, 'not-recoverable').set(SHOP, 'not-recoverable');
    const timeout = new AbortController();
    state.hold = async () => timeout.abort();
    await expect(sweeper.sweep(timeout.signal)).rejects.toMatchObject({ name: 'AbortError' });
    expect(state.sent).toHaveLength(1);
    state.hold = undefined;
    expect(await sweeper.sweep()).toMatchObject({ sent: 1 });
    expect(new Set(state.sent.map(s => s.recipients.type === 'entity' && s.recipients.entityRef))).toEqual(new Set([WEB, SHOP]));
  });

  it('forgets each entity no longer assessed as its closing notice is sent: a sweep stopped halfway sends none of them twice', async () => {
    const { sweeper, notices, state } = await notifier();
    const SHOP = 'system:default/shop';
    state.entities = [WEB, SHOP];
    state.statuses.set(WEB, 'not-recoverable').set(SHOP, 'not-recoverable');
    await sweeper.sweep();
    // Both leave the catalog: missing from two sweeps, their alarms are closed at the second.
    state.entities = [];
    await sweeper.sweep();
    const told = state.sent.length;
    // The scheduler stops the sweep (its timeout, a backend shutting down) once one is closed.
    const timeout = new AbortController();
    state.hold = async () => timeout.abort();
    await expect(sweeper.sweep(timeout.signal)).rejects.toMatchObject({ name: 'AbortError' });
    expect(state.sent.slice(told)).toHaveLength(1);
    state.hold = undefined;
    // The next sweep, by this replica or another, closes only the other one.
    expect(await sweeper.sweep()).toMatchObject({ sent: 1 });
    expect(state.sent.slice(told).map(s => s.payload.title).sort()).toEqual([
      `${WEB} is no longer assessed for recovery`,
      `${SHOP} is no longer assessed for recovery`,
    ]);
    expect((await notices.all()).size).toBe(0);
  });

  it('closes the notice of an entity no longer assessed, to those told, retried until sent, then forgets it: back, it is told of as new', async () => {
    const { sweeper, notices, state } = await notifier();
    const SHOP = 'system:default/shop';
    state.entities = [WEB, SHOP];
    state.statuses.set(WEB, 'not-recoverable').set(SHOP, 'ready');
    await sweeper.sweep();
    expect((await notices.all()).get(WEB)).toMatchObject({ owners: [TEAM_A], users: [ALICE] });

    // Deleted from the catalog: the entity no longer resolves to its owners, the recorded ones do.
    // Missing from one sweep's list, it is closed at the next.
    state.entities = [];
    expect(await sweeper.sweep()).toEqual({ entities: 0, sent: 0, failed: 0 });
    state.refuse.add('group:default/team-a');
    expect(await sweeper.sweep()).toEqual({ entities: 0, sent: 0, failed: 1 });
    // Refused: kept, to be sent at the next sweep. Shop, never told of, is forgotten quietly.
    expect([...(await notices.all()).keys()]).toEqual([WEB]);
    state.refuse.clear();
    expect(await sweeper.sweep()).toEqual({ entities: 0, sent: 1, failed: 0 });
    expect(state.sent.at(-1)).toMatchObject({
      recipients: { type: 'entity', entityRef: [WEB, TEAM_A, ALICE] },
      payload: { title: `${WEB} is no longer assessed for recovery`, scope: `recovery-readiness:${WEB}`, severity: 'low' },
    });
    expect((await notices.all()).size).toBe(0);
    expect(await sweeper.sweep()).toEqual({ entities: 0, sent: 0, failed: 0 });

    state.entities = [WEB];
    expect((await sweeper.sweep()).sent).toBe(1);
    expect(state.sent.at(-1)?.payload.title).toBe(`${WEB} is not recoverable`);
  });

  it('closes an alarm only when its entity is missing at two sweeps in a row: a list read mid-rebuild closes nothing', async () => {
    const { sweeper, notices, state } = await notifier();
    state.entities = [WEB];
    state.statuses.set(WEB, 'not-recoverable');
    await sweeper.sweep();
    const lost = (await notices.all()).get(WEB)!;

    state.entities = [];
    expect(await sweeper.sweep()).toEqual({ entities: 0, sent: 0, failed: 0 });
    const missing = (await notices.all()).get(WEB)!;
    expect(missing).toEqual({ ...lost, absentSince: expect.any(String) });

    // Back in the list: nothing told, the alarm stands as before.
    state.entities = [WEB];
    expect(await sweeper.sweep()).toEqual({ entities: 1, sent: 0, failed: 0 });
    expect((await notices.all()).get(WEB)).toEqual(lost);
    state.entities = [];
    await sweeper.sweep();
    const firstMissing = (await notices.all()).get(WEB)!.absentSince!;
    await new Promise(resolve => setTimeout(resolve, 5));
    expect(await sweeper.sweep()).toMatchObject({ sent: 1 });
    // The closing notice dates the departure from when the entity was first found missing.
    expect(state.sent.at(-1)!.payload.description).toMatch(new RegExp(`from ${lost.since} to ${firstMissing}$`));
    expect(state.sent).toHaveLength(2);
  });

  it('keeps the owners of an entity told it is not recoverable before owners were kept, so its closing notice reaches them', async () => {
    const { sweeper, notices, state } = await notifier();
    // Told by a version without the owners column: the row has none.
    await notices.save([{ entityRef: WEB, status: 'not-recoverable', since: T0 }]);
    state.entities = [WEB];
    state.statuses.set(WEB, 'not-recoverable');
    expect(await sweeper.sweep()).toEqual({ entities: 1, sent: 0, failed: 0 });
    // Whom it reached then is not known: no users are kept for it, and the groups are not read.
    expect((await notices.all()).get(WEB)).toEqual({ entityRef: WEB, status: 'not-recoverable', since: T0, owners: [TEAM_A] });
    expect(state.reads).toBe(0);

    // Deleted from the catalog: only the kept owners still resolve.
    state.entities = [];
    await sweeper.sweep();
    expect(await sweeper.sweep()).toEqual({ entities: 0, sent: 1, failed: 0 });
    expect(state.sent.at(-1)?.recipients).toEqual({ type: 'entity', entityRef: [WEB, TEAM_A] });
  });

  it('closes an alarm also to the users it reached once their group has left the catalog, when the entity is back or gone', async () => {
    const { sweeper, notices, state } = await notifier();
    const SHOP = 'system:default/shop';
    // web's team-a has alice and, through its sub-team, carol; shop is owned by jane herself and by team-a.
    state.groups = [group(TEAM_A, [ALICE], ['group:default/team-a-ops']), group('group:default/team-a-ops', ['user:default/carol'])];
    state.owners.set(SHOP, ['user:default/jane', TEAM_A]);
    state.entities = [WEB, SHOP];
    state.statuses.set(WEB, 'not-recoverable').set(SHOP, 'not-recoverable');
    expect(await sweeper.sweep()).toEqual({ entities: 2, sent: 2, failed: 0 });
    // team-a, then its sub-team: a request a level, for both losses.
    expect(state.reads).toBe(2);
    expect((await notices.all()).get(WEB)).toMatchObject({ owners: [TEAM_A], users: [ALICE, 'user:default/carol'] });
    expect((await notices.all()).get(SHOP)).toMatchObject({ users: [ALICE, 'user:default/carol', 'user:default/jane'] });

    // The teams are removed from the catalog: the notifications plugin resolves them to no one.
    state.gone.add(TEAM_A).add('group:default/team-a-ops');
    state.statuses.set(WEB, 'ready');
    state.entities = [WEB];
    // web is told at once; shop, missing from the catalog's list, at the second sweep.
    expect(await sweeper.sweep()).toEqual({ entities: 1, sent: 1, failed: 0 });
    expect(await sweeper.sweep()).toEqual({ entities: 1, sent: 1, failed: 0 });
    expect(state.sent.slice(2).map(s => [s.payload.title, s.recipients])).toEqual([
      [`${WEB} is recoverable again (ready)`, { type: 'entity', entityRef: [WEB, TEAM_A, ALICE, 'user:default/carol'] }],
      // jane, owner and reached, once.
      [`${SHOP} is no longer assessed for recovery`, { type: 'entity', entityRef: [SHOP, 'user:default/jane', TEAM_A, ALICE, 'user:default/carol'] }],
    ]);
  });

  it("reads the owners' groups once for every loss of a sweep, and not at all, nor writes, in a sweep that tells nothing", async () => {
    const { sweeper, notices, state, knex } = await notifier();
    const teams = Array.from({ length: 10 }, (_, i) => `group:default/team-${i}`);
    state.groups = teams.map((team, i) => group(team, [`user:default/u${i}`]));
    state.entities = Array.from({ length: 1_000 }, (_, i) => `component:default/s${i}`);
    state.entities.forEach((ref, i) => {
      state.statuses.set(ref, 'not-recoverable');
      state.owners.set(ref, [teams[i % 10]]);
    });
    expect(await sweeper.sweep()).toEqual({ entities: 1_000, sent: 1_000, failed: 0 });
    expect(state.reads).toBe(1);
    expect((await notices.all()).get('component:default/s13')?.users).toEqual(['user:default/u3']);

    const statements: string[] = [];
    knex.on('query', (query: { sql: string }) => statements.push(query.sql));
    expect(await sweeper.sweep()).toEqual({ entities: 1_000, sent: 0, failed: 0 });
    expect(state.reads).toBe(1);
    // What was told, read in one statement; nothing written.
    expect(statements).toHaveLength(1);
  });

  it('warns that a loss reached no one when no owner of the entity is in the catalog (a group removed from it)', async () => {
    const { sweeper, state, logger } = await notifier();
    const SHOP = 'system:default/shop';
    const API = 'component:default/api';
    state.entities = [WEB, SHOP, API];
    state.statuses.set(WEB, 'not-recoverable').set(SHOP, 'not-recoverable').set(API, 'not-recoverable');
    const DOCS = 'component:default/docs';
    state.entities = [WEB, SHOP, API, DOCS];
    state.statuses.set(DOCS, 'not-recoverable');
    // web's team left the catalog; shop is owned by a user; api by no one; docs by a team without members.
    state.gone.add(TEAM_A);
    state.owners.set(SHOP, ['user:default/jane']);
    state.groups.push(group('group:default/empty', []));
    state.owners.set(DOCS, ['group:default/empty']);
    expect(await sweeper.sweep()).toEqual({ entities: 4, sent: 4, failed: 0 });
    expect(logger.warn).toHaveBeenCalledTimes(1);
    expect(logger.warn).toHaveBeenCalledWith(
      'Readiness notices: told no one that 3 entities are not recoverable, as no owner of theirs resolves to a user: ' +
        `${WEB} (owned by ${TEAM_A} not in the catalog); ${API} (owned by no one); ${DOCS} (owned by group:default/empty with no members); ` +
        'give them an owner the catalog holds, with members',
    );
    // Said when told, not at every sweep after.
    await sweeper.sweep();
    expect(logger.warn).toHaveBeenCalledTimes(1);
  });

  it('keeps what it was told of many entities (past the bound variables SQLite takes in one statement)', async () => {
    const { sweeper, notices, state } = await notifier();
    state.entities = Array.from({ length: 1_200 }, (_, i) => `component:default/s${i}`);
    state.entities.forEach((ref, i) => state.statuses.set(ref, i % 2 ? 'ready' : 'not-recoverable'));
    expect(await sweeper.sweep()).toEqual({ entities: 1_200, sent: 600, failed: 0 });
    expect((await notices.all()).size).toBe(1_200);
    state.entities = [];
    expect(await sweeper.sweep()).toEqual({ entities: 0, sent: 0, failed: 0 });
    expect(await sweeper.sweep()).toEqual({ entities: 0, sent: 600, failed: 0 });
    expect((await notices.all()).size).toBe(0);
  });
});
