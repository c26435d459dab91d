import { mockCredentials, TestDatabases } from '@backstage/backend-test-utils';
import type { RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
import { CaptureStore } from '../database/CaptureStore';
import { migrate } from '../database/migrations';
import { RunStore } from '../database/RunStore';
import { chainGraph, DATA, INFRA, WEB } from '../testing/chainSite';
import { captureOf } from '../testing/entities';
import { FakeHost } from '../testing/FakeHost';
import { runServiceOver } from '../testing/runService';
import { consolesSeenBy } from './consoleTails';

type Run = Pick<RecoveryRun, 'entityRef' | 'machines'>;

const SITE = 'component:default/site';
const machineAt = (i: number) => `resource:default/m-${i}`;

const run = (...tails: (string | undefined)[]): Run => ({
  entityRef: SITE,
  machines: tails.map((logTail, i) => ({
    machineRef: machineAt(i),
    wave: 0,
    phase: 'failed',
    ...(logTail === undefined ? {} : { logTail }),
  })) as RecoveryRun['machines'],
});

describe('consolesSeenBy', () => {
  const asked: string[][] = [];
  const authorizer = (granted: string[]) => ({
    permittedOn: async (_c: unknown, _p: unknown, refs: string[]) => {
      asked.push(refs);
      return refs.filter(ref => granted.includes(ref));
    },
  });
  const credentials = mockCredentials.user('user:default/bob');

  beforeEach(() => {
    asked.length = 0;
  });

  it('treats an empty or blank console tail as none: nothing withheld, nothing shown, no policy call', async () => {
    const [seen] = await consolesSeenBy(
      [run('', ' \n\t\n', undefined)],
      credentials,
      authorizer([]),
    );
    for (const machine of seen.machines) {
      expect(machine).not.toHaveProperty('logTail');
      expect(machine).not.toHaveProperty('logTailWithheld');
    }
    expect(asked).toEqual([]);

    // Granted, the blank tail is still none rather than an empty console shown.
    const [granted] = await consolesSeenBy(
      [run('')],
      credentials,
      authorizer([machineAt(0)]),
    );
    expect(granted.machines[0]).not.toHaveProperty('logTail');
  });

  it('withholds only the tails that say something beside blank ones', async () => {
    const [withheld] = await consolesSeenBy(
      [run('', 'DB_PASSWORD=hunter2')],
      credentials,
      authorizer([]),
    );
    expect(withheld.machines[0]).not.toHaveProperty('logTailWithheld');
    expect(withheld.machines[1]).toMatchObject({ logTailWithheld: true });
    expect(JSON.stringify(withheld)).not.toContain('hunter2');
    expect(asked).toEqual([[machineAt(1)]]);

    const [shown] = await consolesSeenBy(
      [run('  ', 'listening on :80')],
      credentials,
      authorizer([machineAt(1)]),
    );
    expect(shown.machines[0]).not.toHaveProperty('logTail');
    expect(shown.machines[1]).toMatchObject({ logTail: 'listening on :80' });
  });

  it("decides each tail on its machine, not on the run's entity: one shown, another withheld, in one policy call for all runs", async () => {
    // A failover of site boots m-0 (site's team's) and m-1 (another team's database machine):
    // granted the run's entity and m-0, the caller reads m-0's console and not m-1's.
    const failover = run('web listening on :80', 'DB_PASSWORD=hunter2');
    const earlier = run(undefined, 'db ready');
    const [seen, seenEarlier] = await consolesSeenBy(
      [failover, earlier],
      credentials,
      authorizer([SITE, machineAt(0)]),
    );
    expect(seen.machines[0]).toMatchObject({ logTail: 'web listening on :80' });
    expect(seen.machines[0]).not.toHaveProperty('logTailWithheld');
    expect(seen.machines[1]).toMatchObject({ logTailWithheld: true });
    expect(seen.machines[1]).not.toHaveProperty('logTail');
    expect(seenEarlier.machines[1]).toMatchObject({ logTailWithheld: true });
    expect(JSON.stringify([seen, seenEarlier])).not.toContain('hunter2');
    // Each machine asked once, whatever the number of runs that kept its tail.
    expect(asked).toEqual([[machineAt(0), machineAt(1)]]);

    // Granted the other team's machine alone (the run's entity not): its tail, and only it.
    asked.length = 0;
    const [theirs] = await consolesSeenBy(
      [failover],
      credentials,
      authorizer([machineAt(1)]),
    );
    expect(theirs.machines[0]).toMatchObject({ logTailWithheld: true });
    expect(theirs.machines[1]).toMatchObject({
      logTail: 'DB_PASSWORD=hunter2',
    });
    expect(asked).toEqual([[machineAt(0), machineAt(1)]]);
  });
});

describe('a failed machine whose console printed nothing', () => {
  const databases = TestDatabases.create({ ids: ['SQLITE_3'] });

  it('keeps no tail of it, rather than an empty one', async () => {
    const knex = await databases.init('SQLITE_3');
    await migrate(knex);
    const runStore = new RunStore(knex);
    const captureStore = new CaptureStore(knex);
    for (const machineRef of [INFRA, DATA, WEB])
      await captureStore.insertCapture(
        captureOf(
          `cap-${machineRef.split('/')[1]}`,
          machineRef,
          new Date().toISOString(),
        ),
      );
    // infra-01 never comes up, and its console says nothing but blank lines.
    const host = new FakeHost({ [INFRA]: ['resource:default/never'] });
    host.logTail = async () => '\n  \n';
    const runs = runServiceOver(runStore, captureStore, host, chainGraph);
    const started = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await runs.waitFor(started.id);
    await runs.shutdown();
    const ended = (await runStore.getRun(started.id))!;
    expect(ended.status).toBe('failed');
    const infra = ended.machines.find(m => m.machineRef === INFRA)!;
    expect(infra.phase).toBe('failed');
    expect(infra.logTail).toBeUndefined();
  });
});
