/**
 * Shared types, permissions and annotation names of the recovery plugins.
 *
 * @packageDocumentation
 */
export * from './annotations';
export * from './permissions';
export * from './events';
export * from './types';
export * from './readinessWords';
export * from './duration';
export * from './api';
export * from './client';
export * from './errors';
export * from './captureFailed';
export * from './captureInTurn';
export * from './machineWaits';
export * from './entityRole';
export * from './runCoverage';
export * from './runTimeline';
export * from './isoTime';
export * from './recoveryPoint';
export * from './runInterrupted';
export * from './machineState';
