import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import type { InitializationEvent } from '@backstage-recovery/plugin-recovery-common';
import { analyzeDependencies } from '@backstage-recovery/plugin-recovery-node';
import {
  DockerEventMapper,
  dockerEventToInitializationEvents,
  type DockerEventMessage,
} from './events';
import { DockerEventSource, MAX_EVENT_LINE_LENGTH } from './DockerEventSource';
import { resumeSecond } from './eventResume';

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

/**
 * An engine answering the event stream with `stream`; its buffer of past events is empty and
 * nothing runs, so the source finds no boots older than the buffer.
 */
const engine = (stream: (opts: any) => Promise<PassThrough>) =>
  ({
    getEvents: async (opts: any) =>
      opts.until !== undefined ? new PassThrough().end() : stream(opts),
    listContainers: async () => [],
  }) as unknown as Docker;

/** A logger whose warnings, written to the child logger of a source, land in `warnings` prefixed by that source. */
const sourceLogger = (warnings: string[]) =>
  ({
    child: ({ source }: { source: string }) => ({
      warn: (m: string) => warnings.push(`${source}: ${m}`),
      info: () => {},
    }),
  }) as any;

describe('dockerEventToInitializationEvents', () => {
  it('maps start to one start event per labelled service', () => {
    expect(
      dockerEventToInitializationEvents({
        ...base,
        Action: 'start',
        status: 'start',
      }),
    ).toEqual([
      {
        time: 1_700_000_000_123,
        machine: 'data-01',
        service: 'database',
        type: 'start',
      },
      {
        time: 1_700_000_000_123,
        machine: 'data-01',
        service: 'files',
        type: 'start',
      },
    ]);
  });
  it('maps die with a non-zero exit code to failure, and ignores a clean exit', () => {
    const die = (exitCode: string) => ({
      ...base,
      Action: 'die',
      Actor: {
        ...base.Actor,
        Attributes: { ...base.Actor.Attributes, exitCode },
      },
    });
    expect(
      dockerEventToInitializationEvents(die('137')).map(e => e.type),
    ).toEqual(['failure', 'failure']);
    expect(dockerEventToInitializationEvents(die('0'))).toEqual([]);
  });
  it('falls back to the container name without labels, and ignores other events', () => {
    expect(
      dockerEventToInitializationEvents({
        ...base,
        Action: 'start',
        Actor: { ID: 'c1', Attributes: { name: 'web' } },
      }),
    ).toEqual([
      {
        time: 1_700_000_000_123,
        machine: 'web',
        service: 'web',
        type: 'start',
      },
    ]);
    expect(
      dockerEventToInitializationEvents({ ...base, Action: 'stop' }),
    ).toEqual([]);
    expect(
      dockerEventToInitializationEvents({
        ...base,
        Type: 'network',
        Action: 'start',
      }),
    ).toEqual([]);
  });
});

describe('DockerEventSource', () => {
  it('reconnects after a failure and a disconnect, resuming since the last event without duplicates', async () => {
    const calls: any[] = [];
    const line = (id: string, nano: number) =>
      `${JSON.stringify({ ...base, id, Action: 'start', Actor: { ID: id, Attributes: { name: id } }, time: Math.floor(nano / 1e9), timeNano: nano })}\n`;
    const docker = engine(async (opts: any) => {
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
    });
    const events: InitializationEvent[] = [];
    const abort = new AbortController();
    const src = new DockerEventSource('primary', docker, {
      minBackoffMs: 5,
      maxBackoffMs: 10,
      since: 1_699_999_999,
    });
    const done = src.start(async e => {
      events.push(...e);
      if (events.length === 3) abort.abort();
    }, abort.signal);
    await done;
    expect(events.map(e => e.machine)).toEqual(['a', 'b', 'c']);
    expect(calls[0].since).toBe(1_699_999_999);
    expect(calls[2].since).toBe(1_700_000_002);
    expect(calls[1].filters).toEqual({
      type: ['container'],
      event: ['start', 'die', 'kill'],
    });
  });
});

describe('resumeSecond', () => {
  it('replays the event stored as the newest, also one the store rounded up into the next second', () => {
    // Docker's timeNano, and the whole ms the event store keeps of it (EventStore rounds).
    for (const nano of [
      1_700_000_002_999_000_000, 1_700_000_002_999_600_000,
      1_700_000_003_000_000_000, 1_700_000_003_000_400_000,
    ]) {
      const stored = Math.round(nano / 1e6);
      const since = resumeSecond(stored);
      expect(since * 1e9).toBeLessThanOrEqual(nano); // Docker replays events at or after since
      expect(since).toBeGreaterThanOrEqual(Math.floor(nano / 1e9) - 1); // and not much more
    }
    expect(resumeSecond(1_700_000_003_000)).toBe(1_700_000_002);
    expect(resumeSecond(1_700_000_003_001)).toBe(1_700_000_003);
  });
});

