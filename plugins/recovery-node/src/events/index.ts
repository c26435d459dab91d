export * from './parse';
export {
  MAX_CLOCK_OFFSET,
  MAX_TIME,
  byReadingTime,
  ClockReach,
  nearestReading,
  offsetText,
  pastReachProblem,
  type ClockOffset,
  type EventOrigin,
  type OutOfReach,
} from './clock';
