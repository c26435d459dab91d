import { EventLineParser, EventParseError, JOURNALD_UNIT_FAILED, JOURNALD_UNIT_STARTED, parseEvents } from '.';

const jl = (o: object) => JSON.stringify(o);

describe('parseEvents: jsonl', () => {
  it('reads ISO and epoch times, defaults to start, ignores unknown fields, reads clock lines', () => {
    const text = [
      jl({ time: '2024-05-01T10:00:00Z', machine: 'm1', service: 'db', extra: 1 }),
      jl({ time: 1714557900000, machine: 'm1', service: 'db', event: 'failure' }),
      '',
      jl({ time: '2024-05-01T12:00:00+02:00', machine: 'm2', event: 'clock', reference: '2024-05-01T10:01:00Z' }),
    ].join('\n');
    const r = parseEvents(text, { source: 'a.jsonl' });
    expect(r.format).toBe('jsonl');
    expect(r.events).toEqual([
      { time: Date.UTC(2024, 4, 1, 10), machine: 'm1', service: 'db', type: 'start' },
      { time: 1714557900000, machine: 'm1', service: 'db', type: 'failure' },
      { time: Date.UTC(2024, 4, 1, 10), machine: 'm2', service: '', type: 'clock', reference: Date.UTC(2024, 4, 1, 10, 1) },
    ]);
  });
  it('reads a file that starts with a byte-order mark and has CRLF line ends', () => {
    const text = `\uFEFF${jl({ time: 1, machine: 'm', service: 'a' })}\r\n${jl({ time: 2, machine: 'm', service: 'b' })}\r\n`;
    const r = parseEvents(text, { source: 'win.jsonl' });
    expect(r.format).toBe('jsonl');
    expect(r.events.map(e => e.service)).toEqual(['a', 'b']);
    // Only a leading mark is dropped: one inside the file is still a malformed line.
    expect(() => parseEvents(`${jl({ time: 1, machine: 'm', service: 'a' })}\n\uFEFF{}`, { source: 'x' })).toThrow(/^x:2: invalid JSON/);
  });
  it.each([
    ['{"time": 1, "machine": "m"', 'invalid JSON'],
    [jl({ machine: 'm', service: 's' }), "missing 'time'"],
    [jl({ time: '2024-05-01T10:00:00', machine: 'm', service: 's' }), 'ISO 8601 with a zone'],
    [jl({ time: 1, service: 's' }), "missing 'machine'"],
    [jl({ time: 1, machine: 'm' }), "missing 'service'"],
    [jl({ time: 1, machine: 'm', service: 's', event: 'stop' }), 'unknown event "stop"'],
    [jl({ time: 1, machine: 'm', event: 'clock' }), "clock line without 'reference'"],
    ['[1,2]', 'expected a JSON object'],
  ])('line 2 %s → %s, naming file and line', (bad, message) => {
    const text = `${jl({ time: 1, machine: 'm', service: 's' })}\n${bad}\n`;
    let error: unknown;
    try {
      parseEvents(text, { source: 'x.jsonl' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(EventParseError);
    expect((error as EventParseError).message).toMatch(new RegExp(`^x\\.jsonl:2: .*${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    expect((error as EventParseError).line).toBe(2);
    const lenient = parseEvents(text, { source: 'x.jsonl', lenient: true });
    expect(lenient.skipped).toBe(1);
    expect(lenient.events).toHaveLength(1);
  });
});

describe('parseEvents: journald', () => {
  const rec = (o: object) => jl({ __REALTIME_TIMESTAMP: '1714557600123456', _HOSTNAME: 'h1', ...o });
  it('keeps unit started/failed records, skips every other record', () => {
    const text = [
      rec({ MESSAGE: 'kernel: eth0 up' }),
      rec({ MESSAGE_ID: JOURNALD_UNIT_STARTED, UNIT: 'db.service' }),
      rec({ MESSAGE_ID: 'fc2e22bc6ee647b6b90729ab34a250b1', UNIT: 'x.service' }),
      rec({ MESSAGE_ID: JOURNALD_UNIT_FAILED, UNIT: 'db.service' }),
    ].join('\n');
    const r = parseEvents(text);
    expect(r.format).toBe('journald');
    expect(r.ignored).toBe(2);
    expect(r.events).toEqual([
      { time: 1714557600123.456, machine: 'h1', service: 'db.service', type: 'start' },
      { time: 1714557600123.456, machine: 'h1', service: 'db.service', type: 'failure' },
    ]);
  });
  it('errors on a unit record without UNIT or timestamp', () => {
    expect(() => parseEvents(rec({ MESSAGE_ID: JOURNALD_UNIT_STARTED }), { source: 'j' })).toThrow("j:1: unit record without 'UNIT'");
    expect(() => parseEvents(jl({ _HOSTNAME: 'h', MESSAGE_ID: JOURNALD_UNIT_STARTED, UNIT: 'u' }), { source: 'j' })).toThrow(
      "j:1: missing '__REALTIME_TIMESTAMP'",
    );
  });
  it.each([
    ['a truncated record', '{"__REALTIME_TIMESTAMP": "1714557600123456", "MESSAGE": "eth0'],
    ['a line that is no JSON', 'kernel: eth0 up'],
    ['a unit record with broken JSON', `{"MESSAGE_ID": "${JOURNALD_UNIT_STARTED}", "UNIT": }`],
  ])('errors on %s among irrelevant records, naming the line', (_what, bad) => {
    const text = [rec({ MESSAGE: 'kernel: eth0 up' }), rec({ MESSAGE: 'eth1 up' }), bad].join('\n');
    expect(() => parseEvents(text, { source: 'j' })).toThrow(/^j:3: /);
    expect(parseEvents(text, { source: 'j', lenient: true })).toMatchObject({ skipped: 1, ignored: 2, events: [] });
  });
});

describe('parseEvents: docker', () => {
  const ev = (action: string, attrs: object, extra: object = {}) =>
    jl({ Type: 'container', Action: action, status: action, Actor: { ID: 'c1', Attributes: { name: 'web-1', ...attrs } }, timeNano: 1714557600000000000, ...extra });
  it('start is an initialization, die with a non-zero exit code a failure; labels or container name', () => {
    const text = [
      ev('start', { 'recovery.backstage-recovery.io/service': 'web', 'recovery.backstage-recovery.io/machine': 'vm1' }),
      ev('die', { exitCode: '0' }),
      ev('die', { exitCode: '137' }),
      jl({ Type: 'network', Action: 'connect', Actor: { ID: 'n', Attributes: {} }, timeNano: 1 }),
      ev('create', {}),
    ].join('\n');
    const r = parseEvents(text);
    expect(r.format).toBe('docker');
    expect(r.events).toEqual([
      { time: 1714557600000, machine: 'vm1', service: 'web', type: 'start' },
      { time: 1714557600000, machine: 'web-1', service: 'web-1', type: 'failure' },
    ]);
    expect(r.ignored).toBe(3);
  });
  it('gives one event per service of a comma-separated service label, trimmed', () => {
    const text = [
      ev('start', { 'recovery.backstage-recovery.io/service': 'database, files ,', 'recovery.backstage-recovery.io/machine': 'data-01' }),
      // Only separators: no service named, so the container name.
      ev('die', { exitCode: '1', 'recovery.backstage-recovery.io/service': ' , ' }),
    ].join('\n');
    const r = parseEvents(text);
    expect(r.events).toEqual([
      { time: 1714557600000, machine: 'data-01', service: 'database', type: 'start' },
      { time: 1714557600000, machine: 'data-01', service: 'files', type: 'start' },
      { time: 1714557600000, machine: 'web-1', service: 'web-1', type: 'failure' },
    ]);
    const p = new EventLineParser({ format: 'docker' });
    expect(p.push(text.split('\n')[0]).map(e => e.service)).toEqual(['database', 'files']);
    expect(p.events).toBe(2);
  });
  it('errors without timeNano', () => {
    const text = jl({ Type: 'container', Action: 'start', Actor: { ID: 'c', Attributes: { name: 'n' } } });
    expect(() => parseEvents(text, { format: 'docker', source: 'd' })).toThrow("d:1: missing 'timeNano'");
    const bad = jl({ Type: 'container', Action: 'start', Actor: { ID: 'c', Attributes: { name: 'n' } }, time: '2024-05-01' });
    expect(() => parseEvents(bad, { format: 'docker', source: 'd' })).toThrow("d:1: missing 'timeNano', and 'time' is no count of seconds since the epoch");
  });
  it('without timeNano, takes time (seconds)', () => {
    const text = jl({ Type: 'container', Action: 'start', Actor: { ID: 'c', Attributes: { name: 'n' } }, time: 1714557600 });
    expect(parseEvents(text, { format: 'docker' }).events).toEqual([{ time: 1714557600000, machine: 'n', service: 'n', type: 'start' }]);
  });
});

describe('EventLineParser', () => {
  it('streams line by line, counting lines, and honours a forced format', () => {
    const p = new EventLineParser({ format: 'jsonl', source: 's' });
    expect(p.push(jl({ time: 5, machine: 'm', service: 'a' }))).toEqual([{ time: 5, machine: 'm', service: 'a', type: 'start' }]);
    expect(p.push('   ')).toEqual([]);
    // A journald record forced as jsonl is malformed (no time/machine).
    expect(() => p.push(jl({ MESSAGE_ID: JOURNALD_UNIT_STARTED }))).toThrow("s:3: missing 'time'");
    expect(p.lines).toBe(3);
    expect(() => new EventLineParser({ format: 'xml' as any })).toThrow(/unknown format/);
  });
});
