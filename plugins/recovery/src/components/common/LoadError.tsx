import { Box, Button } from '@material-ui/core';
import { ResponseErrorPanel } from '@backstage/core-components';
import { errorMessage } from '../../api/RecoveryClient';

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

/** The error panel of a load with nothing to show yet, and a way to try again. */
export const LoadErrorPanel = ({
  error,
  onRetry,
  what,
}: {
  error: Error;
  onRetry: () => void;
  /** What the button retries, `loading the run history`. */
  what: string;
}) => (
  <>
    {/* Titled with the backend's own message: by default the title is only "Request failed with
        503 Service Unavailable", the reason folded away in the panel's details. */}
    <ResponseErrorPanel error={error} title={errorMessage(error)} />
    <Box mt={1}>
      <RetryButton onRetry={onRetry} what={what} />
    </Box>
  </>
);
