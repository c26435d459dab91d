export { LoadErrorPanel, RetryButton } from './LoadError';
export {
  PhaseView,
  ReadinessStatusView,
  RunStatusView,
  Status,
} from './StatusViews';
export { TimeAgo } from './TimeAgo';
