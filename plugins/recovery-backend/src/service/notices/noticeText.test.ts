import type { ReadinessAlarm } from '../../database/ReadinessNoticeStore';
import {
  clipped,
  closingNotice,
  entityName,
  entityNames,
  lasted,
  lossNotice,
  noticeScope,
  quoted,
  recoveryTabLink,
  runPageLink,
  resolvedAlarm,
  utcTime,
} from './noticeText';

const WEB = 'component:default/web';
const DB = 'component:default/database';
const SHOP = 'system:default/shop';
const T0 = '2026-12-01T00:00:00.000Z';
const T1 = '2026-12-02T00:00:00.000Z';
const ALARM: ReadinessAlarm = {
  scope: 'recovery-readiness:a1',
  title: 'web is not recoverable',
  sentAt: T0,
};

describe('readiness notices', () => {
  it('write times as the plugin does, and name entities by name, with their kind but for a Component, and their namespace but the default', () => {
    expect(utcTime('2026-12-05T23:56:05.210Z')).toBe('2026-12-05 23:56:05 UTC');
    expect(entityName(WEB)).toBe('web');
    expect(entityName(SHOP)).toBe('system shop');
    expect(entityName('Component:team-b/api')).toBe('component team-b/api');
    expect(entityNames([WEB])).toBe('web');
    expect(entityNames([WEB, DB])).toBe('web and database');
    expect(entityNames([WEB, DB, SHOP])).toBe('web, database and system shop');
    expect(
      entityNames([
        WEB,
        DB,
        SHOP,
        'component:default/dns',
        'component:default/files',
      ]),
    ).toBe('web, database, system shop and 2 more');
    // One past the names shown is named: `and 1 more` would hide it in as many words.
    expect(entityNames([WEB, DB, SHOP, 'component:default/dns'])).toBe(
      'web, database, system shop and dns',
    );
  });

  it('name the entities of an alarm and of the notice that closes it in the same order, whatever order they were given in', () => {
    const cause = {
      runId: 'r-1',
      runEntityRef: WEB,
      mode: 'test' as const,
      at: T0,
      named: true,
      message: 'failed',
    };
    const lost = lossNotice(
      [DB, WEB, SHOP].map(entityRef => ({ entityRef, reasons: [], cause })),
      's',
    );
    expect(lost.title).toBe(
      "database, web and system shop are not recoverable: web's test recovery failed",
    );
    const before = (entityRef: string) => ({
      entityRef,
      status: 'not-recoverable' as const,
      since: T0,
      alarm: ALARM,
    });
    const closed = closingNotice(
      [SHOP, WEB, DB].map(ref => ({
        before: before(ref),
        now: { status: 'ready' as const, reasons: [] },
      })),
      T1,
      's',
    );
    expect(closed.title).toBe(
      'database, web and system shop are recoverable again',
    );
    expect(closed.metadata).toMatchObject({ entityRefs: [DB, WEB, SHOP] });
  });

  it('give each notice a scope of its own, made of what it is about', () => {
    expect(noticeScope('lost', WEB, T0)).toMatch(
      /^recovery-readiness:[0-9a-f]{32}$/,
    );
    expect(noticeScope('lost', WEB, T0)).toBe(noticeScope('lost', WEB, T0));
    expect(noticeScope('lost', WEB, T1)).not.toBe(noticeScope('lost', WEB, T0));
  });

  it('tell a loss by its reasons, one entity, or several with the same reasons in one notice', () => {
    expect(
      lossNotice(
        [
          {
            entityRef: WEB,
            reasons: ['resource:default/web-01 has never been captured'],
          },
        ],
        'recovery-readiness:s',
      ),
    ).toEqual({
      title: 'web is not recoverable',
      description: 'resource:default/web-01 has never been captured',
      severity: 'high',
      link: '/catalog/default/component/web/recovery',
      topic: 'recovery readiness',
      scope: 'recovery-readiness:s',
      metadata: { entityRefs: [WEB], status: 'not-recoverable' },
    });
    expect(
      lossNotice([{ entityRef: WEB, reasons: ['a', 'b', 'c', 'd', 'e'] }], 's')
        .description,
    ).toBe('a; b; c; and 2 more');
    expect(
      lossNotice(
        [
          { entityRef: WEB, reasons: ['a'] },
          { entityRef: SHOP, reasons: ['a'] },
        ],
        's',
      ),
    ).toMatchObject({
      title: 'web and system shop are not recoverable',
      description: 'For each of web and system shop: a',
    });
  });

  const RUN = {
    runId: 'r-1',
    runEntityRef: WEB,
    mode: 'test' as const,
    at: '2026-12-05T23:56:05.210Z',
  };

  it('tell a loss by a failed run: its cause, which run, when, and the entities it was the last test recovery of', () => {
    const own = lossNotice(
      [
        {
          entityRef: WEB,
          reasons: [],
          cause: {
            ...RUN,
            named: true,
            message: 'recovery engine unreachable',
          },
        },
      ],
      's',
    );
    expect(own).toMatchObject({
      title: 'web is not recoverable: its test recovery failed',
      description:
        'Its test recovery (run r-1) failed at 2026-12-05 23:56:05 UTC: recovery engine unreachable',
      // The run's page: its timeline says why it failed.
      link: '/recovery/runs/r-1',
      metadata: {
        entityRefs: [WEB],
        status: 'not-recoverable',
        runId: 'r-1',
        runEntityRef: WEB,
      },
    });
    const cause = {
      ...RUN,
      named: true,
      message: 'recovery engine unreachable',
    };
    const all = lossNotice(
      [
        { entityRef: WEB, reasons: [], cause },
        {
          entityRef: DB,
          reasons: ['resource:default/db-01 has never been captured'],
          cause,
        },
        { entityRef: SHOP, reasons: [], cause },
      ],
      's',
    );
    expect(all).toMatchObject({
      title:
        "database, web and system shop are not recoverable: web's test recovery failed",
      description:
        "web's test recovery (run r-1) failed at 2026-12-05 23:56:05 UTC: recovery engine unreachable; it was the last test recovery of " +
        'database, web and system shop, not recoverable until one succeeds. database is not recoverable for more reasons too: see its Recovery tab',
      severity: 'high',
    });
  });

  it('withhold which run, its entity and its message where not all the owners told own that entity', () => {
    const payload = lossNotice(
      [
        {
          entityRef: DB,
          reasons: [],
          cause: { ...RUN, named: false, failedAt: 'resource:default/db-01' },
        },
      ],
      's',
    );
    expect(payload).toMatchObject({
      title:
        'database is not recoverable: a test recovery of another entity failed',
      link: '/catalog/default/component/database/recovery',
    });
    expect(payload.description).toBe(
      'A test recovery of another entity failed on resource:default/db-01 at 2026-12-05 23:56:05 UTC; it was the last test recovery of database, ' +
        'not recoverable until one succeeds. Which run it was and why it failed are on its Recovery tab, for those the catalog shows that entity ' +
        '(not named here: not all of you own it)',
    );
    expect(JSON.stringify(payload)).not.toMatch(
      /r-1|\bweb\b|component:default\/web/,
    );
  });

  it('tell that entities are recoverable again in a notice of their own, how long they were not, and what they are now', () => {
    const before = {
      entityRef: WEB,
      status: 'not-recoverable' as const,
      since: T0,
      alarm: ALARM,
    };
    expect(
      closingNotice(
        [
          {
            before,
            now: {
              status: 'at-risk',
              reasons: [
                'Last capture of resource:default/web-01 is 2d old, over the RPO of 1d',
              ],
            },
          },
        ],
        T1,
        's',
      ),
    ).toEqual({
      title: 'web is recoverable again (at risk)',
      description:
        'Not recoverable for 24 h, from 2026-12-01 00:00:00 UTC to 2026-12-02 00:00:00 UTC; now at risk: Last capture of resource:default/web-01 is 2d old, over the RPO of 1d',
      severity: 'low',
      topic: 'recovery readiness',
      scope: 's',
      link: '/catalog/default/component/web/recovery',
      metadata: { entityRefs: [WEB], status: 'at-risk' },
    });
    expect(
      closingNotice(
        [{ before, now: { status: 'ready', reasons: [] } }],
        T1,
        's',
      ).description,
    ).toBe(
      'Not recoverable for 24 h, from 2026-12-01 00:00:00 UTC to 2026-12-02 00:00:00 UTC',
    );
    const several = closingNotice(
      [
        { before, now: { status: 'ready', reasons: [] } },
        {
          before: { ...before, entityRef: DB },
          now: { status: 'unknown', reasons: ['Never test-recovered'] },
        },
        {
          before: { ...before, entityRef: SHOP },
          now: { status: 'ready', reasons: [] },
        },
      ],
      T1,
      's',
    );
    expect(several).toMatchObject({
      title: 'database, web and system shop are recoverable again',
      description:
        'Not recoverable for 24 h, from 2026-12-01 00:00:00 UTC to 2026-12-02 00:00:00 UTC; now ready: web and system shop; not yet test-recovered: database (their Recovery tabs say why)',
    });
  });

  it('tell that entities told they were not recoverable are no longer assessed, from when each was found missing', () => {
    const before = {
      entityRef: WEB,
      status: 'not-recoverable' as const,
      since: T0,
      alarm: ALARM,
      absentSince: T1,
    };
    expect(
      closingNotice([{ before }], '2026-12-03T00:00:00.000Z', 's'),
    ).toEqual({
      title: 'web is no longer assessed for recovery',
      description:
        'It left the catalog, or runs on no machine now; it had been not recoverable for 24 h, from 2026-12-01 00:00:00 UTC to 2026-12-02 00:00:00 UTC',
      severity: 'low',
      topic: 'recovery readiness',
      scope: 's',
      link: '/catalog/default/component/web/recovery',
      metadata: { entityRefs: [WEB], status: 'not-assessed' },
    });
    expect(
      closingNotice(
        [{ before }, { before: { ...before, entityRef: DB } }],
        T1,
        's',
      ),
    ).toMatchObject({
      title: 'database and web are no longer assessed for recovery',
      description:
        'database and web left the catalog, or run on no machine now; they had been not recoverable for 24 h, from 2026-12-01 00:00:00 UTC to 2026-12-02 00:00:00 UTC',
    });
  });

  it('resolve an alarm in place, in its scope, once it no longer holds', () => {
    expect(resolvedAlarm(ALARM, [WEB], T1)).toEqual({
      title: 'Resolved: web is not recoverable',
      description:
        'It was not recoverable for 24 h, from 2026-12-01 00:00:00 UTC to 2026-12-02 00:00:00 UTC. ' +
        'The newer notice about web says what became of it',
      severity: 'low',
      topic: 'recovery readiness',
      scope: ALARM.scope,
      link: '/catalog/default/component/web/recovery',
      metadata: { entityRefs: [WEB], status: 'resolved' },
    });
    expect(resolvedAlarm(ALARM, [WEB, DB], T1).description).toMatch(
      /^They were not recoverable .* The newer notices about web and database say what became of them$/,
    );
    // The notifications backend keeps a title in 255 characters.
    expect(
      resolvedAlarm({ ...ALARM, title: 'x'.repeat(255) }, [WEB], T1).title,
    ).toHaveLength(255);
  });

  it("links to the entity's Recovery tab, and to a run's page, as the portal routes them", () => {
    expect(recoveryTabLink('System:Team-B/Shop Floor')).toBe(
      '/catalog/Team-B/system/Shop%20Floor/recovery',
    );
    expect(runPageLink('3f9c2a1b-7d4e-4c1a-9b2e-5a6f7c8d9e0f')).toBe(
      '/recovery/runs/3f9c2a1b-7d4e-4c1a-9b2e-5a6f7c8d9e0f',
    );
    expect(runPageLink('a/b c')).toBe('/recovery/runs/a%2Fb%20c');
  });

  it('clip a title to what the notifications backend stores, say how long an outage lasted, and quote the first reasons', () => {
    expect(clipped('web is not recoverable')).toBe('web is not recoverable');
    expect(clipped('x'.repeat(300))).toBe(`${'x'.repeat(254)}…`);
    expect(lasted(T0, '2026-12-01T02:30:00.000Z')).toBe(
      'for 2.5 h, from 2026-12-01 00:00:00 UTC to 2026-12-01 02:30:00 UTC',
    );
    // A clock that went back reads as no time at all, not a negative one.
    expect(lasted(T1, T0)).toMatch(/^for 0 s, from /);
    expect(quoted(['a', 'b', 'c'])).toBe('a; b; c');
    expect(quoted(['a', 'b', 'c', 'd'])).toBe('a; b; c; and 1 more');
    expect(quoted([])).toBe('');
  });
});