describe('DockerEventSource on a silent connection', () => {
  it('opens the stream again when nothing comes for the idle time, from the newest event seen', async () => {
    const abort = new AbortController();
    const opened: number[] = [];
    const docker = engine(async opts => {
      opened.push(opts.since);
      const stream = new PassThrough();
      // The first connection delivers one start, then goes silent and never ends (a dead peer).
      if (opened.length === 1)
        stream.write(
          `${JSON.stringify({ ...base, Action: 'start', status: 'start' })}\n`,
        );
      else
        stream.write(
          `${JSON.stringify({ ...base, id: 'c2', Actor: { ...base.Actor, ID: 'c2' }, Action: 'start', status: 'start', timeNano: base.timeNano + 5e9 })}\n`,
        );
      return stream;
    });
    const stored: InitializationEvent[] = [];
    const giveUp = setTimeout(() => abort.abort(), 5_000);
    await new DockerEventSource('primary', docker, {
      since: 1,
      idleReconnectMs: 100,
    }).start(async e => {
      stored.push(...e);
      if (stored.length >= 4) abort.abort();
    }, abort.signal);
    clearTimeout(giveUp);
    // Reopened from the second of the event the first connection brought, without backoff.
    expect(opened.slice(0, 2)).toEqual([1, 1_700_000_000]);
    expect(stored.map(e => e.time)).toEqual([
      1_700_000_000_123, 1_700_000_000_123, 1_700_000_005_123,
      1_700_000_005_123,
    ]);
  });
});

describe('DockerEventSource boots older than the buffer', () => {
  it('reads them at the first connection the engine answers, not only at the first attempt', async () => {
    let attempts = 0;
    const abort = new AbortController();
    const docker = {
      getEvents: async (opts: any) => {
        // Down for the first attempt: both the buffer read and the stream fail.
        if (++attempts <= 2) throw new Error('connect ENOENT');
        return opts.until !== undefined
          ? new PassThrough().end()
          : new PassThrough();
      },
      listContainers: async () => [{ Id: 'c9', Created: 1_700_000_000 }],
      getContainer: () => ({
        inspect: async () => ({
          Id: 'c9',
          Name: '/m9',
          State: { Running: true, StartedAt: '2023-11-14T22:13:20.123456789Z' },
          Config: { Labels: {} },
        }),
      }),
    } as unknown as Docker;
    const events: InitializationEvent[] = [];
    const giveUp = setTimeout(() => abort.abort(), 2_000);
    await new DockerEventSource('primary', docker, { minBackoffMs: 5 }).start(
      async e => {
        events.push(...e);
        abort.abort();
      },
      abort.signal,
    );
    clearTimeout(giveUp);
    expect(attempts).toBeGreaterThan(2);
    expect(events.map(e => ({ ...e, time: Math.round(e.time) }))).toEqual([
      { machine: 'm9', service: 'm9', type: 'start', time: 1_700_000_000_123 },
    ]);
  });
});

describe('DockerEventSource boots older than the buffer, read late', () => {
  it('does not add a boot whose start event the stream delivered before', async () => {
    let attempts = 0;
    const abort = new AbortController();
    const started = {
      ...base,
      id: 'c9',
      Action: 'start',
      Actor: { ID: 'c9', Attributes: { name: 'm9' } },
    };
    const docker = {
      getEvents: async (opts: any) => {
        attempts++;
        // The first buffer read fails; the stream then delivers the boot and drops; by the
        // second buffer read the engine has evicted that start event.
        if (attempts === 1) throw new Error('connect ECONNRESET');
        if (opts.until !== undefined) return new PassThrough().end();
        if (attempts === 2)
          return new PassThrough().end(`${JSON.stringify(started)}\n`);
        setTimeout(() => abort.abort(), 50);
        return new PassThrough();
      },
      listContainers: async () => [{ Id: 'c9', Created: 1_700_000_000 }],
      getContainer: () => ({
        inspect: async () => ({
          Id: 'c9',
          Name: '/m9',
          // A few ms before its start event (base.timeNano), as on a real engine.
          State: { Running: true, StartedAt: '2023-11-14T22:13:20.120000000Z' },
          Config: { Labels: {} },
        }),
      }),
    } as unknown as Docker;
    const events: InitializationEvent[] = [];
    await new DockerEventSource('primary', docker, { minBackoffMs: 5 }).start(
      async e => {
        events.push(...e);
      },
      abort.signal,
    );
    expect(attempts).toBe(4);
    expect(events).toEqual([
      { machine: 'm9', service: 'm9', type: 'start', time: 1_700_000_000_123 },
    ]);
  });
});

