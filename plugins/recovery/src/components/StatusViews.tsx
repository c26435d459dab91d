import {
  StatusAborted,
  StatusError,
  StatusOK,
  StatusPending,
  StatusRunning,
  StatusWarning,
} from '@backstage/core-components';
import type {
  MachinePhase,
  ReadinessStatus,
  RunStatus,
} from '@backstage-recovery/plugin-recovery-common';
import { PHASE_LABELS, READINESS_LABELS } from './format';

/** A readiness status with its icon: Ready, At risk, Not recoverable, Unknown. */
export const ReadinessStatusView = ({ status }: { status: ReadinessStatus }) => {
  const label = READINESS_LABELS[status] ?? status;
  switch (status) {
    case 'ready':
      return <StatusOK>{label}</StatusOK>;
    case 'at-risk':
      return <StatusWarning>{label}</StatusWarning>;
    case 'not-recoverable':
      return <StatusError>{label}</StatusError>;
    default:
      return <StatusAborted>{label}</StatusAborted>;
  }
};

const RUN_LABELS: Record<RunStatus, string> = {
  pending: 'Pending',
  running: 'Running',
  succeeded: 'Succeeded',
  failed: 'Failed',
};

/** A run's status with its icon. */
export const RunStatusView = ({ status }: { status: RunStatus }) => {
  const label = RUN_LABELS[status] ?? status;
  switch (status) {
    case 'succeeded':
      return <StatusOK>{label}</StatusOK>;
    case 'failed':
      return <StatusError>{label}</StatusError>;
    case 'running':
      return <StatusRunning>{label}</StatusRunning>;
    default:
      return <StatusPending>{label}</StatusPending>;
  }
};

/** A machine's phase in a run, with its icon. */
export const PhaseView = ({ phase }: { phase: MachinePhase }) => {
  const label = PHASE_LABELS[phase] ?? phase;
  switch (phase) {
    case 'ready':
      return <StatusOK>{label}</StatusOK>;
    case 'failed':
      return <StatusError>{label}</StatusError>;
    case 'waiting':
      return <StatusPending>{label}</StatusPending>;
    case 'skipped':
      return <StatusAborted>{label}</StatusAborted>;
    default:
      return <StatusRunning>{label}</StatusRunning>;
  }
};
