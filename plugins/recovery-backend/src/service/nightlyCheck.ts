import { InputError } from '@backstage/errors';
import {
  CLOCK_AHEAD_TOLERANCE_SECONDS,
  type NightlyCheckEntityOutcome,
  type NightlyCheckOutcome,
  type NightlyCheckRecord,
  type NightlyCheckRefusal,
  NIGHTLY_CHECK_MESSAGE_MAX_LENGTH,
  parseRecoveryPoint,
} from '@backstage-recovery/plugin-recovery-common';
import { describeValue } from '@backstage-recovery/plugin-recovery-node';
import { refsInText } from '../plan/mentions';

const OUTCOMES: ReadonlyArray<NightlyCheckOutcome['outcome']> = [
  'started',
  'covered',
  'excluded',
  'refused',
];
const REFUSALS: readonly NightlyCheckRefusal[] = [
  'uncaptured',
  'kept-failover',
  'host-busy',
  'no-plan',
  'out-of-time',
  'error',
];
const FIELDS = [
  'entityRef',
  'outcome',
  'reason',
  'runId',
  'runEntityRef',
  'message',
];
/** As the runs table's id column holds. */
const MAX_RUN_ID_LENGTH = 255;
/** Most entities a night may say it checks: as an integer column holds, and far past any catalog. */
const MAX_ENTITIES = 10_000_000;

/**
 * A night's outcomes from the body of `POST /nightly-check` (`partial: true`: those known so far
 * of a night under way, which replace those entities' alone, none at all to say the check is still
 * there; `entities`: how many the night checks), each entity ref normalized by
 * `refFrom` (which names the field of one it refuses); anything else than the description says is
 * a 400 naming the field and the outcome (`outcomes[3].runId`).
 */
