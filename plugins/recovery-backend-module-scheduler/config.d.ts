import { SchedulerServiceTaskScheduleDefinitionConfig } from '@backstage/backend-plugin-api';

export interface Config {
  recovery?: {
    schedules?: {
      /** When every primary machine is captured. Default: every hour at minute 0. */
      capture?: SchedulerServiceTaskScheduleDefinitionConfig;
      /** When each system's boot history is analysed for dependencies. Default: every 6 hours. */
      analysis?: SchedulerServiceTaskScheduleDefinitionConfig;
      /**
       * When every entity with a boot plan gets a test recovery, but those annotated
       * `recovery.backstage-recovery.io/nightly-check: 'false'`. Default: 02:30 every night, after
       * the 02:00 capture.
       */
      nightlyCheck?: SchedulerServiceTaskScheduleDefinitionConfig;
    };
  };
}
