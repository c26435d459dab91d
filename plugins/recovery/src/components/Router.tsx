import { Route, Routes } from 'react-router-dom';
import { runRouteRef } from '../routes';
import { RecoveryOverviewPage } from './RecoveryOverviewPage';
import { RunPage } from './RunPage';

/**
 * The plugin's pages under its root (`/recovery`): the overview, and a run's page. `noHeader`
 * when the app already renders a page header (the new frontend system).
 */
export const Router = ({ noHeader }: { noHeader?: boolean }) => (
  <Routes>
    <Route path="/" element={<RecoveryOverviewPage noHeader={noHeader} />} />
    <Route path={runRouteRef.path} element={<RunPage noHeader={noHeader} />} />
  </Routes>
);
