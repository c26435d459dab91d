import { useCallback } from 'react';
import { Typography } from '@material-ui/core';
import { Alert } from '@material-ui/lab';
import {
  Content,
  ContentHeader,
  Header,
  InfoCard,
  Link,
  Page,
  Progress,
} from '@backstage/core-components';
import { useRouteRef, useRouteRefParams } from '@backstage/core-plugin-api';
import { ResponseError } from '@backstage/errors';
import { useApi } from '@backstage/frontend-plugin-api';
import { EntityRefLink } from '@backstage/plugin-catalog-react';
import type { RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
import useAsyncRetry from 'react-use/esm/useAsyncRetry';
import { errorMessage, recoveryApiRef } from '../../api/RecoveryClient';
import { useRunPolling } from '../../hooks/useRunPolling';
import { rootRouteRef, runRouteRef } from '../../routes';
import { answerTimeoutMs, answerWithin } from '../../utils/answerWithin';
import { pollInterval, runModeName } from '../../utils/format';
import { LoadErrorPanel } from '../common';
import { DEFAULT_POLL_INTERVAL_MS } from '../EntityRecoveryCard';
import { RunDetails } from '../RunDetails';

/** The backend's answer for a run it does not have, or whose entity the catalog hides from the caller. */
function isRunNotFound(error: unknown): boolean {
  return (
    error instanceof ResponseError &&
    error.statusCode === 404 &&
    error.body?.error?.name === 'NotFoundError'
  );
}

const RunNotFound = ({ runId }: { runId: string }) => {
  const overview = useRouteRef(rootRouteRef);
  return (
    <Alert severity="warning" data-testid="run-not-found">
      No run {runId}: there is none by that id, or it is of an entity the
      catalog does not show you. The <Link to={overview()}>overview</Link> lists
      every entity&apos;s last run.
    </Alert>
  );
};

/** What the run was of (its entity, linked to its page) and where, above its details. */
const RunHeading = ({ run }: { run: RecoveryRun }) => (
  <ContentHeader
    titleComponent={
      <Typography variant="h4" component="h2">
        {runModeName(run.mode, true)} of{' '}
        <EntityRefLink entityRef={run.entityRef} />
      </Typography>
    }
    description={`On hypervisor host ${run.hypervisorHost}`}
  />
);

/** One run, loaded by its id and followed live while it is queued or running. */
const RunPageContent = ({
  runId,
  pollIntervalMs,
}: {
  runId: string;
  pollIntervalMs: number;
}) => {
  const api = useApi(recoveryApiRef);
  const {
    run,
    error: pollError,
    follow,
  } = useRunPolling({
    intervalMs: pollIntervalMs,
  });
  // The first answer starts the polling, which goes on until the run is over.
  const load = useCallback(async () => {
    const loaded = await answerWithin(api.getRun(runId), answerTimeoutMs());
    follow(loaded);
    return loaded;
  }, [api, runId, follow]);
  const first = useAsyncRetry(load, [load]);

  if (!run) {
    if (first.error) {
      return isRunNotFound(first.error) ? (
        <RunNotFound runId={runId} />
      ) : (
        <LoadErrorPanel
          error={first.error}
          onRetry={first.retry}
          what={`run ${runId}`}
        />
      );
    }
    return <Progress />;
  }
  return (
    <>
      <RunHeading run={run} />
      {pollError && (
        <Alert severity="warning">
          Lost contact with the run: {errorMessage(pollError)}. Retrying…
        </Alert>
      )}
      {/* Under the heading above: its Machines and Timeline are the page's h3s. */}
      <InfoCard>
        <RunDetails run={run} linked={false} />
      </InfoCard>
    </>
  );
};

/**
 * The page of one run, `/recovery/runs/:runId`: its entity, outcome, machines wave by wave and
 * timeline, polled every `pollIntervalMs` (1 s) while it runs. `noHeader` when the app already
 * renders a page header.
 */
export const RunPage = ({
  noHeader,
  pollIntervalMs,
}: {
  noHeader?: boolean;
  pollIntervalMs?: number;
}) => {
  const { runId } = useRouteRefParams(runRouteRef);
  const overview = useRouteRef(rootRouteRef);
  // Keyed by the run: another run's page starts afresh, with nothing of this one's.
  const content = (
    <Content>
      <RunPageContent
        key={runId}
        runId={runId}
        pollIntervalMs={pollInterval(pollIntervalMs, DEFAULT_POLL_INTERVAL_MS)}
      />
    </Content>
  );
  // A Page without its header too, as the catalog's entity pages: its <main> landmark.
  return (
    <Page themeId="tool">
      {noHeader ? null : (
        <Header title={`Run ${runId}`} type="Recovery" typeLink={overview()} />
      )}
      {content}
    </Page>
  );
};
