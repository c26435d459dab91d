import { TestDatabases } from '@backstage/backend-test-utils';
import type { Knex } from 'knex';
import { admission, fullCaptureOf } from '../testing/entities';
import { CaptureStore } from './CaptureStore';
import { migrate } from './migrations';
import { RunStore } from './RunStore';

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

describe.each(databases.eachSupportedId())('CaptureStore on %p', databaseId => {
  let captureStore: CaptureStore;
  let runStore: RunStore;
  let knex: Knex;

  beforeAll(async () => {
    knex = await databases.init(databaseId);
    await migrate(knex);
    captureStore = new CaptureStore(knex);
    runStore = new RunStore(knex);
  });

  it("keeps a machine's last failed capture, the newest of those since its last capture, until one succeeds", async () => {
    const ref = 'resource:default/failing-01';
    const failure = (failedAt: string, message: string) => ({
      machineRef: ref,
      engine: 'primary',
      container: 'failing-01',
      failedAt,
      message,
    });
    await captureStore.insertCapture(
      fullCaptureOf('f-0', ref, '2026-12-06T00:00:00.000Z'),
    );
    await captureStore.recordCaptureFailure(
      failure(
        '2026-12-06T01:00:00.000Z',
        'no container "failing-01" on engine primary',
      ),
    );
    await captureStore.recordCaptureFailure(
      failure('2026-12-06T02:00:00.000Z', 'engine unreachable'),
    );
    // An older one, from another replica told late: the newer stays.
    await captureStore.recordCaptureFailure(
      failure('2026-12-06T01:30:00.000Z', 'older'),
    );
    // One started before the last capture that succeeded is no news.
    await captureStore.recordCaptureFailure({
      ...failure('2026-12-05T23:00:00.000Z', 'before'),
      machineRef: 'resource:default/other-01',
    });
    await captureStore.insertCapture(
      fullCaptureOf(
        'o-1',
        'resource:default/other-01',
        '2026-12-06T00:00:00.000Z',
      ),
    );
    await captureStore.recordCaptureFailure({
      ...failure('2026-12-05T23:30:00.000Z', 'before it too'),
      machineRef: 'resource:default/other-01',
    });
    expect(
      await captureStore.captureFailures([ref, 'resource:default/other-01']),
    ).toEqual(
      new Map([
        [ref, failure('2026-12-06T02:00:00.000Z', 'engine unreachable')],
      ]),
    );
    // A capture started before the failure does not clear it; one started after does.
    await captureStore.insertCapture(
      fullCaptureOf('f-1', ref, '2026-12-06T01:59:00.000Z'),
    );
    expect((await captureStore.captureFailures([ref])).size).toBe(1);
    await captureStore.insertCapture(
      fullCaptureOf('f-2', ref, '2026-12-06T02:10:00.000Z'),
    );
    expect(await captureStore.captureFailures([ref])).toEqual(new Map());
  });

  it('keeps captures, finds the newest per machine and prunes old ones', async () => {
    const m = 'resource:default/web-01';
    const other = 'resource:default/infra-01';
    await captureStore.insertCapture(
      fullCaptureOf('c1', m, '2026-11-01T00:00:00.000Z'),
    );
    await captureStore.insertCapture(
      fullCaptureOf('c2', m, '2026-11-02T00:00:00.000Z'),
    );
    await captureStore.insertCapture(
      fullCaptureOf('c3', m, '2026-11-03T00:00:00.000Z'),
    );
    await captureStore.insertCapture(
      fullCaptureOf('c4', other, '2026-11-01T12:00:00.000Z'),
    );

    const latest = await captureStore.latestCaptures([
      m,
      other,
      'resource:default/none',
    ]);
    expect(latest.get(m)).toEqual(
      fullCaptureOf('c3', m, '2026-11-03T00:00:00.000Z'),
    );
    expect(latest.get(other)!.id).toBe('c4');
    expect(latest.has('resource:default/none')).toBe(false);

    const pruned = await captureStore.pruneCaptures(m, 2);
    expect(pruned.map(c => c.id)).toEqual(['c1']);
    expect((await captureStore.listCaptures(m)).map(c => c.id)).toEqual([
      'c3',
      'c2',
    ]);
  });

  it("lists a machine's captures after a given one, newest first, the id breaking ties of one instant, and counts them", async () => {
    const m = 'resource:default/paged-01';
    const at = '2026-11-22T12:00:00.123Z';
    const ms = (delta: number) =>
      new Date(new Date(at).getTime() + delta).toISOString();
    for (const [id, createdAt] of [
      ['p-old', ms(-1)],
      ['p-a', at],
      ['p-b', at],
      ['p-c', at],
      ['p-new', ms(1)],
    ])
      await captureStore.insertCapture(fullCaptureOf(id, m, createdAt));
    await captureStore.insertCapture(
      fullCaptureOf('p-other', 'resource:default/other-01', at),
    );

    const ids = (captures: Array<{ id: string }>) => captures.map(c => c.id);
    const all = ids(await captureStore.listCaptures(m));
    expect(all).toEqual(['p-new', 'p-c', 'p-b', 'p-a', 'p-old']);
    // Pages of two, each after the last capture of the one before: every capture once, in order,
    // a page ending between captures of one instant.
    const read: string[] = [];
    let page = await captureStore.listCaptures(m, 2);
    // Bounded: a page that does not move on would repeat for good.
    while (page.length > 0 && read.length <= all.length) {
      read.push(...ids(page));
      page = await captureStore.listCaptures(m, 2, page.at(-1));
    }
    expect(read).toEqual(all);
    expect(
      ids(await captureStore.listCaptures(m, 20, { id: 'p-b', createdAt: at })),
    ).toEqual(['p-a', 'p-old']);
    expect(await captureStore.countCaptures(m)).toBe(5);
    expect(await captureStore.countCaptures('resource:default/none')).toBe(0);
  });

  it('keeps the newest intact captures: a damaged one is not counted, and goes once that many intact ones are newer', async () => {
    const m = 'resource:default/damaged-01';
    const damage = {
      at: '2026-11-02T12:00:00.000Z',
      reason: 'checksum mismatch',
    };
    const ids = async () => (await captureStore.listCaptures(m)).map(c => c.id);
    await captureStore.insertCapture(
      fullCaptureOf('d-a', m, '2026-11-01T00:00:00.000Z'),
    );
    await captureStore.insertCapture(
      fullCaptureOf('d-b', m, '2026-11-02T00:00:00.000Z'),
    );
    // A run passed over b, found damaged, to restore a.
    await captureStore.markCaptureDamaged('d-b', damage);
    await captureStore.insertCapture(
      fullCaptureOf('d-c', m, '2026-11-03T00:00:00.000Z'),
    );
    // Keeping 2: c and a are the two that restore; b, newer than a, is not counted and stays.
    expect(await captureStore.pruneCaptures(m, 2)).toEqual([]);
    expect(await ids()).toEqual(['d-c', 'd-b', 'd-a']);
    // With two intact ones newer than them, b and a go.
    await captureStore.insertCapture(
      fullCaptureOf('d-d', m, '2026-11-04T00:00:00.000Z'),
    );
    expect((await captureStore.pruneCaptures(m, 2)).map(c => c.id)).toEqual([
      'd-b',
      'd-a',
    ]);
    expect(await ids()).toEqual(['d-d', 'd-c']);
    // Every kept one damaged: fewer than 2 intact, nothing goes.
    await captureStore.markCaptureDamaged('d-d', damage);
    await captureStore.markCaptureDamaged('d-c', damage);
    expect(await captureStore.pruneCaptures(m, 2)).toEqual([]);
    expect(await ids()).toEqual(['d-d', 'd-c']);
  });

  it('keeps how long a capture paused production: 0 where it did not, absent where a source does not say', async () => {
    const m = 'resource:default/pause-01';
    const { pausedMs: _, ...unsaid } = fullCaptureOf(
      'u1',
      m,
      '2026-11-01T00:00:00.000Z',
    );
    await captureStore.insertCapture(unsaid);
    await captureStore.insertCapture({
      ...fullCaptureOf('z1', m, '2026-11-02T00:00:00.000Z'),
      pausedMs: 0,
    });
    const [notPaused, unknown] = await captureStore.listCaptures(m);
    expect(notPaused.pausedMs).toBe(0);
    expect(unknown).toEqual(unsaid);
    expect('pausedMs' in unknown).toBe(false);
  });

  it("keeps the machine's state when captured, listed and as its latest; absent where a source does not say", async () => {
    const m = 'resource:default/state-01';
    const unhealthy = {
      status: 'running' as const,
      health: 'unhealthy' as const,
      failingStreak: 4,
      healthOutput: 'wget: server returned error: HTTP/1.1 503',
    };
    const exited = {
      status: 'exited' as const,
      exitCode: 137,
      oomKilled: true,
      since: '2026-11-01T23:59:00.123456789Z',
    };
    await captureStore.insertCapture(
      fullCaptureOf('s1', m, '2026-11-01T00:00:00.000Z'),
    );
    await captureStore.insertCapture({
      ...fullCaptureOf('s2', m, '2026-11-02T00:00:00.000Z'),
      machineState: unhealthy,
    });
    await captureStore.insertCapture({
      ...fullCaptureOf('s3', m, '2026-11-03T00:00:00.000Z'),
      machineState: exited,
    });
    const [third, second, first] = await captureStore.listCaptures(m);
    expect(third.machineState).toEqual(exited);
    expect(second.machineState).toEqual(unhealthy);
    expect('machineState' in first).toBe(false);
    expect(
      (await captureStore.latestCaptures([m])).get(m)!.machineState,
    ).toEqual(exited);
  });

  it('keeps a capture an active run restores when pruning, and prunes it once the run is over', async () => {
    const m = 'resource:default/prune-01';
    await captureStore.insertCapture(
      fullCaptureOf('p1', m, '2026-11-01T00:00:00.000Z'),
    );
    await captureStore.insertCapture(
      fullCaptureOf('p2', m, '2026-11-02T00:00:00.000Z'),
    );
    await runStore.insertRun(
      {
        id: 'run-prune',
        entityRef: 'component:default/prune',
        mode: 'test',
        trigger: 'user',
        hypervisorHost: 'prune-host',
        plan: {
          entityRef: 'component:default/prune',
          waves: [[m]],
          machines: [],
        },
        options: {},
        machines: [{ machineRef: m, wave: 0, captureId: 'p2' }],
      },
      new Date('2026-11-02T01:00:00.000Z'),
    );
    // Captures taken while the run restores p2.
    await captureStore.insertCapture(
      fullCaptureOf('p3', m, '2026-11-02T02:00:00.000Z'),
    );
    expect((await captureStore.pruneCaptures(m, 1)).map(c => c.id)).toEqual([
      'p1',
    ]);
    expect((await captureStore.listCaptures(m)).map(c => c.id)).toEqual([
      'p3',
      'p2',
    ]);
    await runStore.updateRun('run-prune', {
      status: 'succeeded',
      finishedAt: '2026-11-02T03:00:00.000Z',
    });
    expect((await captureStore.pruneCaptures(m, 1)).map(c => c.id)).toEqual([
      'p2',
    ]);
    expect((await captureStore.listCaptures(m)).map(c => c.id)).toEqual(['p3']);
  });

  it('takes one newest capture per machine among captures of one instant: the one listing puts first, admission restores and pruning keeps', async () => {
    // Two users capturing one machine at once: their captures share the millisecond.
    const m = 'resource:default/tie-01';
    const instant = '2026-11-26T00:00:00.123Z';
    await captureStore.insertCapture(
      fullCaptureOf('tie-old', m, '2026-11-25T00:00:00.000Z'),
    );
    for (const id of ['tie-b', 'tie-d', 'tie-a', 'tie-c'])
      await captureStore.insertCapture(fullCaptureOf(id, m, instant));

    const [first] = await captureStore.listCaptures(m);
    expect(first.id).toBe('tie-d');
    const latest = await captureStore.latestCaptures([m, m]);
    expect([...latest.keys()]).toEqual([m]);
    expect(latest.get(m)).toEqual(fullCaptureOf('tie-d', m, instant));
    const admitted = await runStore.admitRun(
      admission('run-tie', m, 'tie-host'),
      new Date('2026-11-26T01:00:00.000Z'),
    );
    expect('captures' in admitted && admitted.captures.get(m)!.id).toBe(
      'tie-d',
    );
    await runStore.updateRun('run-tie', {
      status: 'succeeded',
      finishedAt: '2026-11-26T02:00:00.000Z',
    });
    expect(
      (await captureStore.pruneCaptures(m, 1)).map(c => c.id).sort(),
    ).toEqual(['tie-a', 'tie-b', 'tie-c', 'tie-old']);
    expect((await captureStore.listCaptures(m)).map(c => c.id)).toEqual([
      'tie-d',
    ]);
  });
});
