import { useState } from 'react';
import {
  Box,
  Button,
  Dialog,
  DialogActions,
  DialogContent,
  DialogContentText,
  DialogTitle,
  MenuItem,
  TextField,
  Typography,
} from '@material-ui/core';
import { Alert } from '@material-ui/lab';
import {
  type BootPlan,
  recoveryRunFailoverPermission,
  type RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import { errorMessage } from '../../api/RecoveryClient';
import {
  formatCount,
  formatTime,
  runModeName,
  sameRef,
  entityLabel,
  machineName,
} from '../../utils/format';
import { pointLabel, useRecoveryPoints } from './RecoveryPointDialog';
import {
  type FailoverPermission,
  lackingEntities,
  useFailoverPermission,
} from '../../hooks';

/** The choice of no recovery point: every machine restores its newest kept capture. */
const LATEST = 'latest';

/**
 * What the permission framework says of the plan's machines and services (POST /runs asks
 * recovery.run.failover on each, as a release asks recovery.run.release): the entities lacking it,
 * or why it could not say. Nothing while allowed or still asking.
 */
function planDenial(
  permission: FailoverPermission,
  entity: string,
): { denied?: string; unchecked?: string } {
  if (permission.loading || permission.allowed) return {};
  const name = recoveryRunFailoverPermission.name;
  if (permission.error) {
    return {
      unchecked: `Could not check ${name} on the machines and services of the plan (${errorMessage(permission.error)}): the backend checks it when the failover starts.`,
    };
  }
  if (permission.entityDenied || !permission.lacking) {
    return {
      denied: `You are not allowed to fail over ${entity} (${name} on ${entity}).`,
    };
  }
  const { total, list } = lackingEntities(permission.lacking, entityLabel);
  return {
    denied:
      `A failover needs ${name} on each machine and service it boots, and you lack it on ` +
      `${formatCount(total, 'entity', 'entities')}: ${list}. ` +
      'The backend would refuse it: ask their owners, or the platform team.',
  };
}

/**
 * The confirmation a failover of an entity is started from: it says what a failover does (live
 * copies of the plan's machines on production's subnets, kept; production must be down or
 * isolated; release it later), offers the recovery points the kept captures allow besides the
 * latest captures, and starts nothing until the entity's name is typed in. `onStart` is called
 * with the point chosen (none: the latest captures) and the dialog stays open while the run
 * starts: it rejects with the backend's refusal of a point earlier than some machines' kept
 * captures, said here; the card says every other outcome. Mounted to be opened: it asks the
 * permission framework about each machine and service of the plan, and lists the kept captures.
 */
export const StartFailoverDialog = ({
  open,
  entityRef,
  entityName,
  plan,
  preempts,
  onClose,
  onStart,
}: {
  open: boolean;
  entityRef: string;
  /** The name to type in: the entity's `metadata.name`. */
  entityName: string;
  plan: BootPlan;
  /**
   * The test recovery holding the hypervisor host, which a failover interrupts: the host the
   * failover goes to is its host.
   */
  preempts?: RecoveryRun;
  onClose: () => void;
  onStart: (recoveryPoint?: string) => Promise<void> | void;
}) => {
  const [typed, setTyped] = useState('');
  const [point, setPoint] = useState(LATEST);
  const [starting, setStarting] = useState(false);
  const [refused, setRefused] = useState<Error | undefined>();
  const permission = useFailoverPermission({ entityRef, plan });
  const machineRefs = plan.machines.map(m => m.machineRef);
  const points = useRecoveryPoints(open, machineRefs);

  const entity = entityLabel(entityRef);
  const { denied, unchecked } = planDenial(permission, entity);
  const confirmed = typed.trim() === entityName;
  const start = async () => {
    setStarting(true);
    setRefused(undefined);
    try {
      await onStart(point === LATEST ? undefined : point);
    } catch (e) {
      setRefused(e as Error);
    } finally {
      setStarting(false);
    }
  };

  return (
    <Dialog
      open={open}
      onClose={onClose}
      aria-labelledby="start-failover-title"
      fullWidth
      maxWidth="sm"
    >
      <DialogTitle id="start-failover-title">Fail over {entity}?</DialogTitle>
      <DialogContent>
        <DialogContentText component="div">
          <Typography variant="body2" paragraph>
            A failover is not a test. It boots live copies of the{' '}
            {formatCount(machineRefs.length, 'machine', 'machines')} of {entity}
            's boot plan ({machineRefs.map(machineName).join(', ')}) on the
            hypervisor host
            {/* The backend's (recovery.hypervisorHost), which neither the plan nor readiness names:
                known here only where a test recovery holds it, which the failover preempts there. */}
            {preempts ? (
              <>
                {' '}
                <strong>{preempts.hypervisorHost}</strong>
              </>
            ) : null}
            , with production's addresses on production's subnets, on a network
            that is not isolated, and keeps them there to serve as production,
            even if the failover fails.
          </Typography>
          <Typography variant="body2" paragraph>
            Production must be down or isolated first: two live copies of the
            same machines on one network clash on their addresses and on the
            data they write. Once production runs on its primary machines again,
            release the failover (<strong>Release failover machines</strong> on
            the run) to remove what it kept; until then, test recoveries that
            need its machines or subnets are refused.
          </Typography>
          {preempts && (
            <Typography variant="body2" paragraph>
              The {runModeName(preempts.mode)}
              {sameRef(preempts.entityRef, entityRef)
                ? ''
                : ` of ${entityLabel(preempts.entityRef)}`}{' '}
              now on {preempts.hypervisorHost} (started{' '}
              {formatTime(preempts.startedAt ?? preempts.createdAt)}) is
              interrupted and its lab removed to make room.
            </Typography>
          )}
        </DialogContentText>
        {denied && <Alert severity="error">{denied}</Alert>}
        {unchecked && <Alert severity="warning">{unchecked}</Alert>}
        {refused && (
          <Alert severity="error">
            Could not start the failover: {errorMessage(refused)}
          </Alert>
        )}
        <Box mt={2}>
          <TextField
            id="start-failover-point"
            select
            fullWidth
            size="small"
            label="Recovery point"
            value={point}
            onChange={e => setPoint(e.target.value)}
            disabled={!points.value || points.value.length === 0}
            helperText={
              points.loading
                ? 'Listing the earlier points the kept captures allow…'
                : points.error
                  ? `Earlier points could not be listed (${errorMessage(points.error)}): the latest captures are restored.`
                  : point === LATEST
                    ? 'Each machine restores its newest kept capture.'
                    : 'Each machine restores its newest kept capture taken at or before this point.'
            }
          >
            <MenuItem value={LATEST}>Latest captures</MenuItem>
            {(points.value ?? []).map(p => (
              <MenuItem key={p} value={p}>
                {pointLabel(p, points.value!)}
              </MenuItem>
            ))}
          </TextField>
        </Box>
        <Box mt={2}>
          <TextField
            id="start-failover-confirm"
            fullWidth
            size="small"
            autoComplete="off"
            label={`Type ${entityName} to confirm`}
            value={typed}
            onChange={e => setTyped(e.target.value)}
          />
        </Box>
      </DialogContent>
      <DialogActions>
        <Button onClick={onClose}>Cancel</Button>
        <Button
          color="secondary"
          variant="contained"
          disabled={!confirmed || !!denied || permission.loading || starting}
          onClick={start}
        >
          {starting ? 'Starting failover…' : 'Fail over'}
        </Button>
      </DialogActions>
    </Dialog>
  );
};
