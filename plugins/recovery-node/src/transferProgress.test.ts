import {
  PROGRESS_LINE_INTERVAL_MS,
  SMALL_TRANSFER_BYTES,
  TransferProgressLines,
  type TransferProgress,
} from './transferProgress';

const MIB = 1024 * 1024;

/** Lines heard, and a clock the test moves. */
function lines() {
  let clock = 1_000;
  const heard: TransferProgress[] = [];
  const progress = new TransferProgressLines(p => heard.push(p), {
    now: () => clock,
  });
  return {
    heard,
    progress,
    tick: (ms: number) => {
      clock += ms;
    },
  };
}

describe('TransferProgressLines', () => {
  it('says a large transfer at most every 2 s and 5 % of its total, then its total and time', () => {
    const { heard, progress, tick } = lines();
    const total = 1200 * MIB;
    const transfer = progress.start('restoring', 'volume /data', total);
    // 1 MiB every 30 ms for 1200 MiB: 36 s, as the walkthrough's restore took.
    for (let i = 0; i < 1200; i++) {
      tick(30);
      transfer.add(MIB);
    }
    transfer.end();

    const running = heard.filter(p => !p.final);
    expect(running.length).toBeGreaterThanOrEqual(15);
    expect(running.length).toBeLessThanOrEqual(18); // 36 s / 2 s
    let last = { at: -Infinity, bytes: 0 };
    let elapsed = 0;
    for (const p of running) {
      const at = p.elapsedMs;
      expect(at - last.at).toBeGreaterThanOrEqual(PROGRESS_LINE_INTERVAL_MS);
      expect(p.doneBytes - last.bytes).toBeGreaterThanOrEqual(0.05 * total);
      expect(p.totalBytes).toBe(total);
      expect(at).toBeGreaterThan(elapsed);
      elapsed = at;
      last = { at, bytes: p.doneBytes };
    }
    expect(running[0].message).toBe(
      'Restoring volume /data: 67.0 MiB of 1.2 GiB (5%) at 33.3 MiB/s',
    );
    expect(heard.at(-1)).toEqual({
      message: 'Restored volume /data: 1.2 GiB in 36.0 s (33.3 MiB/s)',
      what: 'volume /data',
      doneBytes: total,
      totalBytes: total,
      elapsedMs: 36_000,
      final: true,
    });
  });

  it('waits for 5 % more of the total, however much time passes', () => {
    const { heard, progress, tick } = lines();
    const transfer = progress.start('loading', 'the image archive', 1000 * MIB);
    transfer.add(60 * MIB);
    tick(2_000);
    transfer.add(1); // 2 s and 6 %: a line
    tick(60_000);
    transfer.add(40 * MIB); // a minute on, 4 % more: none
    expect(heard.map(p => p.doneBytes)).toEqual([60 * MIB + 1]);
    transfer.add(10 * MIB); // 5 % more: a line
    expect(heard.map(p => p.doneBytes)).toEqual([60 * MIB + 1, 110 * MIB + 1]);
  });

  it('says nothing of a small transfer, not even its end', () => {
    const { heard, progress, tick } = lines();
    const known = progress.start(
      'verifying',
      'the image archive',
      SMALL_TRANSFER_BYTES - 1,
    );
    tick(10_000);
    known.add(SMALL_TRANSFER_BYTES - 1);
    known.end();
    const unknown = progress.start('archiving', 'volume /data');
    tick(10_000);
    unknown.add(3 * MIB);
    unknown.end();
    expect(heard).toEqual([]);
  });

  it('ends a quick large transfer in its final line alone, once', () => {
    const { heard, progress, tick } = lines();
    const transfer = progress.start('restoring', 'volume /data', 40 * MIB);
    for (let i = 0; i < 40; i++) {
      tick(10);
      transfer.add(MIB);
    }
    transfer.end();
    transfer.end();
    expect(heard.map(p => p.message)).toEqual([
      'Restored volume /data: 40.0 MiB in 0.4 s (100.0 MiB/s)',
    ]);
  });

  it('paces the machine, not each transfer: a transfer right after another waits its 2 s', () => {
    const { heard, progress, tick } = lines();
    const first = progress.start('verifying', 'volume /data', 20 * MIB);
    tick(3_000);
    first.add(20 * MIB);
    first.end();
    const second = progress.start('restoring', 'volume /data', 20 * MIB);
    tick(1_000);
    second.add(10 * MIB); // 1 s after the first's final line: none
    tick(1_000);
    second.add(1 * MIB); // 2 s: a line
    second.end();
    expect(heard.map(p => [p.message, p.final])).toEqual([
      ['Verified volume /data: 20.0 MiB in 3.0 s (6.7 MiB/s)', true],
      [
        'Restoring volume /data: 11.0 MiB of 20.0 MiB (55%) at 5.5 MiB/s',
        false,
      ],
      ['Restored volume /data: 11.0 MiB in 2.0 s (5.5 MiB/s)', true],
    ]);
  });

  it('says a transfer of unknown size as it goes, less often as it grows', () => {
    const { heard, progress, tick } = lines();
    const transfer = progress.start('archiving', 'volume /data');
    // 10 MiB/s for 200 s.
    for (let s = 0; s < 200; s++) {
      tick(1_000);
      transfer.add(10 * MIB);
    }
    transfer.end();
    const running = heard.filter(p => !p.final);
    expect(running[0].message).toBe(
      'Archiving volume /data: 20.0 MiB so far at 10.0 MiB/s',
    );
    for (const [i, p] of running.entries()) {
      expect(p.totalBytes).toBeUndefined();
      if (i > 0)
        expect(p.doneBytes).toBeGreaterThanOrEqual(
          running[i - 1].doneBytes * 1.05,
        );
    }
    // Every 2 s while 2 s is 5 % more (to 40 s), then as 5 % more takes: far fewer than 100.
    expect(running.length).toBeLessThan(60);
    expect(heard.at(-1)!.message).toBe(
      'Archived volume /data: 2.0 GiB in 200.0 s (10.0 MiB/s)',
    );
  });

  it('takes a total the transfer goes past as unknown', () => {
    const { heard, progress, tick } = lines();
    const transfer = progress.start('loading', 'the image archive', 10 * MIB);
    tick(3_000);
    transfer.add(12 * MIB);
    transfer.end();
    expect(heard.map(p => p.message)).toEqual([
      'Loading the image archive: 12.0 MiB so far at 4.0 MiB/s',
      'Loaded the image archive: 12.0 MiB in 3.0 s (4.0 MiB/s)',
    ]);
    expect(heard[1].totalBytes).toBeUndefined();
  });

  it('counts nothing without a listener', () => {
    const transfer = new TransferProgressLines(undefined).start(
      'saving',
      'the image',
    );
    expect(() => {
      transfer.add(100 * MIB);
      transfer.end();
    }).not.toThrow();
  });
});
