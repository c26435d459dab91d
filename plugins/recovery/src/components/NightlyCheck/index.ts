export { NightlyCheckNote } from './NightlyCheckNote';
export {
  lastNightlyCheck,
  NightlyCheckSummary,
  notRunLastNight,
  refusedLastNight,
} from './NightlyCheckSummary';
