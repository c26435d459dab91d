/**
 * Docker engines for Backstage Recovery: capture source, hypervisor host and event source.
 *
 * @packageDocumentation
 */
export { recoveryModuleDocker as default } from './module';
export { recoveryModuleDocker } from './module';
export { DockerCaptureSource, CAPTURE_REPOSITORY, artifactPath } from './DockerCaptureSource';
export {
  DockerHypervisorHost,
  labNetworkName,
  DEFAULT_PROBE_IMAGE,
  MACHINE_REF_LABEL,
  CAPTURE_ID_LABEL,
  NETWORK_LABEL,
  PROBE_LABEL,
  type DockerHypervisorHostOptions,
} from './DockerHypervisorHost';
export { DockerEventSource } from './DockerEventSource';
export { dockerEventToInitializationEvents, type DockerEventMessage } from './events';
export { adaptInspectedContainer, type NetworkIdentity } from './adapt';
export { readDockerModuleConfig, type DockerModuleConfig, type DockerEngineConfig, type EngineRole } from './config';
