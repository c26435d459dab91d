import type { ReactNode } from 'react';
import { Link } from '@backstage/core-components';
import { useRouteRef } from '@backstage/core-plugin-api';
import { runRouteRef } from '../../routes';

/**
 * A run named in the portal (by its id, or by `children`: its time, say), linked to its page, which
 * follows it live and whose address can be shared. As any link of a plugin to its own page, it
 * needs that page mounted: the overview's route (`RecoveryOverviewPage` in a legacy app).
 */
export const RunLink = ({
  runId,
  children,
}: {
  runId: string;
  children?: ReactNode;
}) => {
  const runPage = useRouteRef(runRouteRef);
  return (
    <Link
      to={runPage({ runId })}
      title={`Run ${runId}`}
      // It opens the run's page: a table row it sits in is not selected as well (material-table
      // selects 250 ms after the click, on a page gone by then).
      onClick={event => event.stopPropagation()}
    >
      {children ?? runId}
    </Link>
  );
};
