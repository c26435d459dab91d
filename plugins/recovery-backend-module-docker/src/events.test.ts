import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import type { InitializationEvent } from '@backstage-recovery/plugin-recovery-common';
import { dockerEventToInitializationEvents } from './events';
import { DockerEventSource } from './DockerEventSource';

const base = {
  Type: 'container',
  id: 'c1',
  Actor: {
    ID: 'c1',
    Attributes: {
      name: 'data-01',
      'recovery.backstage-recovery.io/machine': 'data-01',
      'recovery.backstage-recovery.io/service': 'database,files',
    },
  },
  time: 1_700_000_000,
  timeNano: 1_700_000_000_123_000_000,
};

describe('dockerEventToInitializationEvents', () => {
  it('maps start to one start event per labelled service', () => {
    expect(dockerEventToInitializationEvents({ ...base, Action: 'start', status: 'start' })).toEqual([
      { time: 1_700_000_000_123, machine: 'data-01', service: 'database', type: 'start' },
      { time: 1_700_000_000_123, machine: 'data-01', service: 'files', type: 'start' },
    ]);
  });
  it('maps die with a non-zero exit code to failure, and ignores a clean exit', () => {
    const die = (exitCode: string) => ({
      ...base,
      Action: 'die',
      Actor: { ...base.Actor, Attributes: { ...base.Actor.Attributes, exitCode } },
    });
    expect(dockerEventToInitializationEvents(die('137')).map(e => e.type)).toEqual(['failure', 'failure']);
    expect(dockerEventToInitializationEvents(die('0'))).toEqual([]);
  });
  it('falls back to the container name without labels, and ignores other events', () => {
    expect(
      dockerEventToInitializationEvents({ ...base, Action: 'start', Actor: { ID: 'c1', Attributes: { name: 'web' } } }),
    ).toEqual([{ time: 1_700_000_000_123, machine: 'web', service: 'web', type: 'start' }]);
    expect(dockerEventToInitializationEvents({ ...base, Action: 'stop' })).toEqual([]);
    expect(dockerEventToInitializationEvents({ ...base, Type: 'network', Action: 'start' })).toEqual([]);
  });
});

describe('DockerEventSource', () => {
  it('reconnects after a failure and a disconnect, resuming since the last event without duplicates', async () => {
    const calls: any[] = [];
    const line = (id: string, nano: number) =>
      `${JSON.stringify({ ...base, id, Action: 'start', Actor: { ID: id, Attributes: { name: id } }, time: Math.floor(nano / 1e9), timeNano: nano })}\n`;
    const docker = {
      getEvents: async (opts: any) => {
        calls.push(opts);
        if (calls.length === 1) throw new Error('connect ENOENT');
        const s = new PassThrough();
        if (calls.length === 2) {
          setTimeout(() => {
            s.write(line('a', 1_700_000_001_000_000_000));
            s.end(line('b', 1_700_000_002_000_000_000));
          }, 5);
        } else {
          // the engine replays from `since` (whole seconds): b again, then c
          setTimeout(() => {
            s.write(line('b', 1_700_000_002_000_000_000));
            s.write(line('c', 1_700_000_003_000_000_000));
          }, 5);
        }
        return s;
      },
    } as unknown as Docker;
    const events: InitializationEvent[] = [];
    const abort = new AbortController();
    const src = new DockerEventSource('primary', docker, { minBackoffMs: 5, maxBackoffMs: 10, since: 1_699_999_999 });
    const done = src.start(async e => {
      events.push(...e);
      if (events.length === 3) abort.abort();
    }, abort.signal);
    await done;
    expect(events.map(e => e.machine)).toEqual(['a', 'b', 'c']);
    expect(calls[0].since).toBe(1_699_999_999);
    expect(calls[2].since).toBe(1_700_000_002);
    expect(calls[1].filters).toEqual({ type: ['container'], event: ['start', 'die'] });
  });
});
