import { NotAllowedError } from '@backstage/errors';
import {
  ANNOTATION_CONTAINER,
  MACHINE_LABEL,
  machineLabelRef,
} from '@backstage-recovery/plugin-recovery-common';
import type { MachineLocator } from '@backstage-recovery/plugin-recovery-node';

/**
 * Whether a container's machine label names the machine a capture is for (machineLabelRef: its
 * entity ref, `resource:name`, or its name alone for a machine of the default namespace, as the
 * demo labels them). The label is set by whoever runs the container on the engine, unlike the
 * catalog's annotation, which any catalog author can point at any container.
 */
export function labelledAs(
  labels: Record<string, string> | undefined,
  machineRef: string,
): boolean {
  const label = labels?.[MACHINE_LABEL];
  return (
    label !== undefined &&
    machineLabelRef(label) === machineRef.toLocaleLowerCase('en-US')
  );
}

/**
 * Refuses the capture of a container not labelled as its machine, on an engine that captures only
 * those (requireMachineLabel): a machine entity may name any container on the engine.
 */
export function refuseUnlabelled(
  engineId: string,
  machine: MachineLocator,
  labels: Record<string, string> | undefined,
): void {
  if (labelledAs(labels, machine.machineRef)) return;
  const found = labels?.[MACHINE_LABEL];
  throw new NotAllowedError(
    `machine ${machine.machineRef}: container "${machine.container}" on engine ${engineId} is ` +
      `${found ? `labelled ${MACHINE_LABEL}=${found}` : `not labelled ${MACHINE_LABEL}`}, and this engine captures only containers ` +
      `labelled as their machine (recovery.docker.engines[${engineId}].requireMachineLabel): label the container ` +
      `${MACHINE_LABEL}=${machine.machineRef}, or correct the machine's ${ANNOTATION_CONTAINER} annotation`,
  );
}