describe('DockerEventSource boots older than the buffer, a container removed meanwhile', () => {
  it('adds the boots of the others when one is removed between the list and its inspect', async () => {
    const abort = new AbortController();
    const docker = {
      getEvents: async (opts: any) =>
        opts.until !== undefined ? new PassThrough().end() : new PassThrough(),
      listContainers: async () => [
        { Id: 'c8', Created: 1_700_000_000 },
        { Id: 'c9', Created: 1_700_000_000 },
      ],
      getContainer: (id: string) => ({
        inspect: async () => {
          // c8 ran with --rm and exited after the list.
          if (id === 'c8')
            throw Object.assign(new Error('no such container: c8'), {
              statusCode: 404,
            });
          return {
            Id: 'c9',
            Name: '/m9',
            State: {
              Running: true,
              StartedAt: '2023-11-14T22:13:20.123456789Z',
            },
            Config: { Labels: {} },
          };
        },
      }),
    } as unknown as Docker;
    const events: InitializationEvent[] = [];
    const warnings: string[] = [];
    const logger = sourceLogger(warnings);
    const giveUp = setTimeout(() => abort.abort(), 1_000);
    await new DockerEventSource('primary', docker, {
      minBackoffMs: 5,
      logger,
    }).start(async e => {
      events.push(...e);
      abort.abort();
    }, abort.signal);
    clearTimeout(giveUp);
    expect(warnings).toEqual([]);
    expect(events.map(e => ({ ...e, time: Math.round(e.time) }))).toEqual([
      { machine: 'm9', service: 'm9', type: 'start', time: 1_700_000_000_123 },
    ]);
  });
});

describe('DockerEventSource boots older than the buffer, on an engine whose container list hangs', () => {
  it('gives up on them in time, warning, and streams the events', async () => {
    const abort = new AbortController();
    const docker = {
      getEvents: async (opts: any) =>
        opts.until !== undefined
          ? new PassThrough().end()
          : new PassThrough().end(
              `${JSON.stringify({ ...base, Action: 'start' })}\n`,
            ),
      // Answers only when given up on: a container stuck in its kill holds dockerd's list.
      listContainers: (opts: any) =>
        new Promise((_, reject) =>
          opts?.abortSignal?.addEventListener('abort', () =>
            reject(new Error('aborted')),
          ),
        ),
    } as unknown as Docker;
    const events: InitializationEvent[] = [];
    const warnings: string[] = [];
    const logger = sourceLogger(warnings);
    const giveUp = setTimeout(() => abort.abort(), 2_000);
    await new DockerEventSource('primary', docker, {
      minBackoffMs: 5,
      catchUpTimeoutMs: 50,
      logger,
    }).start(async e => {
      events.push(...e);
      abort.abort();
    }, abort.signal);
    clearTimeout(giveUp);
    expect(events.map(e => e.service)).toEqual(['database', 'files']);
    expect(warnings[0]).toBe(
      "docker:primary: Could not read boots older than the engine's event buffer: the engine did not answer within 50 ms",
    );
  }, 5_000);

  it('stops while it looks for them', async () => {
    const abort = new AbortController();
    const docker = {
      getEvents: async () => new PassThrough().end(),
      listContainers: (opts: any) =>
        new Promise((_, reject) =>
          opts?.abortSignal?.addEventListener('abort', () =>
            reject(new Error('aborted')),
          ),
        ),
    } as unknown as Docker;
    setTimeout(() => abort.abort(), 20);
    // Ends, rather than waits for an answer that never comes.
    await expect(
      new DockerEventSource('primary', docker, { minBackoffMs: 5 }).start(
        async () => {},
        abort.signal,
      ),
    ).resolves.toBeUndefined();
  }, 5_000);
});

