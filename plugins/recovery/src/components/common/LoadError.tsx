import { Box, Button } from '@material-ui/core';
import { Alert } from '@material-ui/lab';
import { couldNot } from '../../api/RecoveryClient';

/**
 * A "Retry" button for a load that failed, saying which (`Retry loading readiness`): one view
 * can show two at once (the card and the run history on the Recovery tab), which a bare "Retry"
 * would not tell apart, least of all in a screen reader's list of buttons.
 */
export const RetryButton = ({
  onRetry,
  what,
}: {
  onRetry: () => void;
  what: string;
}) => (
  <Button color="inherit" size="small" variant="outlined" onClick={onRetry}>
    Retry {what}
  </Button>
);

/**
 * The error of a load with nothing to show yet, and a way to try again: what could not be loaded,
 * the answer's status and the backend's own message (couldNot), never the body it answered (a
 * proxy's HTML page, a JSON dump).
 */
export const LoadErrorPanel = ({
  error,
  onRetry,
  what,
}: {
  error: Error;
  onRetry: () => void;
  /** What could not be loaded, `the run history`. */
  what: string;
}) => (
  <>
    <Alert severity="error" data-testid="load-error">
      {couldNot(`load ${what}`, error)}
    </Alert>
    <Box mt={1}>
      <RetryButton onRetry={onRetry} what={`loading ${what}`} />
    </Box>
  </>
);
