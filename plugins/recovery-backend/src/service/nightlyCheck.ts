import {
  cancellerIn,
  type NightlyCheckOutcome,
} from '@backstage-recovery/plugin-recovery-common';
import { refsInText } from '../plan/mentions';

/**
 * An outcome as the caller may see it: one naming an entity the catalog does not show them (the
 * run's, or another its words name: the entity whose run was to cover it, say) keeps what it was
 * (outcome and reason) and when, not that run, its entity, nor the check's own words. One without
 * a plan or a machine in it says what readiness says, in full.
 */
export async function nightlyCheckSeenBy(
  outcome: NightlyCheckOutcome,
  /** Of the refs given, those the catalog shows the caller. */
  visible: (entityRefs: string[]) => Promise<string[]>,
): Promise<NightlyCheckOutcome> {
  // Its words are then the entity's readiness reasons, which readiness shows whoever may see the
  // entity: an entity they name that the catalog does not hold (a machine gone) hides nothing.
  if (outcome.reason === 'no-plan' || outcome.reason === 'no-machine')
    return outcome;
  // Who cancelled a run is no entity the outcome is about: a person (or service) the run's page
  // names to whoever may see the run, whether or not the catalog holds a User entity of them.
  const cancellers = new Set(refsInText(cancellerIn(outcome.message) ?? ''));
  const named = [
    ...new Set([
      ...(outcome.runEntityRef ? [outcome.runEntityRef] : []),
      ...refsInText(outcome.message).filter(ref => !cancellers.has(ref)),
    ]),
  ];
  if (named.length === 0 || (await visible(named)).length === named.length)
    return outcome;
  const {
    runId: _runId,
    runEntityRef: _runEntityRef,
    message: _message,
    ...kept
  } = outcome;
  return { ...kept, message: hiddenMessage(outcome) };
}

const HIDDEN = 'an entity the catalog does not show you';

function hiddenMessage({ outcome, reason }: NightlyCheckOutcome): string {
  if (outcome === 'covered') return `covered by a run of ${HIDDEN}`;
  if (outcome === 'started') return 'a test recovery was started';
  switch (reason) {
    case 'kept-failover':
      return `refused: a failover of ${HIDDEN} keeps machines on the hypervisor host that serve production with what its plan needs, until it is released`;
    case 'host-busy':
      return `refused: the hypervisor host was busy with a run of ${HIDDEN} until the check's time ran out`;
    case 'host-unreachable':
      return `not checked: the hypervisor host could not be reached, as a run of ${HIDDEN} found`;
    default:
      return `not run: the run of ${HIDDEN}, which was to cover it, could not be waited for or started`;
  }
}
