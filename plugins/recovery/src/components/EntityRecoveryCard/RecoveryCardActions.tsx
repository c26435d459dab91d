import { useId, useState } from 'react';
import { Box, Button, Divider } from '@material-ui/core';
import PlayArrowIcon from '@material-ui/icons/PlayArrow';
import HistoryIcon from '@material-ui/icons/History';
import SwapHorizIcon from '@material-ui/icons/SwapHoriz';
import type { AsyncPermissionResult } from '@backstage/plugin-permission-react';
import {
  type BootPlan,
  recoveryCaptureCreatePermission,
  recoveryRunCreatePermission,
  recoveryRunFailoverPermission,
  type RecoveryRun,
  type RunMode,
} from '@backstage-recovery/plugin-recovery-common';
import { CaptureButton, type useCaptureFlow } from './CaptureFlow';
import {
  PermissionNote,
  permissionNoteShown,
  useCardStyles,
} from './cardLayout';
import { isRunActive } from '../../utils/format';
import { RecoveryPointDialog } from './RecoveryPointDialog';
import type { StartRequest } from './RunStartFlow';
import { StartFailoverDialog } from './StartFailoverDialog';

/**
 * What can be done from the card, each off while it cannot be done now, or not offered at all
 * without the permission to: run a test recovery (of the latest captures, or to an earlier
 * recovery point), fail over, capture; and why an action is off for want of a permission.
 */
export const RecoveryCardActions = ({
  entityRef,
  entityName,
  plan,
  canCapture,
  permissions,
  run,
  starting,
  hostBusy,
  checkingForRun,
  failoverRunning,
  testRunning,
  startRun,
  capture,
}: {
  entityRef: string;
  /** The name a failover's confirmation asks to be typed in. */
  entityName: string;
  plan: BootPlan | undefined;
  /** Whether there are machines to capture: the plan's, or without a plan those readiness lists. */
  canCapture: boolean;
  permissions: {
    run: AsyncPermissionResult;
    failover: AsyncPermissionResult;
    capture: AsyncPermissionResult;
  };
  /** The run the card follows. */
  run: RecoveryRun | undefined;
  /** The mode of the run being started, while its start is under way. */
  starting: RunMode | undefined;
  /** A run in progress holds the hypervisor host. */
  hostBusy: boolean;
  /** The active runs are not known yet: one may hold the host. */
  checkingForRun: boolean;
  /** A failover holds the host: another is not started. */
  failoverRunning: boolean;
  /** The test recovery a failover started now would interrupt. */
  testRunning: RecoveryRun | undefined;
  /** Starts a run; returns the refusal of a recovery point for the dialog it was chosen in to say. */
  startRun: (request?: StartRequest) => Promise<unknown>;
  capture: Pick<ReturnType<typeof useCaptureFlow>, 'capturing' | 'captureNow'>;
}) => {
  const classes = useCardStyles();
  /** Whether the dialog choosing an earlier recovery point is open. */
  const [choosingPoint, setChoosingPoint] = useState(false);
  /** Whether the dialog confirming a failover is open. */
  const [confirmingFailover, setConfirmingFailover] = useState(false);
  // The sentence saying why a button is off for want of a permission describes that button.
  const runNoteId = useId();
  const captureNoteId = useId();

  const hasMachines = !!plan && plan.machines.length > 0;
  const running = isRunActive(run);
  const runAllowed = permissions.run.allowed;
  // A failover takes both grants on the entity (and on what its plan boots: asked in the dialog).
  const failoverAllowed = runAllowed && permissions.failover.allowed;

  return (
    <>
      <Divider className={classes.section} />
      <Box className={`${classes.section} ${classes.actions}`}>
        <Button
          variant="contained"
          color="primary"
          startIcon={<PlayArrowIcon />}
          disabled={
            !runAllowed ||
            !hasMachines ||
            hostBusy ||
            !!starting ||
            checkingForRun
          }
          aria-describedby={
            permissionNoteShown(permissions.run) ? runNoteId : undefined
          }
          onClick={() => startRun()}
        >
          {running && run?.mode === 'failover'
            ? 'Failover running…'
            : running || starting === 'test'
              ? 'Test recovery running…'
              : 'Run test recovery'}
        </Button>
        {/* Offered only to those who may start runs: a recovery point is a run's option. */}
        {runAllowed && hasMachines && (
          <Button
            variant="outlined"
            size="small"
            startIcon={<HistoryIcon />}
            disabled={hostBusy || !!starting || checkingForRun}
            onClick={() => setChoosingPoint(true)}
          >
            Earlier recovery point…
          </Button>
        )}
        {/* Shown only to those the permission framework lets fail the entity over. Not off while a
            test recovery holds the host: a failover preempts it. */}
        {failoverAllowed && hasMachines && (
          <Button
            variant="outlined"
            color="secondary"
            startIcon={<SwapHorizIcon />}
            disabled={failoverRunning || !!starting || checkingForRun}
            onClick={() => setConfirmingFailover(true)}
          >
            {starting === 'failover' ? 'Starting failover…' : 'Fail over…'}
          </Button>
        )}
        <CaptureButton
          capturing={capture.capturing}
          disabled={!permissions.capture.allowed || !canCapture}
          describedBy={
            permissionNoteShown(permissions.capture) ? captureNoteId : undefined
          }
          onClick={capture.captureNow}
        />
        {runAllowed && hasMachines && (
          <RecoveryPointDialog
            open={choosingPoint}
            machineRefs={plan!.machines.map(m => m.machineRef)}
            onClose={() => setChoosingPoint(false)}
            onStart={async recoveryPoint => {
              // Open while the run starts: a point earlier than machines' kept captures is refused there.
              const refused = await startRun({ recoveryPoint });
              if (refused) throw refused;
              setChoosingPoint(false);
            }}
          />
        )}
        {failoverAllowed && hasMachines && confirmingFailover && (
          <StartFailoverDialog
            open
            entityRef={entityRef}
            entityName={entityName}
            plan={plan!}
            preempts={testRunning}
            onClose={() => setConfirmingFailover(false)}
            onStart={async recoveryPoint => {
              // Open while the run starts: a point earlier than machines' kept captures is refused there.
              const refused = await startRun({
                mode: 'failover',
                recoveryPoint,
              });
              if (refused) throw refused;
              setConfirmingFailover(false);
            }}
          />
        )}
        <PermissionNote
          state={permissions.run}
          id={runNoteId}
          action="run test recoveries"
          permissionName={recoveryRunCreatePermission.name}
        />
        {/* Said only where the check failed: a denial leaves the failover unoffered, as to most. */}
        {runAllowed && permissions.failover.error && (
          <PermissionNote
            state={permissions.failover}
            action="fail over"
            permissionName={recoveryRunFailoverPermission.name}
          />
        )}
        <PermissionNote
          state={permissions.capture}
          id={captureNoteId}
          action="capture machines"
          permissionName={recoveryCaptureCreatePermission.name}
        />
      </Box>
    </>
  );
};
