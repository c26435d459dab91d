import { SchedulerServiceTaskScheduleDefinitionConfig } from '@backstage/backend-plugin-api';

export interface Config {
  recovery?: {
    /**
     * A schedule given here replaces the default whole: `frequency` and `timeout` are both
     * required. Cron times are in the backend's time zone. A cron the scheduler cannot read, or a
     * frequency or timeout of zero or less, stops the backend at start, naming the key.
     */
    schedules?: {
      /**
       * When every primary machine is captured (task `recovery-capture`). Default: every hour at
       * minute 0, timeout 50 minutes. Keep the timeout above `recovery.captures.timeout`, each
       * machine's own deadline (default 30m).
       */
      capture?: SchedulerServiceTaskScheduleDefinitionConfig;
      /**
       * When each system's boot history is analysed for dependencies (task `recovery-analysis`).
       * Default: 00:30, 06:30, 12:30 and 18:30, timeout 30 minutes.
       */
      analysis?: SchedulerServiceTaskScheduleDefinitionConfig;
      /**
       * When every entity with a boot plan is checked by a test recovery, its own or that of a
       * larger plan covering it, but those annotated
       * `recovery.backstage-recovery.io/nightly-check: 'false'` (in any case; a value neither
       * false nor true is checked, and named in the summary) (task `recovery-nightly-check`).
       * The timeout is its time budget: how long it waits for a busy hypervisor host and for its
       * runs. Default: 02:30 every night, after the 02:00 capture, timeout 4 hours.
       */
      nightlyCheck?: SchedulerServiceTaskScheduleDefinitionConfig;
    };
  };
}
