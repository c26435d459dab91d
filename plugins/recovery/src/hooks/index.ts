export {
  type FailoverPermission,
  lackingEntities,
  useFailoverPermission,
} from './useFailoverPermission';
export {
  type FollowedRun,
  runHoldingHost,
  useFollowedRun,
} from './useFollowedRun';
export { useKeptAsyncRetry } from './useKeptAsyncRetry';
export {
  type EntityChanges,
  SIGNALLED_POLL_INTERVAL_MS,
  useRecoverySignals,
} from './useRecoverySignals';