describe('DockerEventSource reading the stream', () => {
  it('decodes a character the chunks cut in two, and drops an over-long line, warning, keeping the events around it', async () => {
    const stream = new PassThrough();
    const abort = new AbortController();
    const warnings: string[] = [];
    const logger = sourceLogger(warnings);
    const stored: InitializationEvent[] = [];
    const giveUp = setTimeout(() => abort.abort(), 5_000);
    const done = new DockerEventSource(
      'primary',
      engine(async () => stream),
      { since: 1, logger },
    ).start(async e => {
      stored.push(...e);
      if (stored.length === 2) abort.abort();
    }, abort.signal);
    const start = (id: string, name: string, nano: number) =>
      JSON.stringify({
        ...base,
        id,
        Action: 'start',
        Actor: { ID: id, Attributes: { name } },
        time: Math.floor(nano / 1e9),
        timeNano: nano,
      });
    const first = Buffer.from(
      `${start('c1', 'café-01', 1_700_000_001_000_000_000)}\n`,
    );
    const cut = first.indexOf(0xc3) + 1; // between the two bytes of "é"
    // Past the limit before its end: dropped without being held whole.
    const long = `{"junk":"${'x'.repeat(MAX_EVENT_LINE_LENGTH)}"}`;
    const chunks = [
      first.subarray(0, cut),
      first.subarray(cut),
      long.slice(0, 1000),
      long.slice(1000),
      `\n${start('c2', 'web-01', 1_700_000_002_000_000_000)}\n`,
    ];
    // One chunk at a time, each read before the next is written, as the engine's socket brings them.
    for (const chunk of chunks) {
      stream.write(Buffer.from(chunk));
      await new Promise(r => setImmediate(r));
    }
    await done;
    clearTimeout(giveUp);
    expect(stored.map(e => e.machine)).toEqual(['café-01', 'web-01']);
    expect(warnings).toEqual([
      `docker:primary: Dropped an event line of ${long.length} characters from Docker engine primary (limit ${MAX_EVENT_LINE_LENGTH})`,
    ]);
  });
});

describe('DockerEventSource backpressure', () => {
  it('stops reading the stream while event batches wait to be stored', async () => {
    const stream = new PassThrough();
    const docker = engine(async () => stream);
    const line = (n: number) =>
      `${JSON.stringify({ ...base, id: `c${n}`, Action: 'start', Actor: { ID: `c${n}`, Attributes: { name: `m${n}` } }, time: 1_700_000_000 + n, timeNano: (1_700_000_000 + n) * 1e9 })}\n`;
    let release!: () => void;
    const blocked = new Promise<void>(r => (release = r));
    let stored = 0;
    const abort = new AbortController();
    const done = new DockerEventSource('primary', docker, { since: 1 }).start(
      async () => {
        await blocked;
        stored++;
      },
      abort.signal,
    );
    // One event per chunk: after the bound, the source must stop consuming chunks.
    for (let n = 0; n < 50; n++) {
      stream.write(line(n));
      await new Promise(r => setImmediate(r));
    }
    const unread = stream.readableLength;
    expect(unread).toBeGreaterThan(0);
    release();
    await new Promise(r => setTimeout(r, 50));
    expect(stream.readableLength).toBeLessThan(unread);
    abort.abort();
    await done;
    expect(stored).toBeGreaterThan(9);
  });
});

describe('DockerEventSource storing', () => {
  const line = (n: number) =>
    `${JSON.stringify({ ...base, id: `c${n}`, Action: 'start', Actor: { ID: `c${n}`, Attributes: { name: `m${n}` } }, time: 1_700_000_000 + n, timeNano: (1_700_000_000 + n) * 1e9 })}\n`;

  it('retries a batch it could not store, reading no further meanwhile, and loses none', async () => {
    const stream = new PassThrough();
    let connections = 0;
    const docker = engine(async (opts: any) => {
      if (++connections === 1) return stream;
      // Reconnected once storing recovered: the engine replays its buffer from `since`.
      const replay = new PassThrough();
      for (let n = 0; n < 5; n++)
        if (1_700_000_000 + n >= opts.since) replay.write(line(n));
      return replay;
    });
    let outage = true;
    let attempts = 0;
    const stored: string[] = [];
    const abort = new AbortController();
    const done = new DockerEventSource('primary', docker, {
      since: 1,
      minBackoffMs: 5,
      maxBackoffMs: 20,
    }).start(async events => {
      attempts++;
      if (outage) throw new Error('database unavailable');
      stored.push(...events.map(e => e.machine));
    }, abort.signal);
    for (let n = 0; n < 5; n++) {
      stream.write(line(n));
      await new Promise(r => setImmediate(r));
    }
    await new Promise(r => setTimeout(r, 100));
    expect(attempts).toBeGreaterThan(2);
    expect(stored).toEqual([]);
    expect(stream.readableLength).toBeGreaterThan(0); // paused behind the failing batch
    outage = false;
    const deadline = Date.now() + 2_000;
    while (stored.length < 5 && Date.now() < deadline)
      await new Promise(r => setTimeout(r, 10));
    abort.abort();
    await done;
    expect(stored).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
  });

  it('starts from the newest stored event it is given, and stops if stopped while connecting', async () => {
    const calls: any[] = [];
    const abort = new AbortController();
    const docker = engine(async (opts: any) => {
      calls.push(opts);
      abort.abort();
      return new PassThrough();
    });
    await new DockerEventSource('primary', docker, { since: 1 }).start(
      async () => {},
      abort.signal,
      {
        since: 1_700_000_002_999,
      },
    );
    expect(calls[0].since).toBe(1_700_000_002);
  });
});

