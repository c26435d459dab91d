import { SchedulerServiceTaskScheduleDefinitionConfig } from '@backstage/backend-plugin-api';
import { HumanDuration } from '@backstage/types';

export interface Config {
  /**
   * Durations below take sums of units (`90s`, `1h30m`, `500ms`) and what Backstage's schedules
   * take: ISO 8601 (`PT15M`), texts such as `2 minutes`, and objects of units (`{ minutes: 15 }`).
   */
  recovery?: {
    /**
     * Id of the hypervisor host recovery runs go to (for the Docker module, an engine's id); optional
     * when exactly one is registered. One that no module registered stops start-up, naming it.
     */
    hypervisorHost?: string;
    captureStore?: {
      /**
       * Intact captures kept per machine, an integer of at least 1; older ones are discarded (one
       * found damaged is not counted, and goes once that many intact ones are newer). Default 5.
       */
      keepLast?: number;
    };
    captures?: {
      /**
       * Longest the capture of one machine may take, e.g. `1h` for images of many gigabytes; more
       * than 0s. At it the capture stops its calls to the engine (one whose connection went silent
       * would hold it, and the machine, for good), unpauses production if it paused it, keeps
       * nothing, lets go of the machine for its next capture, and fails naming machine, engine and
       * this deadline; a scheduled capture goes on with the next machine. Keep it under the
       * scheduled capture's task timeout (`recovery.schedules.capture`). Default 30m.
       */
      timeout?: string | HumanDuration;
    };
    /** Objectives of entities without rpo/rto annotations. */
    objectives?: {
      /** Recovery point objective, e.g. `24h`; must be longer than 0s. Default 24h. */
      rpo?: string | HumanDuration;
      /** Recovery time objective, e.g. `1h`; must be longer than 0s. Default 1h. */
      rto?: string | HumanDuration;
      /**
       * Age past which the last test recovery no longer vouches for an entity (the machines have
       * changed since), e.g. `7d`; the entity is then at risk. Default 7d.
       */
      maxTestAge?: string | HumanDuration;
    };
    /**
     * Notices to entities' owners, through the Backstage notifications plugin
     * (`@backstage/plugin-notifications-backend`), when an entity stops being recoverable and
     * when it is again.
     */
    notifications?: {
      /** Default true; false sends none (a backend without the notifications plugin, say). */
      enabled?: boolean;
      /**
       * How often readiness is assessed for notices (task `recovery-readiness-notices`). Default
       * every 15 minutes, timeout 10 minutes, first a minute after start; one given here replaces
       * it whole (`frequency` and `timeout` both required). A frequency or timeout of zero or less,
       * a negative initial delay or a cron the scheduler cannot read stops start-up, naming this key.
       */
      schedule?: SchedulerServiceTaskScheduleDefinitionConfig;
    };
    analysis?: {
      /** Score an inferred dependency needs to enter boot plans, in (0, 1]. Default 0.7. */
      threshold?: number;
      /**
       * Technical names in the logs (exact, or `/regex/`) to catalog entity names, or to full
       * refs (`component:team-b/db`) where two entities of a system share a name.
       */
      serviceMap?: { [name: string]: string };
      /** Half-life of an initialization's weight with its age, e.g. `30d`; more than 0s. Default 90d. */
      halfLife?: string | HumanDuration;
      /**
       * Delay after a dependency at which a dependent's start counts most, e.g. `5m`, from 1s up
       * to (not including) 60m. Without it 10m, moved to the delay the boots show (with a warning)
       * when 15% or more of the dependencies they show score under the threshold at 10m, their
       * median delay under 6m or over 16m. A minute or less (e.g. `5s`, for containers that start
       * seconds after what they need) scales every window of the analysis with it.
       */
      kernelPeak?: string | HumanDuration;
      /**
       * The delay kernel's shape around its peak: `piecewise` (the default: linear up to the
       * peak and down from it), `gamma[:k]` (k over 1, default 3) or `lognormal[:sigma]` (default
       * 0.8); a larger k or a smaller sigma is narrower. Anything else fails start-up.
       */
      kernelShape?: string;
      /**
       * How far back from its machine's newest stored event an initialization event is kept,
       * e.g. `90d`; longer than 0s. Older ones are deleted, in batches, whenever an analysis runs.
       * Measured per machine (a system that has not rebooted for longer keeps its boots) and from
       * the newest event, not now (a pause in collection keeps the history a plan is learned
       * from). Default 180d: a boot order learned from older boots is stale.
       */
      eventRetention?: string | HumanDuration;
      /** Analyses kept per system, an integer of at least 1; older ones are deleted. Default 20. */
      keepLast?: number;
    };
    events?: {
      /**
       * Largest accepted POST /events body: a whole number of bytes (`1048576`, `512b`) or a
       * size with a unit kb, mb, gb, tb or pb (`512kb`, `1.5mb`); must be more than 0.
       * Other spellings (`10 megabytes`) fail start-up. Default `10mb`.
       */
      maxRequestSize?: string | number;
    };
    runs?: {
      /** How long a machine may take from start to passing its probes, e.g. `2m`; more than 0s. Default 2m. */
      machineReadyTimeout?: string | HumanDuration;
      /** Pause between two probe attempts, e.g. `1s`; more than 0s. Default 1s. */
      probeInterval?: string | HumanDuration;
      /**
       * Deadline of each other call to the hypervisor host (creating the lab, restoring one
       * machine, which loads its capture, reading a console tail, checking a ready machine again
       * before the run ends, tearing a lab down), e.g. `30m` for captures of many gigabytes; more
       * than 0s. Default 10m.
       */
      stepTimeout?: string | HumanDuration;
      /**
       * How long the last machine to get ready must stay up before the final check looks at every
       * machine again (running, not unhealthy, probes passing), e.g. `30s` for services that crash
       * a while after they answer; more than 0s. It lengthens the run, not its measured RTO. Default 5s.
       */
      minReadyTime?: string | HumanDuration;
      /** Accept options that exist only to test the product (reversed boot order). Default false. */
      allowTestHooks?: boolean;
      /**
       * How long a finished run is kept, with its machines and timeline, e.g. `30d`; more than 0s.
       * Older ones are deleted daily, in batches (task `recovery-run-retention`), but never a run
       * readiness rests on now (an entity's last run, its last failure since, the runs the latest
       * nightly check names), each entity's newest finished run, a failover, nor a run whose lab
       * is still on its host. Default 90d.
       */
      retention?: string | HumanDuration;
    };
  };
}
