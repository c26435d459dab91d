/**
 * Docker engines for Backstage Recovery: capture source, hypervisor host and event source.
 *
 * @packageDocumentation
 */
export { recoveryModuleDocker as default } from './module';
export { CAPTURE_REPOSITORY } from './captureNames';
export { MACHINE_REF_LABEL } from './labNames';
