/**
 * The recovery backend plugin.
 *
 * @packageDocumentation
 */
export { recoveryPlugin as default } from './plugin';
