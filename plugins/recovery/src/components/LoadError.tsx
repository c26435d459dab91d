import { Box, Button } from '@material-ui/core';
import { ResponseErrorPanel } from '@backstage/core-components';
import { errorMessage } from '../api/RecoveryClient';

/** A "Retry" button for a load that failed. */
export const RetryButton = ({ onRetry }: { onRetry: () => void }) => (
  <Button color="inherit" size="small" variant="outlined" onClick={onRetry}>
    Retry
  </Button>
);

/** The error panel of a load with nothing to show yet, and a way to try again. */
export const LoadErrorPanel = ({
  error,
  onRetry,
}: {
  error: Error;
  onRetry: () => void;
}) => (
  <>
    {/* Titled with the backend's own message: by default the title is only "Request failed with
        503 Service Unavailable", the reason folded away in the panel's details. */}
    <ResponseErrorPanel error={error} title={errorMessage(error)} />
    <Box mt={1}>
      <RetryButton onRetry={onRetry} />
    </Box>
  </>
);