/** A start event of container `id`, named `id`, at `nano` (epoch ns), as a line of the stream. */
const startLine = (id: string, nano: number) =>
  `${JSON.stringify({ ...base, id, Action: 'start', Actor: { ID: id, Attributes: { name: id } }, time: Math.floor(nano / 1e9), timeNano: nano })}\n`;

describe('DockerEventSource event order', () => {
  it('delivers events the engine sends slightly out of time order, and skips their replay after a reconnect', async () => {
    const calls: any[] = [];
    const a = 1_700_000_002_100_000_000;
    const b = 1_700_000_001_900_000_000; // concurrent with a, in the second before
    const c = 1_700_000_002_050_000_000; // concurrent with a, in the same second
    const d = 1_700_000_003_000_000_000;
    const docker = engine(async (opts: any) => {
      calls.push(opts);
      if (calls.length === 1)
        return new PassThrough().end(
          startLine('a', a) + startLine('b', b) + startLine('c', c),
        );
      // The engine replays from `since` (whole seconds, in its buffer's order): a and c again.
      return new PassThrough().end(
        startLine('a', a) + startLine('c', c) + startLine('d', d),
      );
    });
    const events: InitializationEvent[] = [];
    const abort = new AbortController();
    const giveUp = setTimeout(() => abort.abort(), 2_000);
    await new DockerEventSource('primary', docker, {
      minBackoffMs: 5,
      since: 1_699_999_999,
    }).start(async e => {
      events.push(...e);
      if (events.some(x => x.machine === 'd')) abort.abort();
    }, abort.signal);
    clearTimeout(giveUp);
    expect(events.map(e => e.machine)).toEqual(['a', 'b', 'c', 'd']);
    expect(calls[1].since).toBe(1_700_000_002); // the newest event's second, not the last one's
  });
});

describe('DockerEventSource boots older than the buffer, after an engine restart', () => {
  it('reads them again at the reconnect, as the restart may have pushed its starts out of the buffer', async () => {
    let streams = 0;
    let restarted = false;
    const abort = new AbortController();
    const docker = {
      getEvents: async (opts: any) => {
        if (opts.until !== undefined) {
          // After the restart the buffer holds only events newer than c9's start.
          const exec = {
            Type: 'container',
            Action: 'exec_start',
            id: 'c9',
            time: 1_700_000_010,
            timeNano: 1_700_000_010e9,
          };
          return new PassThrough().end(
            restarted ? `${JSON.stringify(exec)}\n` : '',
          );
        }
        if (++streams === 1) {
          // One start, then the engine restarts: the stream ends.
          restarted = true;
          return new PassThrough().end(
            startLine('a', 1_700_000_001_000_000_000),
          );
        }
        return new PassThrough();
      },
      // Nothing runs before the restart; c9 was booted by it.
      listContainers: async () =>
        restarted ? [{ Id: 'c9', Created: 1_700_000_002 }] : [],
      getContainer: () => ({
        inspect: async () => ({
          Id: 'c9',
          Name: '/m9',
          State: { Running: true, StartedAt: '2023-11-14T22:13:25.500000000Z' },
          Config: { Labels: {} },
        }),
      }),
    } as unknown as Docker;
    const events: InitializationEvent[] = [];
    const giveUp = setTimeout(() => abort.abort(), 2_000);
    await new DockerEventSource('primary', docker, {
      minBackoffMs: 5,
      since: 1,
    }).start(async e => {
      events.push(...e);
      if (events.length >= 2) abort.abort();
    }, abort.signal);
    clearTimeout(giveUp);
    expect(events.map(e => ({ ...e, time: Math.round(e.time) }))).toEqual([
      { machine: 'a', service: 'a', type: 'start', time: 1_700_000_001_000 },
      { machine: 'm9', service: 'm9', type: 'start', time: 1_700_000_005_500 },
    ]);
  });
});

