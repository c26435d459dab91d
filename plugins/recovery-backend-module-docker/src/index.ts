/**
 * Docker engines for Backstage Recovery: capture source, hypervisor host and event source.
 *
 * @packageDocumentation
 */
export { recoveryModuleDocker as default } from './module';
export { recoveryModuleDocker } from './module';
export { DockerCaptureSource } from './DockerCaptureSource';
export { CAPTURE_REPOSITORY, artifactPath } from './captureNames';
export {
  DockerHypervisorHost,
  type DockerHypervisorHostOptions,
} from './DockerHypervisorHost';
export {
  labNetworkName,
  MACHINE_REF_LABEL,
  CAPTURE_ID_LABEL,
  NETWORK_LABEL,
  PROBE_LABEL,
} from './labNames';
export { DEFAULT_PROBE_IMAGE } from './LabProbe';
export { DockerEventSource } from './DockerEventSource';
export {
  dockerEventToInitializationEvents,
  type DockerEventMessage,
} from './events';
export { adaptInspectedContainer, type NetworkIdentity } from './adapt';
export {
  readDockerModuleConfig,
  type DockerModuleConfig,
  type DockerEngineConfig,
  type EngineRole,
} from './config';
