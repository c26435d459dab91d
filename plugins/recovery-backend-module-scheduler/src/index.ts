/**
 * Scheduled captures and nightly readiness checks for the recovery backend.
 *
 * @packageDocumentation
 */
export { recoveryModuleScheduler as default } from './module';
