import type { NightlyCheckOutcome } from '@backstage-recovery/plugin-recovery-common';
import { nightlyCheckSeenBy } from './nightlyCheck';

const SHOP = 'system:default/shop';
/** What the catalog shows the caller: the shop and the web, no User entity of jane. */
const visible = async (refs: string[]) =>
  refs.filter(ref => ref === SHOP || ref === 'component:default/web');

const AT = '2026-12-05T02:30:00.000Z';

describe('nightlyCheckSeenBy', () => {
  it('shows an outcome naming who cancelled its run, where the catalog holds no User entity of them', async () => {
    // As the nightly check words them (notChecked): the covered entity's, and the run's own.
    const covered: NightlyCheckOutcome = {
      checkedAt: AT,
      outcome: 'covered',
      runId: 'r7',
      runEntityRef: SHOP,
      message: `not checked: run r7 of ${SHOP}, which was to cover it, was cancelled by user:default/jane`,
    };
    const own: NightlyCheckOutcome = {
      checkedAt: AT,
      outcome: 'started',
      runId: 'r7',
      runEntityRef: SHOP,
      message:
        'run r7 cancelled by user:default/jane (not started again; a cancelled run counts for no one)',
    };
    expect(await nightlyCheckSeenBy(covered, visible)).toEqual(covered);
    expect(await nightlyCheckSeenBy(own, visible)).toEqual(own);
  });

  it('still hides an outcome whose run is of an entity the catalog hides, whoever cancelled it', async () => {
    const outcome: NightlyCheckOutcome = {
      checkedAt: AT,
      outcome: 'covered',
      runId: 'r8',
      runEntityRef: 'system:default/ops',
      message:
        'not checked: run r8 of system:default/ops, which was to cover it, was cancelled by user:default/jane',
    };
    expect(await nightlyCheckSeenBy(outcome, visible)).toEqual({
      checkedAt: AT,
      outcome: 'covered',
      message: 'covered by a run of an entity the catalog does not show you',
    });
  });
});
