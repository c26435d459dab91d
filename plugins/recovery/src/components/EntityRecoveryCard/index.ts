export {
  CARD_TITLE,
  DEFAULT_POLL_INTERVAL_MS,
  EntityRecoveryCard,
  type EntityRecoveryCardProps,
} from './EntityRecoveryCard';