describe('DockerEventSource after a store outage', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('reconnects at once from the last event seen, so the engine replays what it skipped while not read', async () => {
    // The clock moves only as the test says: what happens at an instant happens there, however
    // loaded the machine running the test.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const line = (n: number) => startLine(`m${n}`, (1_700_000_000 + n) * 1e9);
    const first = new PassThrough();
    const calls: { since: number; at: number }[] = [];
    const docker = engine(async (opts: any) => {
      calls.push({ since: opts.since, at: Date.now() });
      if (calls.length === 1) return first;
      // The engine's buffer, replayed from `since`.
      const s = new PassThrough();
      for (let n = 0; n < 4; n++)
        if (1_700_000_000 + n >= opts.since) s.write(line(n));
      return s;
    });
    let outage = true;
    let recoveredAt = 0;
    const stored: string[] = [];
    const abort = new AbortController();
    const done = new DockerEventSource('primary', docker, {
      since: 1,
      minBackoffMs: 200,
      maxBackoffMs: 200,
    }).start(async events => {
      if (outage) throw new Error('database unavailable');
      stored.push(...events.map(e => e.machine));
      recoveredAt ||= Date.now();
    }, abort.signal);
    first.write(line(0));
    await vi.advanceTimersByTimeAsync(20); // storing m0 failed; retried in 200 ms
    first.write(line(1)); // read, then reading waits for the store
    await vi.advanceTimersByTimeAsync(20);
    // The subscriber does not read: the engine skips m2 for it, then sends m3.
    first.write(line(3));
    outage = false;
    // To the retry: the store takes m0, then m1, and the source reconnects at that instant,
    // without the 200 ms reconnect backoff, which the clock has not reached.
    await vi.advanceTimersByTimeAsync(160);
    expect(stored).toEqual(['m0', 'm1', 'm2', 'm3']);
    expect(first.destroyed).toBe(true);
    expect(calls).toEqual([
      { since: 1, at: expect.any(Number) },
      { since: 1_700_000_001, at: recoveredAt },
    ]);
    abort.abort();
    await done;
  });
});

describe('dockerEventToInitializationEvents parsing', () => {
  // The stream parses each line once; a raw line here was parsed a second time.
  it('takes parsed messages only, and parses each once', () => {
    expectTypeOf(dockerEventToInitializationEvents)
      .parameter(0)
      .toEqualTypeOf<DockerEventMessage>();
    const parse = vi.spyOn(JSON, 'parse');
    try {
      expect(
        dockerEventToInitializationEvents({ ...base, Action: 'start' }),
      ).toHaveLength(2);
      expect(parse).toHaveBeenCalledTimes(1);
      parse.mockClear();
      // A lab container's event is skipped before the parser.
      const labAttributes = {
        ...base.Actor.Attributes,
        'recovery.backstage-recovery.io/run-id': 'run-1',
      };
      expect(
        dockerEventToInitializationEvents({
          ...base,
          Action: 'start',
          Actor: { ID: 'c2', Attributes: labAttributes },
        }),
      ).toEqual([]);
      expect(parse).not.toHaveBeenCalled();
    } finally {
      parse.mockRestore();
    }
  });
});

describe('dockerEventToInitializationEvents of lab containers', () => {
  // A lab container copies production's machine/service labels; its boots and teardown kills
  // are no production history.
  const lab = (Action: string, extra: Record<string, string>) => ({
    ...base,
    Action,
    Actor: {
      ID: 'c2',
      Attributes: {
        ...base.Actor.Attributes,
        name: 'rr-run-123-data-01-1234abcd',
        'recovery.backstage-recovery.io/run-id': 'run-123',
        ...extra,
      },
    },
  });

  it('skips the start and the teardown kill of a restored machine', () => {
    expect(dockerEventToInitializationEvents(lab('start', {}))).toEqual([]);
    expect(
      dockerEventToInitializationEvents(lab('die', { exitCode: '137' })),
    ).toEqual([]);
    // The same for a raw `docker events` line, once parsed as the stream parses it.
    expect(
      dockerEventToInitializationEvents(
        JSON.parse(JSON.stringify(lab('die', { exitCode: '137' }))),
      ),
    ).toEqual([]);
  });

  it('skips the probe container', () => {
    const probe = {
      ...base,
      Action: 'die',
      Actor: {
        ID: 'p1',
        Attributes: {
          name: 'rr-run-123-probe',
          'recovery.backstage-recovery.io/run-id': 'run-123',
          'recovery.backstage-recovery.io/probe': 'true',
          exitCode: '137',
        },
      },
    };
    expect(dockerEventToInitializationEvents(probe)).toEqual([]);
    expect(
      dockerEventToInitializationEvents({ ...probe, Action: 'start' }),
    ).toEqual([]);
  });
});

