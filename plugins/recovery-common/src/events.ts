/**
 * What an initialization event says happened.
 * `start`: the service initialized; `failure`: it failed (lowers the weight of a nearby
 * start); `clock`: a clock reading of the machine against the reference clock.
 *
 * @public
 */
export type InitializationEventType = 'start' | 'failure' | 'clock';

/**
 * One timestamped record from a machine's logs, normalized from any input format.
 *
 * @public
 */
export interface InitializationEvent {
  /** Epoch milliseconds, on the machine's own clock. */
  time: number;
  machine: string;
  service: string;
  type: InitializationEventType;
  /** For `clock` events: the reference clock (epoch ms) at the instant `time` was read. */
  reference?: number;
}
