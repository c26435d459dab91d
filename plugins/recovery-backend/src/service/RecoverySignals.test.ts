import type { SignalPayload } from '@backstage/plugin-signals-node';
import { recordingLogger } from '../testing/logger';
import { RecoverySignals, SIGNAL_COALESCE_MS } from './RecoverySignals';

/** A SignalsService that keeps what it is asked to publish. */
function recordingSignals(fail?: Error) {
  const published: SignalPayload[] = [];
  return {
    published,
    publish: async (signal: SignalPayload) => {
      if (fail) throw fail;
      published.push(signal);
    },
  };
}

const entities: Record<string, string> = {
  'run:run-1': 'component:default/Web',
  'run:run-2': 'system:default/site',
  'captureRequest:req-1': 'component:default/Web',
};

function setUp(fail?: Error) {
  const signals = recordingSignals(fail);
  const logger = recordingLogger();
  const changes = new RecoverySignals({
    signals,
    logger,
    entityRefOf: async ({ kind, id }) => entities[`${kind}:${id}`],
  });
  return { changes, published: signals.published, logger };
}

describe('RecoverySignals', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("signals a run's changes on its entity's channel, those within 250 ms as one, broadcast, saying only which run", async () => {
    const { changes, published } = setUp();
    // A wave's burst: a status, machine phases and timeline lines, within a few milliseconds.
    for (let i = 0; i < 20; i++) changes.changed({ kind: 'run', id: 'run-1' });
    await vi.advanceTimersByTimeAsync(SIGNAL_COALESCE_MS - 1);
    expect(published).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(published).toEqual([
      {
        recipients: { type: 'broadcast' },
        channel: 'recovery:entity:component:default/web',
        message: { kind: 'run', id: 'run-1' },
      },
    ]);

    // A change after the signal went is another signal.
    changes.changed({ kind: 'run', id: 'run-1' });
    await vi.advanceTimersByTimeAsync(SIGNAL_COALESCE_MS);
    expect(published).toHaveLength(2);
  });

  it('signals each run and capture request of its own, each on its entity', async () => {
    const { changes, published } = setUp();
    changes.changed({ kind: 'run', id: 'run-1' });
    changes.changed({ kind: 'run', id: 'run-2' });
    changes.changed({ kind: 'captureRequest', id: 'req-1' });
    changes.changed({ kind: 'run', id: 'run-1' });
    await vi.advanceTimersByTimeAsync(SIGNAL_COALESCE_MS);
    expect(published.map(p => [p.channel, p.message])).toEqual([
      ['recovery:entity:component:default/web', { kind: 'run', id: 'run-1' }],
      ['recovery:entity:system:default/site', { kind: 'run', id: 'run-2' }],
      [
        'recovery:entity:component:default/web',
        { kind: 'captureRequest', id: 'req-1' },
      ],
    ]);
  });

  it('sends what it gathered at once when flushed (shutdown), and nothing twice', async () => {
    const { changes, published } = setUp();
    changes.changed({ kind: 'run', id: 'run-1' });
    await changes.flush();
    expect(published).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(SIGNAL_COALESCE_MS);
    expect(published).toHaveLength(1);
  });

  it('signals nothing of a record gone, and logs a signal it could not send without throwing', async () => {
    const gone = setUp();
    gone.changes.changed({ kind: 'run', id: 'deleted' });
    await vi.advanceTimersByTimeAsync(SIGNAL_COALESCE_MS);
    expect(gone.published).toEqual([]);

    const failing = setUp(new Error('events bus down'));
    failing.changes.changed({ kind: 'run', id: 'run-1' });
    await vi.advanceTimersByTimeAsync(SIGNAL_COALESCE_MS);
    expect(failing.logger.lines).toEqual([
      expect.objectContaining({
        level: 'warn',
        message: 'Could not signal the change of run run-1',
        error: expect.objectContaining({ message: 'events bus down' }),
      }),
    ]);
  });
});