describe('DockerEventMapper', () => {
  // Sequences as Docker 20.10 sends them (see DockerEventSource.docker.test.ts for the real engine).
  let nano = 1_700_000_000_000_000_000;
  const event = (
    Action: string,
    attributes: Record<string, string> = {},
    id = 'c1',
  ): DockerEventMessage => ({
    ...base,
    id,
    Action,
    status: Action,
    Actor: { ID: id, Attributes: { ...base.Actor.Attributes, ...attributes } },
    timeNano: (nano += 1_000_000_000),
    time: Math.floor(nano / 1e9),
  });
  const kinds = (mapper: DockerEventMapper, messages: DockerEventMessage[]) =>
    messages.map(
      m =>
        mapper
          .map(m)
          .map(e => `${e.service}:${e.type}`)
          .join(' ') || '-',
    );

  it("takes an operator's docker stop or restart for no failure, whatever the exit code", () => {
    const mapper = new DockerEventMapper();
    expect(
      kinds(mapper, [
        event('start'),
        // docker stop of a process that does not trap SIGTERM: killed once the timeout ran out
        event('kill', { signal: '15' }),
        event('kill', { signal: '9' }),
        event('die', { exitCode: '137' }),
        event('stop'),
        // docker restart of one that exits on SIGTERM
        event('start'),
        event('kill', { signal: '15' }),
        event('die', { exitCode: '143' }),
        event('stop'),
        event('start'),
        event('restart'),
        // docker kill
        event('kill', { signal: '9' }),
        event('die', { exitCode: '137' }),
      ]),
    ).toEqual([
      'database:start files:start',
      '-',
      '-',
      '-',
      '-',
      'database:start files:start',
      '-',
      '-',
      '-',
      'database:start files:start',
      '-',
      '-',
      '-',
    ]);
  });

  it("still takes a crash, a restart policy's loop and an OOM kill for failures", () => {
    const mapper = new DockerEventMapper();
    expect(
      kinds(mapper, [
        event('start'),
        event('die', { exitCode: '3' }),
        event('start'),
        event('die', { exitCode: '3' }),
        event('start'),
        event('oom'),
        event('die', { exitCode: '137' }),
      ]),
    ).toEqual([
      'database:start files:start',
      'database:failure files:failure',
      'database:start files:start',
      'database:failure files:failure',
      'database:start files:start',
      '-',
      'database:failure files:failure',
    ]);
  });

  it("counts a failure after a stop that came to nothing, a reload signal, or another container's stop", () => {
    const mapper = new DockerEventMapper();
    expect(
      kinds(mapper, [
        event('start'),
        // a stop the container survived (its die never came): the next start forgets it
        event('kill', { signal: '15' }),
        event('start'),
        event('die', { exitCode: '1' }),
        event('start'),
        // a reload: the process keeps running
        event('kill', { signal: '1' }),
        event('die', { exitCode: '1' }),
        event('start'),
        event('kill', { signal: '15' }, 'c2'),
        event('die', { exitCode: '2' }),
      ]),
    ).toEqual([
      'database:start files:start',
      '-',
      'database:start files:start',
      'database:failure files:failure',
      'database:start files:start',
      '-',
      'database:failure files:failure',
      'database:start files:start',
      '-',
      'database:failure files:failure',
    ]);
  });
});

describe('DockerEventMapper in the analysis', () => {
  it("learns from an operator's docker restarts of a machine that the machine whose service they knock out waits for it", () => {
    const MIN = 60_000;
    const message = (
      machine: string,
      Action: string,
      ms: number,
      attributes: Record<string, string> = {},
    ): DockerEventMessage => ({
      Type: 'container',
      id: machine,
      Action,
      Actor: { ID: machine, Attributes: { name: machine, ...attributes } },
      time: Math.floor(ms / 1000),
      timeNano: ms * 1e6,
    });
    const messages: DockerEventMessage[] = [];
    let t = Date.UTC(2026, 0, 1);
    for (let day = 0; day < 6; day++) {
      // The site boots, all within a few seconds: too close for an order.
      for (const [k, machine] of [
        'infra-01',
        'data-01',
        'web-01',
        'm1',
        'm2',
        'm3',
        'm4',
        'm5',
      ].entries()) {
        messages.push(message(machine, 'start', t + k * 3000));
      }
      t += 12 * 60 * MIN;
      // docker restart data-01 (its process ignores SIGTERM): web crashes as it goes, and comes
      // back once it is up.
      messages.push(message('data-01', 'kill', t - 3000, { signal: '15' }));
      messages.push(message('data-01', 'kill', t - 1000, { signal: '9' }));
      messages.push(message('data-01', 'die', t - 900, { exitCode: '137' }));
      messages.push(message('web-01', 'die', t - 500, { exitCode: '1' }));
      messages.push(message('data-01', 'start', t));
      messages.push(message('web-01', 'start', t + 8 * MIN));
      t += 12 * 60 * MIN;
    }
    const mapper = new DockerEventMapper();
    const result = analyzeDependencies(messages.flatMap(m => mapper.map(m)));
    expect(
      result.machineDependencies.find(m => m.machine === 'web-01')?.waitsFor,
    ).toEqual(['data-01']);
  });
});

