export { EntityRecoveryContent } from './EntityRecoveryContent';
