export { CancelRun } from './CancelRun';