describe('DockerEventSource stops and failures', () => {
  it("reads the kill events an operator's stop gives, so its die is no failure, also across a reconnect", async () => {
    const calls: any[] = [];
    const at = (k: number) => 1_700_000_000_000_000_000 + k * 1_000_000_000;
    const line = (
      Action: string,
      k: number,
      attributes: Record<string, string> = {},
    ) =>
      `${JSON.stringify({ Type: 'container', id: 'w', Action, status: Action, Actor: { ID: 'w', Attributes: { name: 'web-01', ...attributes } }, time: Math.floor(at(k) / 1e9), timeNano: at(k) })}\n`;
    const abort = new AbortController();
    const docker = engine(async (opts: any) => {
      calls.push(opts);
      const s = new PassThrough();
      // The engine sends only the actions the filter names.
      const send = (text: string) => {
        if (opts.filters.event.includes(JSON.parse(text).Action)) s.write(text);
      };
      setTimeout(() => {
        if (calls.length === 1) {
          send(line('start', 1));
          send(line('kill', 2, { signal: '15' }));
          s.end(); // the connection drops between the kill and the die
        } else {
          send(line('kill', 2, { signal: '15' })); // replayed: since is inclusive
          send(line('die', 3, { exitCode: '143' }));
          send(line('stop', 3));
          send(line('start', 4));
          send(line('die', 5, { exitCode: '1' }));
          setTimeout(() => abort.abort(), 20);
        }
      }, 5);
      return s;
    });
    const events: InitializationEvent[] = [];
    await new DockerEventSource('primary', docker, { minBackoffMs: 1 }).start(
      async e => {
        events.push(...e);
      },
      abort.signal,
    );
    expect(
      events.map(e => `${e.type}@${(e.time - at(0) / 1e6) / 1000}`),
    ).toEqual(['start@1', 'start@4', 'failure@5']);
  });
});

describe('DockerEventSource stops across a backend restart', () => {
  it("resuming after the stop's kill, still takes its die for no failure", async () => {
    const at = (k: number) =>
      1_700_000_000_000_000_000 + Math.round(k * 10) * 100_000_000;
    const message = (
      id: string,
      Action: string,
      k: number,
      attributes: Record<string, string> = {},
    ) =>
      `${JSON.stringify({ Type: 'container', id, Action, status: Action, Actor: { ID: id, Attributes: { name: id, ...attributes } }, time: Math.floor(at(k) / 1e9), timeNano: at(k) })}\n`;
    // An operator stops web-01; data-01's boot is the newest event stored before the backend
    // went down, web-01's die comes after it.
    const history = [
      message('web-01', 'start', 1),
      message('web-01', 'kill', 2, { signal: '15' }),
      message('data-01', 'start', 3.4),
      // It dies of the SIGTERM, slow to shut down.
      message('web-01', 'die', 4, { exitCode: '143' }),
    ];
    const abort = new AbortController();
    const docker = {
      getEvents: async (opts: any) => {
        const s = new PassThrough();
        if (opts.until !== undefined) return s.end(history.join(''));
        // The stream replays from `since` (whole seconds), then a crash of data-01.
        const since = history.filter(l => JSON.parse(l).time >= opts.since);
        setTimeout(() => {
          for (const l of since)
            if (opts.filters.event.includes(JSON.parse(l).Action)) s.write(l);
          s.write(message('data-01', 'die', 5, { exitCode: '1' }));
          setTimeout(() => abort.abort(), 20);
        }, 5);
        return s;
      },
      listContainers: async () => [],
    } as unknown as Docker;
    const events: InitializationEvent[] = [];
    await new DockerEventSource('primary', docker, { minBackoffMs: 1 }).start(
      async e => {
        events.push(...e);
      },
      abort.signal,
      { since: at(3.4) / 1e6 },
    );
    expect(
      events.map(
        e => `${e.machine}:${e.type}@${(e.time - at(0) / 1e6) / 1000}`,
      ),
    ).toEqual(['data-01:start@3.4', 'data-01:failure@5']);
  });
});