export function nightlyCheckFrom(
  body: Record<string, unknown>,
  refFrom: (field: string, ref: string) => string,
): NightlyCheckRecord {
  const checkedAt =
    typeof body.checkedAt === 'string'
      ? parseRecoveryPoint(body.checkedAt)
      : undefined;
  if (!checkedAt) {
    throw new InputError(
      `checkedAt must be an ISO 8601 time with its zone, when the night's check began; got ${describeValue(body.checkedAt)}`,
    );
  }
  if (
    Date.parse(checkedAt) >
    Date.now() + CLOCK_AHEAD_TOLERANCE_SECONDS * 1000
  ) {
    throw new InputError(
      `checkedAt ${body.checkedAt} is ahead of the backend's clock (${new Date().toISOString()}): no check began then`,
    );
  }
  if (body.partial !== undefined && typeof body.partial !== 'boolean') {
    throw new InputError(
      `partial must be true (the outcomes known so far of a night under way) or false (the night whole); got ${describeValue(body.partial)}`,
    );
  }
  const { entities } = body;
  if (
    entities !== undefined &&
    !(
      typeof entities === 'number' &&
      Number.isSafeInteger(entities) &&
      entities >= 0 &&
      entities <= MAX_ENTITIES
    )
  ) {
    throw new InputError(
      `entities must be how many entities the night's check sets out to check, an integer from 0 to ${MAX_ENTITIES}; got ${describeValue(entities)}`,
    );
  }
  if (!Array.isArray(body.outcomes))
    throw new InputError(
      `outcomes must be an array, one outcome an entity; got ${describeValue(body.outcomes)}`,
    );
  const seen = new Map<string, number>();
  const outcomes = body.outcomes.map(
    (item: unknown, i): NightlyCheckEntityOutcome => {
      const at = `outcomes[${i}]`;
      if (typeof item !== 'object' || item === null || Array.isArray(item))
        throw new InputError(
          `${at} must be an object, got ${describeValue(item)}`,
        );
      const o = item as Record<string, unknown>;
      const unknown = Object.keys(o).filter(k => !FIELDS.includes(k));
      if (unknown.length > 0)
        throw new InputError(
          `${at}: unknown ${unknown.map(k => `"${k}"`).join(', ')}; the fields are ${FIELDS.join(', ')}`,
        );
      const text = (field: string, max: number) => {
        const value = o[field];
        if (value === undefined) return undefined;
        // PostgreSQL counts characters (code points) and refuses NUL in text.
        if (
          typeof value !== 'string' ||
          value.length === 0 ||
          [...value].length > max ||
          value.includes('\0')
        ) {
          throw new InputError(
            `${at}.${field} must be a string of 1 to ${max} characters without NUL, got ${describeValue(value)}`,
          );
        }
        return value;
      };
      if (typeof o.entityRef !== 'string')
        throw new InputError(
          `${at}.entityRef must be an entity ref, got ${describeValue(o.entityRef)}`,
        );
      const entityRef = refFrom(`${at}.entityRef`, o.entityRef);
      if (seen.has(entityRef))
        throw new InputError(
          `${at}.entityRef: ${entityRef} has an outcome already (outcomes[${seen.get(entityRef)}]): one an entity`,
        );
      seen.set(entityRef, i);
      const outcome = o.outcome as NightlyCheckOutcome['outcome'];
      if (!OUTCOMES.includes(outcome))
        throw new InputError(
          `${at}.outcome must be one of ${OUTCOMES.join(', ')}, got ${describeValue(o.outcome)}`,
        );
      const reason = o.reason as NightlyCheckRefusal | undefined;
      if (
        outcome === 'refused'
          ? !REFUSALS.includes(reason!)
          : reason !== undefined
      ) {
        throw new InputError(
          outcome === 'refused'
            ? `${at}.reason must be one of ${REFUSALS.join(', ')} for a refused outcome, got ${describeValue(reason)}`
            : `${at}.reason is for a refused outcome only, not ${outcome}`,
        );
      }
      const runId = text('runId', MAX_RUN_ID_LENGTH);
      const runEntityRef =
        typeof o.runEntityRef === 'string'
          ? refFrom(`${at}.runEntityRef`, o.runEntityRef)
          : o.runEntityRef;
      if (runEntityRef !== undefined && typeof runEntityRef !== 'string') {
        throw new InputError(
          `${at}.runEntityRef must be an entity ref, got ${describeValue(runEntityRef)}`,
        );
      }
      // What the page links to: a run started or covering it names it, and a covering run its entity.
      if ((outcome === 'started' || outcome === 'covered') && !runId)
        throw new InputError(
          `${at}.runId is required for a ${outcome} outcome`,
        );
      if (outcome === 'covered' && !runEntityRef)
        throw new InputError(
          `${at}.runEntityRef is required for a covered outcome: whose run covered it`,
        );
      if (runId && !runEntityRef)
        throw new InputError(
          `${at}.runEntityRef is required with runId: whose run it is`,
        );
      const message = text('message', NIGHTLY_CHECK_MESSAGE_MAX_LENGTH);
      if (message === undefined)
        throw new InputError(
          `${at}.message is required: what the check did about ${entityRef}, in its words`,
        );
      return {
        entityRef,
        outcome,
        ...(reason && { reason }),
        ...(runId && { runId }),
        ...(runEntityRef && { runEntityRef }),
        message,
      };
    },
  );
  return {
    checkedAt,
    outcomes,
    ...(body.partial === true && { partial: true }),
    ...(entities !== undefined && { entities }),
  };
}

/**
 * An outcome as the caller may see it: one naming an entity the catalog does not show them (the
 * run's, or another its words name: the entity whose run was to cover it, say) keeps what it was
 * (outcome and reason) and when, not that run, its entity, nor the check's own words.
 */
export async function nightlyCheckSeenBy(
  outcome: NightlyCheckOutcome,
  /** Of the refs given, those the catalog shows the caller. */
  visible: (entityRefs: string[]) => Promise<string[]>,
): Promise<NightlyCheckOutcome> {
  const named = [
    ...new Set([
      ...(outcome.runEntityRef ? [outcome.runEntityRef] : []),
      ...refsInText(outcome.message),
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
    default:
      return `not run: the run of ${HIDDEN}, which was to cover it, could not be waited for or started`;
  }
}
