import { SchedulerServiceTaskScheduleDefinitionConfig } from '@backstage/backend-plugin-api';

export interface Config {
  recovery?: {
    schedules?: {
      /** When every primary machine is captured. Default: every hour at minute 0. */
      capture?: SchedulerServiceTaskScheduleDefinitionConfig;
      /** When each system's boot history is analysed for dependencies. Default: every 6 hours. */
      analysis?: SchedulerServiceTaskScheduleDefinitionConfig;
      /** When entities annotated for it get a test recovery. Default: 02:00 every night. */
      nightlyCheck?: SchedulerServiceTaskScheduleDefinitionConfig;
    };
  };
}
