/**
 * Shared types, permissions and annotation names of the recovery plugins.
 *
 * @packageDocumentation
 */
export {
  ANNOTATION_ENGINE,
  ANNOTATION_CONTAINER,
  ANNOTATION_PROBES,
  ANNOTATION_RPO,
  ANNOTATION_RTO,
  ANNOTATION_NIGHTLY_CHECK,
  ANNOTATION_JOB,
  RUN_ID_LABEL,
  MACHINE_LABEL,
  SERVICE_LABEL,
  MACHINE_RESOURCE_TYPE,
} from './annotations';
export {
  recoveryRunCreatePermission,
  recoveryRunFailoverPermission,
  recoveryRunReleasePermission,
  recoveryRunLogsReadPermission,
  recoveryCaptureCreatePermission,
  recoveryAnalysisCreatePermission,
  recoveryEventsCreatePermission,
  failoverEntityRefs,
  recoveryPermissions,
} from './permissions';
export {
  type InitializationEventType,
  type InitializationEvent,
} from './events';
export {
  type EntityProblem,
  type ProbeSpec,
  type Capture,
  type CaptureDamage,
  type CapturedMachineState,
  type BootPlanMachine,
  type InferredDependency,
  type InferredMachineWait,
  type DependencyDisagreements,
  type BootPlan,
  type PlanResponse,
  type RunMode,
  INTERRUPTED_PREFIX,
  type RunStatus,
  type MachinePhase,
  type RunMachine,
  type RunStepLevel,
  type RunStep,
  type RunSupervision,
  type MachineWithoutNetwork,
  type RecoveryRun,
  type ReadinessStatus,
  type MachineCaptureStatus,
  type Readiness,
  type ReasonRun,
  type NightlyCheckRefusal,
  type NightlyCheckOutcome,
  type NightlyCheckProgress,
  NIGHTLY_CHECK_SILENCE_MS,
  NIGHTLY_CHECK_MESSAGE_MAX_LENGTH,
  type NightlyCheckEntityOutcome,
  type NightlyCheckRecord,
  type HiddenRun,
  type RunSummary,
  type MachineCaptureSummary,
  type ReadinessSummary,
  type ReadinessPage,
  type RunPage,
  type CapturePage,
  failedMachine,
  isFullRun,
  formatScore,
} from './types';
export {
  READINESS_RISK_RANK,
  READINESS_PAGE_MAX,
  byRisk,
  byEntityName,
  READINESS_STATUS_LABELS,
  runModeName,
  runStartedBy,
  CLOCK_AHEAD_TOLERANCE_SECONDS,
} from './readinessWords';
export {
  parseDurationSeconds,
  formatSeconds,
  formatSecondsAgainst,
  formatBytes,
  formatDuration,
  formatAgainst,
  formatMeasured,
  formatUtcTime,
} from './duration';
export { type RecoveryApi } from './api';
export {
  type CaptureRequest,
  type CaptureRequestError,
  type CaptureRequestProgress,
  type CaptureRequestStatus,
} from './captureRequest';
export { RecoveryClient } from './client';
export {
  type RecoverySignal,
  type RecoveryChanges,
  recoverySignalChannel,
  readRecoverySignal,
} from './signals';
export {
  HOST_BUSY_ERROR_NAME,
  MISSING_DEPENDENCIES_ERROR_NAME,
  KEPT_FAILOVER_ERROR_NAME,
  MACHINES_NOT_CAPTURED_ERROR_NAME,
  RECOVERY_POINT_TOO_EARLY_ERROR_NAME,
  ENGINE_FAILED_ERROR_NAME,
  CAPTURES_DAMAGED_ERROR_NAME,
  CAPTURE_STORE_ERROR_NAME,
  type ApiErrorAnswer,
  errorMessage,
  couldNot,
  hostBusy,
  isHostBusy,
  busyWithRunId,
  missingDependencies,
  DEPENDENCY_CYCLE_ERROR_NAME,
  type DependencyCycle,
  dependencyCycle,
  machinesNotCaptured,
  type KeptFailover,
  keptFailover,
  recoveryPointTooEarly,
  CaptureFailedError,
  captureFailure,
  type DamagedCapture,
  capturesDamaged,
} from './errors';
export {
  type MachineCaptureFailureKind,
  type MachineCaptureFailure,
  type CaptureFailure,
  captureFailureKind,
  captureStoreAdvice,
} from './captureFailed';
export {
  type CaptureProgress,
  nothingToCapture,
  captureInTurn,
} from './captureInTurn';
export { machinesAwaited } from './machineWaits';
export {
  downInFailover,
  downSince,
  withoutNetworkSince,
} from './degradedFailover';
export { machineLabelRef, machineLabelName } from './machineLabel';
export { type EntityRole, entityRole, isRecoveryAvailable } from './entityRole';
export {
  describeProbe,
  type PlanNotRecovered,
  planNotRecovered,
  coversPlan,
  failedAtHost,
  failureBeyondPlan,
  failedWithin,
} from './runCoverage';
export { isRunActive, timelineSteps } from './runTimeline';
export {
  type IsoTimeOptions,
  type IsoTimeReading,
  readableTimes,
  readIsoTime,
} from './isoTime';
export {
  RECOVERY_POINT_FORMAT,
  readRecoveryPoint,
  parseRecoveryPoint,
  type RecoveryPointTooEarly,
  earliestRecoveryPoint,
  earlierRecoveryPoints,
} from './recoveryPoint';
export {
  isRunInterrupted,
  interruptionCause,
  interruptedRunWords,
  cancellerIn,
} from './runInterrupted';
export {
  trimHealthOutput,
  machineNotServing,
  machineStateWorthSaying,
  describeMachineState,
  notServingWhenCaptured,
  withoutHealthOutput,
  exitedWithZero,
  jobAnnotationHint,
} from './machineState';
export {
  JOB_MACHINE_NOTE,
  isJobMachine,
  type ShownMachinePhase,
  shownMachinePhase,
} from './jobMachine';
export { bindMountDropped, droppedBindMounts } from './bindMounts';
export { isLoopbackHost } from './loopback';
