export { RecoveryOverviewPage } from './RecoveryOverviewPage';
