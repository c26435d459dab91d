import { Box, makeStyles, Typography } from '@material-ui/core';
import type { AsyncPermissionResult } from '@backstage/plugin-permission-react';
import { errorMessage } from '../../api/RecoveryClient';

/** The layout the entity's recovery card and its parts share. */
export const useCardStyles = makeStyles(theme => ({
  // The backend's refusals name runs, entities and labels longer than the card is wide
  // (`recovery.backstage-recovery.io/run-id=<id>`): they break rather than run out of it. An
  // Alert's message is a flex item, which keeps a long word's width unless it may shrink.
  content: {
    overflowWrap: 'break-word',
    '& .MuiAlert-message': { overflowWrap: 'anywhere', minWidth: 0 },
  },
  section: {
    marginTop: theme.spacing(2),
  },
  sectionTitle: {
    marginBottom: theme.spacing(0.5),
  },
  actions: {
    display: 'flex',
    flexWrap: 'wrap',
    gap: theme.spacing(1),
    alignItems: 'center',
  },
}));

/** A titled section of the card, named by its title for screen readers. */
export const Section = ({
  title,
  children,
}: {
  title: string;
  children: React.ReactNode;
}) => {
  const classes = useCardStyles();
  return (
    <Box className={classes.section} component="section" aria-label={title}>
      {/* Under the card's h2: subtitle2 alone makes an h6, skipping levels. */}
      <Typography
        variant="subtitle2"
        component="h3"
        className={classes.sectionTitle}
      >
        {title}
      </Typography>
      {children}
    </Box>
  );
};

/** A note of the card, spaced as its sections are. */
export const CardNote = ({ children }: { children: React.ReactNode }) => {
  const classes = useCardStyles();
  return <Box className={classes.section}>{children}</Box>;
};

/** Whether {@link PermissionNote} says anything for this permission's state. */
export const permissionNoteShown = (state: AsyncPermissionResult) =>
  !state.loading && !state.allowed;

/**
 * Why an action's button is off for want of a permission. A check that failed (usePermission
 * gives `allowed: false` with an `error`) says nothing about the user: it is reported as a
 * failed check, not as a denial. Given an `id`, the button names it in `aria-describedby`: a
 * disabled button takes no focus, but a screen reader reads it with its description.
 */
export const PermissionNote = ({
  state,
  action,
  permissionName,
  id,
}: {
  state: AsyncPermissionResult;
  action: string;
  permissionName: string;
  id?: string;
}) => {
  if (!permissionNoteShown(state)) return null;
  return (
    <Typography variant="caption" color="textSecondary" id={id}>
      {state.error
        ? `Could not check whether you may ${action}: ${errorMessage(state.error)} (`
        : `You are not allowed to ${action} (`}
      <code>{permissionName}</code>).
    </Typography>
  );
};
