import { Box, Button } from '@material-ui/core';
import { ResponseErrorPanel } from '@backstage/core-components';

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
    <ResponseErrorPanel error={error} />
    <Box mt={1}>
      <RetryButton onRetry={onRetry} />
    </Box>
  </>
);
