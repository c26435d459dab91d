/** Waiting in end-to-end tests: for what a real engine or process does in its own time. */

export const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

/** Milliseconds as seconds to a tenth, for the timings a test prints. */
export const seconds = (ms: number) => Math.round(ms / 100) / 10;

export { until } from '../../plugins/recovery-backend-module-docker/src/testing/until';
