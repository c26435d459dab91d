import { ConfigReader } from '@backstage/config';
import { loadConfigSchema } from '@backstage/config-loader';
import { readRecoveryConfig } from './config';

const read = (recovery: object, hosts: string[] = ['lab']) =>
  readRecoveryConfig(new ConfigReader({ recovery }), hosts);

describe('readRecoveryConfig', () => {
  it('gives the documented defaults where recovery.* says nothing', () => {
    expect(readRecoveryConfig(new ConfigReader({}), [])).toEqual({
      objectives: { rpoSeconds: 24 * 3600, rtoSeconds: 3600 },
      maxTestAgeSeconds: 7 * 24 * 3600,
      analysis: {
        threshold: 0.7,
        serviceMap: undefined,
        halfLifeMs: undefined,
        kernelShape: undefined,
        kernelPeakMs: undefined,
        eventRetentionMs: 180 * 24 * 3600_000,
        keepAnalyses: 20,
      },
      captures: { keepLast: 5, timeoutMs: undefined },
      runs: {
        hypervisorHost: undefined,
        machineReadyTimeoutMs: 120_000,
        probeIntervalMs: 1_000,
        stepTimeoutMs: 600_000,
        minReadyMs: 5_000,
        allowTestHooks: false,
      },
      notifications: {
        schedule: {
          frequency: { minutes: 15 },
          timeout: { minutes: 10 },
          initialDelay: { minutes: 1 },
        },
      },
      eventsMaxRequestSize: 10 * 1024 * 1024,
      runRetentionMs: 90 * 24 * 3600_000,
    });
  });

  it('reads every setting it is given', () => {
    const settings = read({
      hypervisorHost: 'lab',
      objectives: { rpo: '2h', rto: '15m', maxTestAge: '1d' },
      analysis: {
        threshold: 0.5,
        serviceMap: { 'nginx.service': 'component:default/web' },
        halfLife: '30d',
        kernelShape: 'gamma:3',
        kernelPeak: '5m',
        eventRetention: '60d',
        keepLast: 3,
      },
      captureStore: { keepLast: 2 },
      captures: { timeout: '20m' },
      runs: {
        machineReadyTimeout: '3m',
        probeInterval: '2s',
        stepTimeout: '4m',
        minReadyTime: '10s',
        allowTestHooks: true,
        retention: '30d',
      },
      notifications: { schedule: { frequency: { minutes: 5 }, timeout: '1m' } },
      events: { maxRequestSize: '512kb' },
    });
    expect(settings).toMatchObject({
      objectives: { rpoSeconds: 7200, rtoSeconds: 900 },
      maxTestAgeSeconds: 86_400,
      analysis: {
        threshold: 0.5,
        serviceMap: {
          services: { 'nginx.service': 'component:default/web' },
        },
        halfLifeMs: 30 * 86_400_000,
        kernelShape: 'gamma:3',
        kernelPeakMs: 300_000,
        eventRetentionMs: 60 * 86_400_000,
        keepAnalyses: 3,
      },
      captures: { keepLast: 2, timeoutMs: 1_200_000 },
      runs: {
        hypervisorHost: 'lab',
        machineReadyTimeoutMs: 180_000,
        probeIntervalMs: 2_000,
        stepTimeoutMs: 240_000,
        minReadyMs: 10_000,
        allowTestHooks: true,
      },
      eventsMaxRequestSize: 512 * 1024,
      runRetentionMs: 30 * 86_400_000,
    });
    expect(settings.notifications?.schedule.frequency).toEqual({ minutes: 5 });
  });

  it("reads durations in Backstage's forms too, as the schedules beside them", () => {
    const settings = read({
      objectives: { rpo: 'PT2H', rto: { minutes: 15 }, maxTestAge: '1 day' },
      analysis: { halfLife: 'P30D', kernelPeak: { minutes: 5 } },
      captures: { timeout: { hours: 1, minutes: 30 } },
      runs: {
        machineReadyTimeout: 'PT3M',
        probeInterval: { milliseconds: 500 },
        stepTimeout: '4 minutes',
        minReadyTime: 'PT10S',
      },
    });
    expect(settings).toMatchObject({
      objectives: { rpoSeconds: 7200, rtoSeconds: 900 },
      maxTestAgeSeconds: 86_400,
      analysis: { halfLifeMs: 30 * 86_400_000, kernelPeakMs: 300_000 },
      captures: { timeoutMs: 5_400_000 },
      runs: {
        machineReadyTimeoutMs: 180_000,
        probeIntervalMs: 500,
        stepTimeoutMs: 240_000,
        minReadyMs: 10_000,
      },
    });
  });

  it('refuses a wrong value naming its key', () => {
    expect(() => read({ objectives: { rpo: '24 hourz' } })).toThrow(
      'Invalid duration "24 hourz" at recovery.objectives.rpo',
    );
    expect(() => read({ objectives: { rto: { hour: 1 } } })).toThrow(
      'Invalid duration {"hour":1} at recovery.objectives.rto',
    );
    expect(() => read({ analysis: { eventRetention: 'PT0S' } })).toThrow(
      'Invalid duration "PT0S" at recovery.analysis.eventRetention: must be longer than 0s',
    );
    expect(() => read({ runs: { stepTimeout: '0s' } })).toThrow(
      'Invalid duration "0s" at recovery.runs.stepTimeout: must be longer than 0s',
    );
    expect(() => read({ runs: { retention: 'forever' } })).toThrow(
      'Invalid duration "forever" at recovery.runs.retention',
    );
    expect(() => read({ runs: { retention: '0d' } })).toThrow(
      'Invalid duration "0d" at recovery.runs.retention: must be longer than 0s',
    );
    expect(() => read({ captures: { timeout: 'soon' } })).toThrow(
      'at recovery.captures.timeout',
    );
    expect(() => read({ captureStore: { keepLast: 0 } })).toThrow(
      'Invalid recovery.captureStore.keepLast 0: captures kept per machine must be an integer of at least 1',
    );
    expect(() => read({ analysis: { keepLast: 1.5 } })).toThrow(
      'Invalid recovery.analysis.keepLast 1.5: analyses kept per system must be an integer of at least 1',
    );
    expect(() => read({ events: { maxRequestSize: '10 megabytes' } })).toThrow(
      'Invalid recovery.events.maxRequestSize "10 megabytes": use a positive size such as 512kb, 10mb or 1048576 (bytes)',
    );
    expect(() =>
      read({
        notifications: {
          schedule: { frequency: { minutes: 0 }, timeout: '1m' },
        },
      }),
    ).toThrow(
      'Invalid schedule at recovery.notifications.schedule: frequency must be longer than zero, got {"minutes":0}',
    );
  });

  it('refuses a recovery.hypervisorHost no module registered, naming those registered', () => {
    expect(() => read({ hypervisorHost: 'lba' }, ['lab', 'spare'])).toThrow(
      'Invalid recovery.hypervisorHost "lba": no module registered a hypervisor host of that id (registered: lab, spare)',
    );
    expect(() => read({ hypervisorHost: 'lab' }, [])).toThrow(
      '(registered: none)',
    );
  });

  it('leaves the notice schedule unread where notices are off', () => {
    const off = read({
      notifications: {
        enabled: false,
        schedule: { frequency: { minutes: 0 }, timeout: '1m' },
      },
    });
    expect(off.notifications).toBeUndefined();
  });
});

describe('the config schema, config.d.ts', () => {
  // What the backend checks app-config against at start, before readRecoveryConfig reads it.
  it('takes every duration form readRecoveryConfig reads', async () => {
    const schema = await loadConfigSchema({
      dependencies: ['@backstage-recovery/plugin-recovery-backend'],
      excludePackageDependencies: true,
    });
    const validate = (recovery: object) => () =>
      schema.process([{ context: 'app-config.yaml', data: { recovery } }]);
    expect(
      validate({
        objectives: { rpo: '24h', rto: 'PT1H', maxTestAge: { days: 7 } },
        analysis: { halfLife: '1h30m', kernelPeak: { minutes: 5 } },
        captures: { timeout: '2 minutes' },
        runs: { stepTimeout: { minutes: 10 }, minReadyTime: 'PT5S' },
      }),
    ).not.toThrow();
    expect(validate({ runs: { stepTimeout: { minutes: 'ten' } } })).toThrow(
      'at /recovery/runs/stepTimeout/minutes',
    );
  });
});
