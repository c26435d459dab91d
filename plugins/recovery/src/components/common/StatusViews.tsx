import type { ComponentType, ReactNode } from 'react';
import {
  StatusAborted,
  StatusError,
  StatusOK,
  StatusPending,
  StatusRunning,
  StatusWarning,
} from '@backstage/core-components';
import type {
  ReadinessStatus,
  RunStatus,
  ShownMachinePhase,
} from '@backstage-recovery/plugin-recovery-common';
import { PHASE_LABELS, READINESS_LABELS } from '../../utils/format';

type StatusKind =
  'ok' | 'warning' | 'error' | 'pending' | 'running' | 'aborted';

// Typed as taking children only, though they pass any other prop on to their span.
const STATUS_ICONS: Record<
  StatusKind,
  ComponentType<{
    'aria-hidden'?: boolean;
    'aria-label'?: string;
    children?: ReactNode;
  }>
> = {
  ok: StatusOK,
  warning: StatusWarning,
  error: StatusError,
  pending: StatusPending,
  running: StatusRunning,
  aborted: StatusAborted,
};

/**
 * Words with a status icon, as Backstage's status components show them, but read out: those
 * put `aria-hidden` on their whole span, words included, so a screen reader would skip "Not
 * recoverable" or "Failed". The icon itself stays hidden (material-ui hides its svg), and the
 * span's "Status ok" label goes, as the words say more.
 */
export const Status = ({
  kind,
  children,
}: {
  kind: StatusKind;
  children: ReactNode;
}) => {
  const Icon = STATUS_ICONS[kind];
  return (
    <Icon aria-hidden={false} aria-label={undefined}>
      {children}
    </Icon>
  );
};

/** A readiness status with its icon: Ready, At risk, Not recoverable, Unknown. */
export const ReadinessStatusView = ({
  status,
}: {
  status: ReadinessStatus;
}) => {
  const label = READINESS_LABELS[status] ?? status;
  switch (status) {
    case 'ready':
      return <Status kind="ok">{label}</Status>;
    case 'at-risk':
      return <Status kind="warning">{label}</Status>;
    case 'not-recoverable':
      return <Status kind="error">{label}</Status>;
    default:
      return <Status kind="aborted">{label}</Status>;
  }
};

const RUN_LABELS: Record<RunStatus, string> = {
  pending: 'Pending',
  running: 'Running',
  succeeded: 'Succeeded',
  failed: 'Failed',
  interrupted: 'Interrupted',
};

/**
 * A run's status with its icon. An interrupted run reads as such, not as a failed recovery (no
 * error colour): it says nothing about its entity's recoverability.
 */
export const RunStatusView = ({ status }: { status: RunStatus }) => {
  const label = RUN_LABELS[status] ?? status;
  switch (status) {
    case 'succeeded':
      return <Status kind="ok">{label}</Status>;
    case 'failed':
      return <Status kind="error">{label}</Status>;
    case 'interrupted':
      return <Status kind="aborted">{label}</Status>;
    case 'running':
      return <Status kind="running">{label}</Status>;
    default:
      return <Status kind="pending">{label}</Status>;
  }
};

/**
 * A machine's phase in a run, with its icon. One whose run was interrupted reads as its run does,
 * not as a failed machine (no error colour); a job done reads `Completed` (shownMachinePhase).
 */
export const PhaseView = ({ phase }: { phase: ShownMachinePhase }) => {
  const label = PHASE_LABELS[phase] ?? phase;
  switch (phase) {
    case 'ready':
    case 'completed':
      return <Status kind="ok">{label}</Status>;
    case 'failed':
      return <Status kind="error">{label}</Status>;
    case 'waiting':
      return <Status kind="pending">{label}</Status>;
    case 'skipped':
    case 'interrupted':
      return <Status kind="aborted">{label}</Status>;
    default:
      return <Status kind="running">{label}</Status>;
  }
};
