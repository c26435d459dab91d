import {
  type InitializationEvent,
  MACHINE_LABEL,
  SERVICE_LABEL,
} from '@backstage-recovery/plugin-recovery-common';
import { StringDecoder } from 'node:string_decoder';
import {
  ClockReach,
  describeValue,
  EventLineParser,
  EventParseError,
  JOURNALD_UNIT_FAILED,
  JOURNALD_UNIT_STARTED,
  LineSplitter,
  parseEvents,
  parseEventsYielding,
  parseEventTime,
  withinClockReach,
} from '.';

const jl = (o: object) => JSON.stringify(o);

describe('parseEvents: jsonl', () => {
  it('reads ISO and epoch times, defaults to start, ignores unknown fields, reads clock lines', () => {
    const text = [
      jl({
        time: '2024-05-01T10:00:00Z',
        machine: 'm1',
        service: 'db',
        extra: 1,
      }),
      jl({
        time: 1714557900000,
        machine: 'm1',
        service: 'db',
        event: 'failure',
      }),
      '',
      jl({
        time: '2024-05-01T12:00:00+02:00',
        machine: 'm2',
        event: 'clock',
        reference: '2024-05-01T10:01:00Z',
      }),
      jl({
        time: '2024-05-01T12:00:00+02:00',
        machine: 'm2',
        service: '',
        event: 'clock',
        reference: '2024-05-01T10:01:00Z',
      }),
    ].join('\n');
    const r = parseEvents(text, { source: 'a.jsonl' });
    expect(r.format).toBe('jsonl');
    expect(r.events).toEqual([
      {
        time: Date.UTC(2024, 4, 1, 10),
        machine: 'm1',
        service: 'db',
        type: 'start',
      },
      { time: 1714557900000, machine: 'm1', service: 'db', type: 'failure' },
      {
        time: Date.UTC(2024, 4, 1, 10),
        machine: 'm2',
        service: '',
        type: 'clock',
        reference: Date.UTC(2024, 4, 1, 10, 1),
      },
      {
        time: Date.UTC(2024, 4, 1, 10),
        machine: 'm2',
        service: '',
        type: 'clock',
        reference: Date.UTC(2024, 4, 1, 10, 1),
      },
    ]);
  });
  it("is detected by its own fields, whatever else a line carries (a journal's _HOSTNAME, a timeNano)", () => {
    const text = [
      jl({
        time: '2024-02-29T10:00:00Z',
        machine: 'n1',
        service: 'db',
        _HOSTNAME: 'x',
        MESSAGE_ID: 'y',
      }),
      jl({
        time: 2,
        machine: 'n2',
        service: 'api',
        timeNano: 5,
        Actor: {},
        status: 'start',
      }),
    ].join('\n');
    const r = parseEvents(text, { source: 'extra.jsonl' });
    expect(r.format).toBe('jsonl');
    expect(r.events.map(e => [e.machine, e.service, e.time])).toEqual([
      ['n1', 'db', Date.UTC(2024, 1, 29, 10)],
      ['n2', 'api', 2],
    ]);
  });
  it('reads every zone form and fraction extended ISO 8601 allows', () => {
    const times = [
      '2024-05-01T12:00:00+02:00',
      '2024-05-01T12:00:00+0200',
      '2024-05-01T12:00:00+02',
      '2024-05-01T07:30-0430',
      '2024-05-01T10:00:00,5Z',
      '2024-05-01T10:00:00.123456789z',
      // RFC 3339's space for the T: GNU date --rfc-3339, Python's str(datetime), PostgreSQL.
      '2024-05-01 12:00:00+02:00',
      '2024-05-01 10:00:00.123456+00',
    ];
    const r = parseEvents(
      times.map(time => jl({ time, machine: 'm', service: 's' })).join('\n'),
    );
    expect(r.events.map(e => new Date(e.time).toISOString())).toEqual([
      '2024-05-01T10:00:00.000Z',
      '2024-05-01T10:00:00.000Z',
      '2024-05-01T10:00:00.000Z',
      '2024-05-01T12:00:00.000Z',
      '2024-05-01T10:00:00.500Z',
      '2024-05-01T10:00:00.123Z',
      '2024-05-01T10:00:00.000Z',
      '2024-05-01T10:00:00.123Z',
    ]);
    // A space still needs the zone, and is only between date and time.
    for (const time of [
      '2024-05-01 10:00:00',
      '2024-05-01  10:00:00Z',
      ' 2024-05-01T10:00:00Z',
    ]) {
      expect(() =>
        parseEvents(jl({ time, machine: 'm', service: 's' }), { source: 'z' }),
      ).toThrow(/^z:1: 'time' must be ISO 8601 with a zone/);
    }
    expect(() =>
      parseEvents(
        jl({ time: '2024-05-01T10:00:00+2', machine: 'm', service: 's' }),
        { source: 'z' },
      ),
    ).toThrow(/^z:1: 'time' must be ISO 8601 with a zone/);
  });
  it('reads a file that starts with a byte-order mark and has CRLF line ends', () => {
    const text = `\uFEFF${jl({ time: 1, machine: 'm', service: 'a' })}\r\n${jl({ time: 2, machine: 'm', service: 'b' })}\r\n`;
    const r = parseEvents(text, { source: 'win.jsonl' });
    expect(r.format).toBe('jsonl');
    expect(r.events.map(e => e.service)).toEqual(['a', 'b']);
    // A mark inside a record is still malformed.
    expect(() =>
      parseEvents(`${jl({ time: 1, machine: 'm', service: 'a' })}\n{\uFEFF}`, {
        source: 'x',
      }),
    ).toThrow(/^x:2: invalid JSON/);
  });
  it('ignores a byte-order mark at the start of any line: files joined with cat, each with its own', () => {
    const text = `${jl({ time: 1, machine: 'm', service: 'a' })}\n\uFEFF${jl({ time: 2, machine: 'm', service: 'b' })}\r\n\uFEFF\n`;
    const r = parseEvents(text, { source: 'cat.jsonl' });
    expect(r.events.map(e => e.service)).toEqual(['a', 'b']);
    expect(r.skipped).toBe(0);
  });
  it('warns of names that were not UTF-8, naming the first line, and keeps their events', () => {
    // A Windows-1252 'é' (0xE9) decoded as UTF-8.
    const garbled = Buffer.from([0x63, 0x61, 0x66, 0xe9]).toString('utf8');
    const text = [
      jl({ time: 1, machine: 'm', service: 'db' }),
      jl({ time: 2, machine: 'm', service: garbled }),
      jl({ time: 3, machine: garbled, service: 'web' }),
    ].join('\n');
    const r = parseEvents(text, { source: 'cp1252.jsonl' });
    expect(r.events).toHaveLength(3);
    expect(r.warnings).toEqual([
      'cp1252.jsonl:2: 2 events name a service or machine with bytes that are not UTF-8 (first "caf\uFFFD", \uFFFD marks each undecodable sequence); ' +
        'an export in another encoding, e.g. Windows-1252? Convert it first: iconv -f WINDOWS-1252 -t UTF-8',
    ]);
    expect(
      parseEvents(jl({ time: 1, machine: 'm', service: 'café' })).warnings,
    ).toEqual([]);
  });
  it.each([
    ['{"time": 1, "machine": "m"', 'invalid JSON'],
    [jl({ machine: 'm', service: 's' }), "missing 'time'"],
    [
      jl({ time: '2024-05-01T10:00:00', machine: 'm', service: 's' }),
      'ISO 8601 with a zone',
    ],
    [jl({ time: 1, service: 's' }), "missing 'machine'"],
    [jl({ time: 1, machine: 'm' }), "missing 'service'"],
    [
      jl({ time: 1, machine: 'm', service: 's', event: 'stop' }),
      'unknown event "stop"',
    ],
    [
      jl({ time: 1, machine: 'm', event: 'clock' }),
      "clock line without 'reference'",
    ],
    ['[1,2]', 'expected a JSON object'],
    [
      '\u001f\u008b\u0008\u0000\u0000',
      'a binary, compressed or UTF-16 file? Give the logs as UTF-8 text',
    ],
    // Past what the event store holds: varchar(255) names, bigint times (a valid Date).
    [
      jl({ time: 1, machine: 'm', service: 's'.repeat(256) }),
      "'service' is longer than 255 characters (256)",
    ],
    [
      jl({ time: 1, machine: 'm'.repeat(300), service: 's' }),
      "'machine' is longer than 255 characters (300)",
    ],
    [
      jl({
        time: 1,
        machine: 'm',
        service: 'clock-'.repeat(50),
        event: 'clock',
        reference: 1,
      }),
      "'service' is longer than 255 characters",
    ],
    [
      jl({ time: 1, machine: 'm', service: 'a\u0000b' }),
      "'service' contains a NUL character",
    ],
    [
      jl({ time: '99999999999999999999', machine: 'm', service: 's' }),
      '\'time\' is out of range ("99999999999999999999"',
    ],
    [
      jl({ time: 8.64e15 + 1, machine: 'm', service: 's' }),
      "'time' is out of range",
    ],
    [
      jl({ time: 1, machine: 'm', event: 'clock', reference: 1e300 }),
      "'reference' is out of range",
    ],
    // A clock reading past any clock's offset: it would move the machine's boots out of reach.
    [
      jl({
        time: 1714557600000,
        machine: 'm',
        event: 'clock',
        reference: 8.64e15,
      }),
      "a clock reading's 'reference' is 273731 years ahead of its 'time': no clock is more than 100 years off (a corrupt value, or a time in another unit?)",
    ],
    [
      jl({
        time: 1714557600000,
        machine: 'm',
        event: 'clock',
        reference: 1714557600000 * 1000,
      }),
      "a clock reading's 'reference' is 54277 years ahead of its 'time'",
    ],
    // Date.parse would roll these over into the next month.
    [
      jl({ time: '2024-02-30T00:00:00Z', machine: 'm', service: 's' }),
      '\'time\' is not a valid date: "2024-02-30T00:00:00Z"',
    ],
    [
      jl({ time: '2023-02-29T00:00:00Z', machine: 'm', service: 's' }),
      "'time' is not a valid date",
    ],
    [
      jl({ time: '2024-04-31T10:00:00+02:00', machine: 'm', service: 's' }),
      "'time' is not a valid date",
    ],
    [jl({ time: 1, machine: ' ', service: 's' }), "'machine' is blank"],
    [jl({ time: 1, machine: 'm', service: '\t \n' }), "'service' is blank"],
    [
      jl({ time: 1, machine: 'm', service: 'api\nweb' }),
      "'service' contains a control character",
    ],
    [
      jl({ time: 1, machine: 'm\u001b[31m', service: 's' }),
      "'machine' contains a control character",
    ],
  ])('line 2 %s → %s, naming file and line', (bad, message) => {
    const text = `${jl({ time: 1, machine: 'm', service: 's' })}\n${bad}\n`;
    let error: unknown;
    try {
      parseEvents(text, { source: 'x.jsonl' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(EventParseError);
    expect((error as EventParseError).message).toMatch(
      new RegExp(
        `^x\\.jsonl:2: .*${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`,
      ),
    );
    expect((error as EventParseError).line).toBe(2);
    const lenient = parseEvents(text, { source: 'x.jsonl', lenient: true });
    expect(lenient.skipped).toBe(1);
    expect(lenient.events).toHaveLength(1);
  });
});

describe('parseEvents: messages that say what the input is', () => {
  it('cuts short a long value it quotes: a field may hold a whole log line, or megabytes', () => {
    const long = `2024-05-01 ${'x'.repeat(100_000)}`;
    const cut = `"2024-05-01 ${'x'.repeat(67)}…`;
    const message = (line: object) => {
      try {
        parseEvents(
          jl({ time: 1714557600000, machine: 'm', service: 's', ...line }),
        );
      } catch (e) {
        return (e as Error).message;
      }
      throw new Error('parsed');
    };
    expect(message({ time: long })).toBe(
      `<input>:1: 'time' must be ISO 8601 with a zone (e.g. 2024-05-01T10:00:00Z) or epoch milliseconds, got ${cut}`,
    );
    expect(message({ event: long })).toBe(
      `<input>:1: unknown event ${cut} (expected start, failure or clock)`,
    );
    expect(
      message({ time: `2024-02-30T10:00:00.${'1'.repeat(100_000)}Z` }),
    ).toBe(
      `<input>:1: 'time' is not a valid date: "2024-02-30T10:00:00.${'1'.repeat(58)}…`,
    );
    expect(message({ time: '9'.repeat(400) })).toBe(
      `<input>:1: 'time' is out of range ("${'9'.repeat(78)}…): valid times run from 1970 to the year +275760`,
    );
  });
  const error = (text: string, options = {}) => {
    try {
      parseEvents(text, { source: 'x', ...options });
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error('parsed');
  };
  const event = jl({ time: 1714557600000, machine: 'm', service: 's' });
  const journal = jl({
    __REALTIME_TIMESTAMP: '1714557600123456',
    _HOSTNAME: 'h',
    MESSAGE_ID: JOURNALD_UNIT_STARTED,
    UNIT: 'db.service',
  });
  it('a record of another format than the input is read as: names both, and where the format came from', () => {
    expect(error(`${event}\n${journal}`)).toBe(
      "x:2: missing 'time' (a journald record? This input is read as jsonl, detected from its line 1: one format a file)",
    );
    expect(error(journal, { format: 'jsonl' })).toBe(
      "x:1: missing 'time' (a journald record? This input is read as jsonl, the format given: one format a file)",
    );
    // A record that is no other format's says nothing more.
    expect(error(`${event}\n${jl({ time: 1, service: 's' })}`)).toBe(
      "x:2: missing 'machine'",
    );
  });
  it("a record of another format that the input's format would read as irrelevant is malformed, not skipped unsaid", () => {
    // jsonl clock lines appended to a journal or a docker events file: their machine's skew would be lost.
    const clock = jl({
      time: 1714557600000,
      machine: 'm',
      event: 'clock',
      reference: 1714557660000,
    });
    const noise = jl({
      __REALTIME_TIMESTAMP: '1714557600000000',
      _HOSTNAME: 'h',
      MESSAGE: 'eth0 up',
    });
    const docker = jl({
      Type: 'container',
      Action: 'create',
      Actor: { ID: 'c', Attributes: { name: 'web' } },
      timeNano: 1714557600000000000,
    });
    expect(
      error(`${noise}
${journal}
${clock}`),
    ).toBe(
      'x:3: not a journald record (a jsonl record? This input is read as journald, detected from its line 1: one format a file)',
    );
    expect(
      error(`${docker}
${event}`),
    ).toBe(
      'x:2: not a docker record (a jsonl record? This input is read as docker, detected from its line 1: one format a file)',
    );
    expect(
      error(`${noise}
${docker}`),
    ).toBe(
      'x:2: not a journald record (a docker record? This input is read as journald, detected from its line 1: one format a file)',
    );
    expect(error(noise, { format: 'docker' })).toBe(
      'x:1: not a docker record (a journald record? This input is read as docker, the format given: one format a file)',
    );
    const lenient = parseEvents(
      `${noise}
${clock}
${journal}`,
      { lenient: true },
    );
    expect({
      skipped: lenient.skipped,
      ignored: lenient.ignored,
      events: lenient.events.length,
    }).toEqual({ skipped: 1, ignored: 1, events: 1 });
  });
  it('a pretty-printed record or a JSON array: says to give one object a line', () => {
    const oneALine =
      "Give one JSON object a line (journalctl -o json, not json-pretty; jq -c, and jq -c '.[]' for an array)";
    expect(error(JSON.stringify(JSON.parse(journal), null, 2))).toMatch(
      new RegExp(
        `^x:1: invalid JSON \\(.*\\): a pretty-printed record or a JSON array\\? ${oneALine.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`,
      ),
    );
    expect(error(`[\n${event},\n${event}\n]`)).toContain(
      `x:1: invalid JSON (Unexpected end of JSON input): a pretty-printed record or a JSON array? ${oneALine}`,
    );
    expect(error(`[${event}, ${event}]`)).toBe(
      `x:1: expected a JSON object, got an array. ${oneALine}`,
    );
  });
  it('records whose line breaks were lost (curl -d @FILE): says so, in every format', () => {
    const hint =
      'several records on one line, their line breaks lost? Give one JSON object a line (curl -d @FILE drops line breaks; --data-binary @FILE keeps them)';
    const docker = jl({
      Type: 'container',
      Action: 'start',
      Actor: { ID: 'c', Attributes: { name: 'web' } },
      timeNano: 1714557600000000000,
    });
    for (const record of [event, journal, docker]) {
      expect(error(`${record}\n${record}${record} ${record}`)).toMatch(
        new RegExp(
          `^x:2: invalid JSON \\(Unexpected non-whitespace character after JSON at position \\d+.*\\): ${hint.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`,
        ),
      );
    }
    // The first record broken itself: only invalid, whatever follows.
    expect(error(`{"time": 1714557600000, "machine": }${event}`)).toMatch(
      /^x:1: invalid JSON \([^)]*\)$/,
    );
    // A `}{"` inside a string is no second record.
    expect(
      error('{"time": 1714557600000, "machine": "x}{", "service": oops}'),
    ).toMatch(/^x:1: invalid JSON \(.*\)$/);
    const thrown = (() => {
      try {
        parseEvents(`${event}${event}`, { source: 'x' });
      } catch (e) {
        return e as EventParseError;
      }
      return undefined;
    })();
    expect(thrown?.explained).toBe(true);
    expect(() =>
      parseEvents('{"time": 1714557600000, "machine": "m", "serv', {
        source: 'x',
      }),
    ).toThrow(expect.objectContaining({ explained: false }));
  });
  it('reads journalctl -o json-seq (RFC 7464: an RS before each record) as -o json, in every format', () => {
    const seq = (...records: string[]) =>
      records.map(r => `\u001e${r}\n`).join('');
    const journald = parseEvents(
      seq(
        jl({ __REALTIME_TIMESTAMP: '1714557600000000', _HOSTNAME: 'h' }),
        journal,
      ),
      { source: 'x' },
    );
    expect(journald).toMatchObject({
      format: 'journald',
      ignored: 1,
      skipped: 0,
      events: [{ machine: 'h', service: 'db.service', type: 'start' }],
    });
    // jq --seq writes the same; several RS together, and an RS alone, are allowed by RFC 7464.
    const jsonl = parseEvents(
      `\uFEFF${seq(event)}\u001e\u001e${event}\r\n\u001e\n`,
      { source: 'x' },
    );
    expect(jsonl.events.map(e => e.service)).toEqual(['s', 's']);
    // An RS before a broken record is still a broken record.
    expect(error(`\u001e{"time": 1714557600000, "machine": }`)).toMatch(
      /^x:1: invalid JSON \([^)]*\)$/,
    );
  });
  it("journalctl's other outputs (json-sse, export): says to give -o json", () => {
    expect(error(`data: ${journal}`)).toMatch(
      /^x:1: invalid JSON \(.*\): journalctl -o json-sse \(each record after "data: "\)\? Give journalctl -o json: one JSON object a line$/,
    );
    expect(
      error('__CURSOR=s=0;i=1\n__REALTIME_TIMESTAMP=1714557600123456'),
    ).toMatch(
      /^x:1: invalid JSON \(.*\): journalctl -o export \(FIELD=value lines\)\? Give journalctl -o json: one JSON object a line$/,
    );
  });
  it("never echoes a line's control characters: a binary line is not quoted, escape sequences are escaped", () => {
    // The start of a gzip file, and a text log whose tail a crash filled with NULs.
    expect(error('\u001f\uFFFD\u0008\u0000\u0000\u0000\u0003\u001b[2J')).toBe(
      'x:1: invalid JSON: a binary, compressed or UTF-16 file? Give the logs as UTF-8 text',
    );
    expect(error(`${event}\n${'\u0000'.repeat(50)}`)).toBe(
      'x:2: invalid JSON: a binary, compressed or UTF-16 file? Give the logs as UTF-8 text',
    );
    // jq -C: colours around valid JSON.
    const coloured = error(`\u001b[1;39m${event}\u001b[0m`);
    expect(coloured).toMatch(/^x:1: invalid JSON \(.*\\u001b\[1;39m/);
    // eslint-disable-next-line no-control-regex
    expect(coloured).not.toMatch(/[\u0000-\u001f]/);
  });
  it('a clock reading without its event says it needs one', () => {
    expect(
      error(
        jl({ time: 1714557600000, machine: 'm', reference: 1714557601000 }),
      ),
    ).toBe(`x:1: missing 'service' (a clock line? It needs "event": "clock")`);
  });
  const podmanHint =
    " (a podman events record? Podman's own JSON is no format read here: run docker events --format '{{json .}}' against Podman's Docker-compatible API socket (podman system service), or convert it to jsonl with jq as the recovery CLI's README shows)";
  // `podman events --format json`: older Podman writes `Time` in RFC 3339, recent Podman (its v5
  // source) Docker's `time` and `timeNano` instead; `Status` and `Type` where Docker writes `Action` and `Actor`.
  const podmanStart = {
    ID: '3f1c0a9d2b7e',
    Image: 'docker.io/library/nginx:1.25',
    Name: 'web',
    Status: 'start',
    Time: '2026-09-01T06:00:00.123456789Z',
    Type: 'container',
    Attributes: { image: 'docker.io/library/nginx:1.25', name: 'web' },
  };
  const podmanNow = {
    ...podmanStart,
    Time: undefined,
    time: 1788242400,
    timeNano: 1788242400123456789,
  };
  const podmanDied = {
    ...podmanStart,
    Status: 'died',
    ContainerExitCode: 1,
  };
  it('a podman events record: named as such, with how to give its events, in every format, not ignored unsaid', () => {
    expect(error(jl(podmanStart))).toBe(`x:1: missing 'time'${podmanHint}`);
    expect(error(jl(podmanDied), { format: 'jsonl' })).toBe(
      `x:1: missing 'time'${podmanHint}`,
    );
    // With Docker's timeNano it is detected as docker, where its Status is no Action.
    expect(error(jl(podmanNow))).toBe(`x:1: not a docker record${podmanHint}`);
    expect(error(jl(podmanStart), { format: 'docker' })).toBe(
      `x:1: not a docker record${podmanHint}`,
    );
    expect(error(jl(podmanNow), { format: 'journald' })).toBe(
      `x:1: not a journald record${podmanHint}`,
    );
    // After records of a format: named as podman's, not as another format's record.
    expect(error(`${event}\n${jl(podmanNow)}`)).toBe(
      `x:2: missing 'machine'${podmanHint}`,
    );
    // Lenient: skipped as malformed, and fixing no format.
    const docker = jl({
      Type: 'container',
      Action: 'start',
      Actor: { Attributes: { name: 'web' } },
      timeNano: 1714557600000000000,
    });
    expect(
      parseEvents(`${jl(podmanNow)}\n${jl(podmanDied)}\n${docker}`, {
        lenient: true,
        source: 'x',
      }),
    ).toMatchObject({ format: 'docker', skipped: 2, ignored: 0 });
    expect(
      parseEvents(`${jl(podmanNow)}\n${event}`, {
        lenient: true,
        source: 'x',
      }),
    ).toMatchObject({ format: 'jsonl', skipped: 1 });
  });
  it('a JSON record of no format, read as jsonl: names the three formats and the fields each needs', () => {
    const noFormat =
      " (a record of none of the formats read: jsonl needs time, machine, service; journald (journalctl -o json) __REALTIME_TIMESTAMP, _HOSTNAME, MESSAGE_ID, UNIT; docker (docker events --format '{{json .}}') timeNano, Action, Actor with the container's name or labels)";
    const line = jl({
      ts: '2026-09-01T06:00:00Z',
      host: 'web-01',
      unit: 'nginx',
    });
    expect(error(line)).toBe(`x:1: missing 'time'${noFormat}`);
    expect(error(line, { format: 'jsonl' })).toBe(
      `x:1: missing 'time'${noFormat}`,
    );
    expect(error(`${event}\n{}`)).toBe(`x:2: missing 'time'${noFormat}`);
    // A record with a field of jsonl is one missing the rest: the field it lacks says enough.
    expect(error(jl({ machine: 'm', service: 's' }))).toBe(
      "x:1: missing 'time'",
    );
  });
});

describe('parseEvents: limits of the event store', () => {
  it('accepts names of 255 characters (counted as code points, not UTF-16 units) and the latest valid date', () => {
    const emoji = '\u{1F680}'.repeat(255);
    const r = parseEvents(
      [
        jl({ time: 8.64e15, machine: 'm'.repeat(255), service: emoji }),
        jl({ time: '8640000000000000', machine: 'm', service: 's' }),
      ].join('\n'),
    );
    expect(
      r.events.map(e => [e.time, e.machine.length, e.service.length]),
    ).toEqual([
      [8.64e15, 255, 510],
      [8.64e15, 1, 1],
    ]);
  });
  it.each([
    [
      'journald UNIT',
      jl({
        __REALTIME_TIMESTAMP: '1714557600123456',
        _HOSTNAME: 'h',
        MESSAGE_ID: JOURNALD_UNIT_STARTED,
        UNIT: 'u'.repeat(256),
      }),
      "'UNIT' is longer than 255 characters (256)",
    ],
    [
      'journald USER_UNIT',
      jl({
        __REALTIME_TIMESTAMP: '1714557600123456',
        _HOSTNAME: 'h',
        MESSAGE_ID: JOURNALD_UNIT_STARTED,
        USER_UNIT: 'u'.repeat(256),
      }),
      "'USER_UNIT' is longer than 255 characters",
    ],
    [
      'journald _HOSTNAME',
      jl({
        __REALTIME_TIMESTAMP: '1714557600123456',
        _HOSTNAME: 'h'.repeat(256),
        MESSAGE_ID: JOURNALD_UNIT_STARTED,
        UNIT: 'u',
      }),
      "'_HOSTNAME' is longer than 255 characters",
    ],
    [
      'journald timestamp',
      jl({
        __REALTIME_TIMESTAMP: '99999999999999999999999',
        _HOSTNAME: 'h',
        MESSAGE_ID: JOURNALD_UNIT_FAILED,
        UNIT: 'u',
      }),
      "'__REALTIME_TIMESTAMP' is out of range",
    ],
    [
      'docker service label',
      jl({
        Type: 'container',
        Action: 'start',
        Actor: {
          Attributes: { name: 'c', [SERVICE_LABEL]: `db, ${'s'.repeat(300)}` },
        },
        timeNano: 1,
      }),
      `'${SERVICE_LABEL}' is longer than 255 characters (300)`,
    ],
    [
      'docker machine label',
      jl({
        Type: 'container',
        Action: 'start',
        Actor: { Attributes: { name: 'c', [MACHINE_LABEL]: 'm'.repeat(256) } },
        timeNano: 1,
      }),
      `'${MACHINE_LABEL}' is longer than 255 characters`,
    ],
    [
      'docker container name',
      jl({
        Type: 'container',
        Action: 'start',
        Actor: { Attributes: { name: 'c'.repeat(256) } },
        timeNano: 1,
      }),
      "'name' is longer than 255 characters",
    ],
    [
      'docker timeNano',
      jl({
        Type: 'container',
        Action: 'start',
        Actor: { Attributes: { name: 'c' } },
        timeNano: '99999999999999999999999999',
      }),
      "'timeNano' is out of range",
    ],
    [
      'docker timeNano before the epoch',
      jl({
        Type: 'container',
        Action: 'start',
        Actor: { Attributes: { name: 'c' } },
        timeNano: -1e25,
      }),
      "'timeNano' is before 1970 (-1e+25)",
    ],
    [
      'docker time',
      jl({
        Type: 'container',
        Action: 'start',
        Actor: { Attributes: { name: 'c' } },
        time: 1e13,
      }),
      "'time' is out of range",
    ],
  ])(
    'refuses a %s the store cannot hold, naming the line; lenient skips it',
    (_what, bad, message) => {
      expect(() => parseEvents(bad, { source: 'big' })).toThrow(
        `big:1: ${message}`,
      );
      expect(parseEvents(bad, { source: 'big', lenient: true })).toMatchObject({
        skipped: 1,
        events: [],
      });
    },
  );
});

describe('parseEvents: names that are no Unicode text', () => {
  // JSON.stringify writes a lone surrogate as its escape, "\ud800", as the exports that carry one do.
  const unit = (fields: object) =>
    jl({
      __REALTIME_TIMESTAMP: '1714557600123456',
      _HOSTNAME: 'h',
      MESSAGE_ID: JOURNALD_UNIT_STARTED,
      UNIT: 'u',
      ...fields,
    });
  const container = (attributes: object) =>
    jl({
      Type: 'container',
      Action: 'start',
      Actor: { Attributes: { name: 'c', ...attributes } },
      timeNano: '1714557600000000000',
    });
  const lone = (field: string, escape: string, at: number, value: string) =>
    `'${field}' contains a lone UTF-16 surrogate (\\${escape} at character ${at} of ${JSON.stringify(value)}): UTF-8 has no form for it, so it would be stored and shown as U+FFFD and match no catalog name; a name cut inside a character?`;
  it.each([
    [
      'jsonl service',
      jl({ time: 1714557600000, machine: 'm', service: 'db\ud800' }),
      lone('service', 'ud800', 3, 'db\ud800'),
    ],
    [
      'jsonl machine',
      jl({ time: 1714557600000, machine: '\udc00m', service: 's' }),
      lone('machine', 'udc00', 1, '\udc00m'),
    ],
    [
      "jsonl clock line's service",
      jl({
        time: 1714557600000,
        machine: 'm',
        event: 'clock',
        reference: 1714557600000,
        service: 'x\ud83d',
      }),
      lone('service', 'ud83d', 2, 'x\ud83d'),
    ],
    // A name cut after the first half of an emoji, its second half left alone.
    [
      'journald UNIT',
      unit({ UNIT: '\u{1F680}\udd80.service' }),
      lone('UNIT', 'udd80', 2, '\u{1F680}\udd80.service'),
    ],
    [
      'journald _HOSTNAME',
      unit({ _HOSTNAME: 'web-\ud800' }),
      lone('_HOSTNAME', 'ud800', 5, 'web-\ud800'),
    ],
    [
      'docker container name',
      container({ name: 'c\ud800' }),
      lone('name', 'ud800', 2, 'c\ud800'),
    ],
    [
      'docker service label',
      container({ [SERVICE_LABEL]: 'db, \ud800' }),
      lone(SERVICE_LABEL, 'ud800', 1, '\ud800'),
    ],
    [
      'docker machine label',
      container({ [MACHINE_LABEL]: 'm\ud800' }),
      lone(MACHINE_LABEL, 'ud800', 2, 'm\ud800'),
    ],
  ])(
    'refuses a %s with a lone surrogate, naming line and field, rather than store U+FFFD unsaid; lenient skips it',
    (_what, bad, message) => {
      const text = `\n${bad}`;
      expect(() => parseEvents(text, { source: 'names' })).toThrow(
        new EventParseError('names', 2, message),
      );
      expect(
        parseEvents(text, { source: 'names', lenient: true }),
      ).toMatchObject({ skipped: 1, events: [] });
    },
  );
  it('takes whole surrogate pairs, escaped or not', () => {
    const r = parseEvents(
      [
        jl({ time: 1714557600000, machine: 'm', service: '\u{1F680}' }),
        '{"time": 1714557600000, "machine": "m", "service": "\\ud83d\\ude80"}',
      ].join('\n'),
    );
    expect(r.events.map(e => e.service)).toEqual(['\u{1F680}', '\u{1F680}']);
  });
});

describe('parseEvents: times a clock reading moves out of reach', () => {
  const T = Date.UTC(2024, 4, 1, 10);
  const start = (time: number, service = 's') =>
    jl({ time, machine: 'm', service });
  const clock = (time: number, offset: number, machine = 'm') =>
    jl({ time, machine, event: 'clock', reference: time + offset });
  const LAST = 8.64e15;
  it("refuses a start its machine's nearest clock reading moves past the last date, naming its line, the offset and the reading's line, also a reading read after it; lenient skips it", () => {
    const text = [start(T, 'a'), start(LAST - 1000), clock(T, 60_000)].join(
      '\n',
    );
    const message =
      "its time +275760-09-12T23:59:59.000Z (machine time) is past the last date there is (+275760-09-13T00:00:00.000Z) once moved by +60.0 s, the offset of m's clock from its reading at line 3 " +
      "(taken at 2024-05-01T10:00:00.000Z, machine time): is the event's time, or that reading's 'reference', in the wrong unit?";
    expect(() => parseEvents(text, { source: 'upload' })).toThrow(
      new EventParseError('upload', 2, message),
    );
    const lenient = parseEvents(text, { source: 'upload', lenient: true });
    expect(lenient).toMatchObject({ skipped: 1 });
    expect(lenient.events.map(e => [e.type, e.time])).toEqual([
      ['start', T],
      ['clock', T],
    ]);
  });
  it('checks across inputs, as the CLI reads several files: a docker line of two services is one line skipped, a failure refused as a start is', () => {
    const docker = (action: string, attributes: object) =>
      jl({
        Type: 'container',
        Action: action,
        Actor: { Attributes: { [MACHINE_LABEL]: 'm', ...attributes } },
        timeNano: `${BigInt(LAST - 1) * 1_000_000n}`,
      });
    const read = (lenient: boolean) => {
      const reach = new ClockReach();
      const events: InitializationEvent[] = [];
      const inputs: Array<[string, string[]]> = [
        [
          'events.json',
          [
            docker('start', { name: 'c', [SERVICE_LABEL]: 'db, files' }),
            docker('die', { name: 'd', exitCode: '1' }),
          ],
        ],
        ['clock.jsonl', [clock(T, 1000)]],
      ];
      for (const [source, lines] of inputs) {
        const parser = new EventLineParser({ source, lenient });
        for (const line of lines) {
          for (const e of parser.push(line)) {
            reach.note(e, source, parser.lines);
            events.push(e);
          }
        }
      }
      return withinClockReach(reach, events, lenient);
    };
    expect(() => read(false)).toThrow(
      new EventParseError(
        'events.json',
        1,
        "its time +275760-09-12T23:59:59.999Z (machine time) is past the last date there is (+275760-09-13T00:00:00.000Z) once moved by +1.0 s, the offset of m's clock from its reading at clock.jsonl:1 " +
          "(taken at 2024-05-01T10:00:00.000Z, machine time): is the event's time, or that reading's 'reference', in the wrong unit?",
      ),
    );
    const lenient = read(true);
    expect(lenient.skipped).toBe(2);
    expect(lenient.events.map(e => e.type)).toEqual(['clock']);
  });
  it('keeps an event its reading keeps within the last date, one whose nearest reading does, and one whose machine has none', () => {
    const text = [
      start(LAST - 60_000),
      clock(T, 60_000),
      jl({ time: LAST - 1000, machine: 'p', service: 's' }),
      clock(T, 86_400_000, 'p'),
      clock(LAST - 3_600_000, -1000, 'p'),
      jl({ time: LAST, machine: 'q', service: 's' }),
    ].join('\n');
    const r = parseEvents(text);
    expect(r.skipped).toBe(0);
    expect(
      r.events.filter(e => e.type === 'start').map(e => [e.machine, e.time]),
    ).toEqual([
      ['m', LAST - 60_000],
      ['p', LAST - 1000],
      ['q', LAST],
    ]);
  });
});

describe('parseEvents: times', () => {
  const line = (time: string) =>
    `{"time": ${time}, "machine": "m", "service": "s"}`;
  const before1970 =
    'no boot log is that old; a clock that was never set, or a time in another unit?';
  it.each([
    // A number too large for a double is Infinity once parsed: out of range, as 1e16 is.
    [
      '1e400',
      `'time' is out of range (Infinity): valid times run from 1970 to the year +275760`,
    ],
    ['-1e400', `'time' is before 1970 (-Infinity): ${before1970}`],
    [
      '1e16',
      `'time' is out of range (10000000000000000): valid times run from 1970 to the year +275760`,
    ],
    [
      '"99999999999999999999"',
      `'time' is out of range ("99999999999999999999"): valid times run from 1970 to the year +275760`,
    ],
    ['null', "missing 'time'"],
    [
      'true',
      "'time' must be epoch milliseconds or ISO 8601 with a zone, got a boolean (true)",
    ],
    [
      '[1]',
      "'time' must be epoch milliseconds or ISO 8601 with a zone, got an array ([1])",
    ],
    [
      '{"ms": 1}',
      `'time' must be epoch milliseconds or ISO 8601 with a zone, got an object ({"ms":1})`,
    ],
    // Before 1970 in every form: epoch milliseconds, as a number or a string, and ISO 8601.
    ['-1', `'time' is before 1970 (-1): ${before1970}`],
    ['"-1"', `'time' is before 1970 ("-1"): ${before1970}`],
    [
      '"1969-12-31T23:59:59.999Z"',
      `'time' is before 1970 ("1969-12-31T23:59:59.999Z"): ${before1970}`,
    ],
    [
      '"1970-01-01T00:59:59+01:00"',
      `'time' is before 1970 ("1970-01-01T00:59:59+01:00"): ${before1970}`,
    ],
    [
      '"2024-02-30T00:00:00Z"',
      `'time' is not a valid date: "2024-02-30T00:00:00Z"`,
    ],
    // Epoch nanoseconds (Docker's timeNano, Loki) given for milliseconds: said so, with the date they would be.
    [
      '1714557600123456789',
      `'time' is out of range (1714557600123456800) as epoch milliseconds: epoch nanoseconds? As such it is 2024-05-01T10:00:00.123Z; give milliseconds`,
    ],
    [
      '"1714557600123456789"',
      `'time' is out of range ("1714557600123456789") as epoch milliseconds: epoch nanoseconds? As such it is 2024-05-01T10:00:00.123Z; give milliseconds`,
    ],
  ])('time %s: %s', (time, message) => {
    expect(() => parseEvents(line(time), { source: 't' })).toThrow(
      new EventParseError('t', 1, message),
    );
    expect(
      parseEvents(line(time), { source: 't', lenient: true }),
    ).toMatchObject({ skipped: 1, events: [] });
  });
  it('accepts 1970 itself, in each form', () => {
    const r = parseEvents(
      ['0', '"0"', '"1970-01-01T00:00:00Z"', '"1970-01-01T01:00:00+01:00"']
        .map(line)
        .join('\n'),
    );
    expect(r.events.map(e => e.time)).toEqual([0, 0, 0, 0]);
  });
  it('a clock reading decades off is still taken (a clock whose battery died), and so are times near the epoch', () => {
    const clock = (time: string | number, reference: string | number) =>
      jl({ time, machine: 'm', event: 'clock', reference });
    const r = parseEvents(
      [
        clock('2000-01-01T00:00:00Z', '2026-05-01T10:00:00Z'),
        clock(1000, 1500),
        clock('2024-05-01T10:00:00+14:00', '2024-05-01T10:00:00Z'),
      ].join('\n'),
    );
    expect(r.events.map(e => e.reference! - e.time)).toEqual([
      Date.UTC(2026, 4, 1, 10) - Date.UTC(2000, 0, 1),
      500,
      14 * 3_600_000,
    ]);
  });
  it("a clock line's reference: the same rules; null is no reference", () => {
    const clock = (reference: string) =>
      `{"time": 1000, "machine": "m", "event": "clock", "reference": ${reference}}`;
    expect(() => parseEvents(clock('null'), { source: 'c' })).toThrow(
      "c:1: clock line without 'reference'",
    );
    expect(() =>
      parseEvents(clock('"1969-12-31T00:00:00Z"'), { source: 'c' }),
    ).toThrow(`c:1: 'reference' is before 1970 ("1969-12-31T00:00:00Z")`);
    expect(() => parseEvents(clock('1e400'), { source: 'c' })).toThrow(
      "c:1: 'reference' is out of range (Infinity)",
    );
  });
  it('journald and docker numbers: the same range and 1970 messages', () => {
    const unit = `"_HOSTNAME": "h", "MESSAGE_ID": "${JOURNALD_UNIT_STARTED}", "UNIT": "u"`;
    expect(() =>
      parseEvents(`{"__REALTIME_TIMESTAMP": 1e400, ${unit}}`, { source: 'j' }),
    ).toThrow("j:1: '__REALTIME_TIMESTAMP' is out of range (Infinity)");
    expect(() =>
      parseEvents(`{"__REALTIME_TIMESTAMP": -5, ${unit}}`, { source: 'j' }),
    ).toThrow("j:1: '__REALTIME_TIMESTAMP' is before 1970 (-5)");
    // Nanoseconds for journald's microseconds: refused as a jsonl line's nanoseconds are, not read as year 56000.
    expect(() =>
      parseEvents(`{"__REALTIME_TIMESTAMP": "1714557600123456789", ${unit}}`, {
        source: 'j',
      }),
    ).toThrow(
      `j:1: '__REALTIME_TIMESTAMP' is in the year 56302 as microseconds ("1714557600123456789"): epoch nanoseconds? As such it is 2024-05-01T10:00:00.123Z; journalctl -o json gives microseconds`,
    );
    // A far date that is no nanosecond time of these decades stays the analysis's warning to give.
    expect(
      parseEvents(`{"__REALTIME_TIMESTAMP": "7258118400000000", ${unit}}`, {
        source: 'j',
      }).events,
    ).toHaveLength(1);
    const container =
      '"Type": "container", "Action": "start", "Actor": {"Attributes": {"name": "c"}}';
    expect(() =>
      parseEvents(`{${container}, "timeNano": 1e400}`, { source: 'd' }),
    ).toThrow("d:1: 'timeNano' is out of range (Infinity)");
    expect(() =>
      parseEvents(`{${container}, "time": -1}`, { source: 'd' }),
    ).toThrow("d:1: 'time' is before 1970 (-1)");
  });
  it('parseEventTime is the one parser of times, naming the field it is given (the CLI gives --at)', () => {
    expect(parseEventTime('2024-01-02T02:00:00+02', '--at')).toBe(
      Date.UTC(2024, 0, 2),
    );
    expect(parseEventTime('1704153600000', '--at')).toBe(Date.UTC(2024, 0, 2));
    expect(() => parseEventTime('noon', '--at')).toThrow(
      `'--at' must be ISO 8601 with a zone (e.g. 2024-05-01T10:00:00Z) or epoch milliseconds, got "noon"`,
    );
    expect(() => parseEventTime('1969-07-20T20:17:40Z', '--at')).toThrow(
      `'--at' is before 1970 ("1969-07-20T20:17:40Z")`,
    );
  });
});

describe('describeValue', () => {
  it('names a sent value by its type and its JSON; a string or null by its JSON alone', () => {
    expect(
      [
        'yes',
        '',
        null,
        0,
        -1.5,
        false,
        [],
        ['test'],
        {},
        { a: 1 },
        undefined,
      ].map(describeValue),
    ).toEqual([
      '"yes"',
      '""',
      'null',
      'a number (0)',
      'a number (-1.5)',
      'a boolean (false)',
      'an array ([])',
      'an array (["test"])',
      'an object ({})',
      'an object ({"a":1})',
      'nothing',
    ]);
  });
  it('cuts a long value short, as it may be a whole body', () => {
    const items = Array.from({ length: 50 }, (_, i) => i);
    expect(describeValue(items)).toBe(
      `an array (${JSON.stringify(items).slice(0, 79)}…)`,
    );
    expect(describeValue('x'.repeat(100))).toBe(`"${'x'.repeat(78)}…`);
    expect(describeValue('x'.repeat(78))).toBe(`"${'x'.repeat(78)}"`);
  });
});

describe('LineSplitter', () => {
  const split = (chunks: Array<string | Uint8Array>, maxLength?: number) => {
    const lines: string[] = [];
    const s = new LineSplitter(l => lines.push(l), {
      maxLength,
      tooLong: { throw: n => new Error(`too long at ${n}`) },
    });
    for (const c of chunks) s.push(c);
    s.end();
    return { lines, count: s.lines };
  };
  /** Splits with over-long lines dropped: the lines kept, and each dropped line's [length, number]. */
  const dropping = (chunks: Array<string | Uint8Array>, maxLength: number) => {
    const lines: string[] = [];
    const dropped: Array<[number, number]> = [];
    const s = new LineSplitter(l => lines.push(l), {
      maxLength,
      tooLong: { drop: (length, line) => dropped.push([length, line]) },
    });
    for (const c of chunks) s.push(c);
    s.end();
    return { lines, dropped, count: s.lines };
  };
  const cut = <T extends string | Uint8Array>(whole: T, size: number): T[] =>
    Array.from(
      { length: Math.ceil(whole.length / size) },
      (_, k) => whole.slice(k * size, (k + 1) * size) as T,
    );
  it('splits on \\n, keeping a \\r and empty lines; a last line only where text follows the last \\n', () => {
    expect(split(['a\r\n\nb'])).toEqual({ lines: ['a\r', '', 'b'], count: 3 });
    expect(split(['a\n'])).toEqual({ lines: ['a'], count: 1 });
    expect(split(['\n'])).toEqual({ lines: [''], count: 1 });
    expect(split([''])).toEqual({ lines: [], count: 0 });
    expect(split([])).toEqual({ lines: [], count: 0 });
  });
  it('gives the same lines however the text, or its UTF-8 bytes, is cut into chunks', () => {
    const text = 'first\nsé🚀cond\r\n\nthird line\nlast';
    const whole = split([text]);
    expect(whole.lines).toEqual([
      'first',
      'sé🚀cond\r',
      '',
      'third line',
      'last',
    ]);
    for (let size = 1; size <= text.length; size++)
      expect(split(cut(text, size)), `chunks of ${size}`).toEqual(whole);
    // A character's bytes cut between two chunks are decoded whole.
    const bytes = Buffer.from(text, 'utf8');
    for (let size = 1; size <= bytes.length; size++)
      expect(split(cut(bytes, size)), `chunks of ${size} bytes`).toEqual(whole);
  });
  it('ends bytes cut off inside a character with a replacement character', () => {
    expect(split([Buffer.from('ok\nab'), Buffer.from([0xc3])]).lines).toEqual([
      'ok',
      'ab\uFFFD',
    ]);
  });
  it('decodes bytes as a stream decoder does, ASCII chunks too: a character left unfinished before them is a replacement character', () => {
    // ASCII chunks skip the decoder; where it still holds the start of a character, they may not.
    expect(
      split([Buffer.from([0x61, 0xe2]), Buffer.from('b\nc')]).lines,
    ).toEqual(['a\uFFFDb', 'c']);
    // Unfinished, stray and complete characters, cut into two and three chunks everywhere.
    const bytes = Buffer.from([
      0x61, 0xe2, 0x82, 0x0a, 0x62, 0xf0, 0x9f, 0x0a, 0xc3, 0x41, 0x0a, 0x80,
      0x42, 0xc3, 0xa9, 0x0a, 0x43, 0xe2,
    ]);
    const decoded = (chunks: Buffer[]) => {
      const decoder = new StringDecoder('utf8');
      return chunks.map(c => decoder.write(c)).join('') + decoder.end();
    };
    for (let i = 0; i <= bytes.length; i++) {
      for (let j = i; j <= bytes.length; j++) {
        const chunks = [
          bytes.subarray(0, i),
          bytes.subarray(i, j),
          bytes.subarray(j),
        ];
        expect(split(chunks), `cut at ${i} and ${j}`).toEqual(
          split([decoded(chunks)]),
        );
      }
    }
  });
  it('refuses a line past the limit as it grows, naming its number; a line of the limit passes', () => {
    expect(split(['ab\nabcd\nabc', 'd'], 4).lines).toEqual([
      'ab',
      'abcd',
      'abcd',
    ]);
    expect(() => split(['ab\nabc', 'de\n'], 4)).toThrow('too long at 2');
    // Within one chunk too: the limit does not depend on how the text is cut.
    expect(() => split(['ab\nabcde\n'], 4)).toThrow('too long at 2');
    // Without a line break, refused before the text ends.
    expect(() => split(['ab\nab', 'cd', 'e'], 4)).toThrow('too long at 2');
  });
  it('throws an Error naming the line and limit by default', () => {
    const s = new LineSplitter(() => {}, { maxLength: 3 });
    expect(() => s.push('abc\nabcd\n')).toThrow(
      new Error('line 2 is longer than 3 characters'),
    );
  });
  it('drops an over-long line, told its length and number at its end, keeping the lines around it', () => {
    const lines: string[] = [];
    const dropped: number[] = [];
    const s = new LineSplitter(l => lines.push(l), {
      maxLength: 10,
      tooLong: { drop: length => dropped.push(length) },
    });
    s.push('short\n0123456');
    s.push('789abcdef');
    s.push('ghij\nnext\n');
    expect({ lines, dropped }).toEqual({
      lines: ['short', 'next'],
      dropped: [20],
    });
    expect(dropping(['ab\nabcde\nabc\n'], 4)).toEqual({
      lines: ['ab', 'abc'],
      dropped: [[5, 2]],
      count: 3,
    });
    // A last line without \n, dropped at the end of the input.
    expect(dropping(['ab\nab', 'cd', 'ef'], 4)).toEqual({
      lines: ['ab'],
      dropped: [[6, 2]],
      count: 2,
    });
    // However the text is cut, the same lines kept and dropped.
    const text = 'a\n0123456789\nbb\n0123456789ab\ncc';
    const whole = dropping([text], 10);
    expect(whole).toEqual({
      lines: ['a', '0123456789', 'bb', 'cc'],
      dropped: [[12, 4]],
      count: 5,
    });
    for (let size = 1; size <= text.length; size++)
      expect(dropping(cut(text, size), 10), `chunks of ${size}`).toEqual(whole);
  });
  it('parseEvents splits with it: the same events as a line-by-line parser', () => {
    const text = `${jl({ time: 1, machine: 'm', service: 'a' })}\r\n\n${jl({ time: 2, machine: 'm', service: 'b' })}`;
    const p = new EventLineParser();
    const byLine = text.split('\n').flatMap(l => p.push(l));
    expect(parseEvents(text).events).toEqual(byLine);
    expect(byLine.map(e => e.service)).toEqual(['a', 'b']);
  });
});

describe('parseEvents: journald', () => {
  const rec = (o: object) =>
    jl({ __REALTIME_TIMESTAMP: '1714557600123456', _HOSTNAME: 'h1', ...o });
  it('keeps unit started/failed records, skips every other record', () => {
    const text = [
      rec({ MESSAGE: 'kernel: eth0 up' }),
      rec({ MESSAGE_ID: JOURNALD_UNIT_STARTED, UNIT: 'db.service' }),
      rec({
        MESSAGE_ID: 'fc2e22bc6ee647b6b90729ab34a250b1',
        UNIT: 'x.service',
      }),
      rec({ MESSAGE_ID: JOURNALD_UNIT_FAILED, UNIT: 'db.service' }),
    ].join('\n');
    const r = parseEvents(text);
    expect(r.format).toBe('journald');
    expect(r.ignored).toBe(2);
    expect(r.events).toEqual([
      {
        time: 1714557600123.456,
        machine: 'h1',
        service: 'db.service',
        type: 'start',
      },
      {
        time: 1714557600123.456,
        machine: 'h1',
        service: 'db.service',
        type: 'failure',
      },
    ]);
  });
  it("a MESSAGE_ID given twice (an array) that holds a unit's start or failure is malformed, not skipped unsaid", () => {
    const text = [
      rec({ MESSAGE_ID: JOURNALD_UNIT_STARTED, UNIT: 'db.service' }),
      rec({
        MESSAGE_ID: [JOURNALD_UNIT_STARTED, 'fc2e22bc6ee647b6b90729ab34a250b1'],
        UNIT: 'api.service',
      }),
    ].join('\n');
    expect(() => parseEvents(text, { source: 'j' })).toThrow(
      `j:2: 'MESSAGE_ID' must be a string, got an array (a repeated field): ["${JOURNALD_UNIT_STARTED}","fc2e22bc6ee647b6b90729ab34a250b1"]`,
    );
    expect(() =>
      parseEvents(
        rec({
          MESSAGE_ID: [JOURNALD_UNIT_FAILED, JOURNALD_UNIT_FAILED],
          UNIT: 'db.service',
        }),
        { source: 'j' },
      ),
    ).toThrow(/^j:1: 'MESSAGE_ID' must be a string/);
    expect(parseEvents(text, { lenient: true })).toMatchObject({
      skipped: 1,
      events: [{ service: 'db.service' }],
    });
    // Other messages' IDs, repeated, are other messages.
    expect(
      parseEvents(
        [text.split('\n')[0], rec({ MESSAGE_ID: ['a', 'b'] })].join('\n'),
      ),
    ).toMatchObject({ ignored: 1, skipped: 0 });
  });
  it('says what a name field holds instead of a string (a repeated _HOSTNAME is an array)', () => {
    expect(() =>
      parseEvents(
        rec({
          MESSAGE_ID: JOURNALD_UNIT_STARTED,
          UNIT: 'db.service',
          _HOSTNAME: ['h1', 'h2'],
        }),
        { source: 'j' },
      ),
    ).toThrow(
      `j:1: '_HOSTNAME' must be a non-empty string, got an array (["h1","h2"])`,
    );
    expect(() =>
      parseEvents(jl({ time: 1714557600000, machine: 42, service: 's' }), {
        source: 'l',
      }),
    ).toThrow("l:1: 'machine' must be a non-empty string, got a number (42)");
  });
  it('ignores a record with a binary field of megabytes (a core dump, journalctl -o json --all)', () => {
    // Six million bytes: an array too long for the regex engine's stack to scan.
    const coredump = rec({
      MESSAGE_ID: 'fc2e22bc6ee647b6b90729ab34a250b1',
      COREDUMP: '',
    }).replace('""', `[${'200,'.repeat(6_000_000)}200]`);
    const text = [
      rec({ MESSAGE: 'first' }),
      coredump,
      rec({ MESSAGE_ID: JOURNALD_UNIT_STARTED, UNIT: 'db.service' }),
    ].join('\n');
    const r = parseEvents(text);
    expect(r.ignored).toBe(2);
    expect(r.events).toEqual([
      {
        time: 1714557600123.456,
        machine: 'h1',
        service: 'db.service',
        type: 'start',
      },
    ]);
  });
  it('ignores valid records of any shape: binary fields, repeated fields, nesting, whitespace', () => {
    const text = [
      rec({
        MESSAGE: [104, 105],
        _SYSTEMD_UNIT: ['a.service', 'b.service'],
        N: -1.5e3,
        C: null,
        B: true,
      }),
      rec({ MESSAGE: 'tab\tquote"slash\\ é \u2028' }),
      rec({ MESSAGE: { nested: [1, { deeper: [] }] } }),
      ' { "__REALTIME_TIMESTAMP" : "1" , "MESSAGE" : "spaced" } ',
      rec({ MESSAGE_ID: JOURNALD_UNIT_STARTED, UNIT: 'db.service' }),
    ].join('\n');
    expect(parseEvents(text, { source: 'j' })).toMatchObject({
      ignored: 4,
      skipped: 0,
      events: [{ service: 'db.service' }],
    });
  });
  it("warns of a _HOSTNAME that several machines' records carry (_MACHINE_ID), naming where each was first seen", () => {
    const unit = (host: string, id: string) =>
      rec({
        _HOSTNAME: host,
        _MACHINE_ID: id,
        MESSAGE_ID: JOURNALD_UNIT_STARTED,
        UNIT: 'db.service',
      });
    const text = [
      unit('localhost', 'a1'),
      rec({
        _HOSTNAME: 'localhost',
        _MACHINE_ID: 'c3',
        MESSAGE: 'not a unit record',
      }),
      unit('localhost', 'b2'),
      unit('localhost', 'a1'),
      unit('web', 'd4'),
    ].join('\n');
    expect(parseEvents(text, { source: 'merged.json' }).warnings).toEqual([
      `_HOSTNAME "localhost" names 2 machines (_MACHINE_ID a1 at merged.json:1, b2 at merged.json:3): their events are analysed as one machine's. ` +
        `Several hosts, or one reinstalled? Give each host a name of its own, or each host's export (jq -c '._HOSTNAME = "web-01"')`,
    ]);
    expect(
      parseEvents([unit('localhost', 'a1'), unit('localhost', 'a1')].join('\n'))
        .warnings,
    ).toEqual([]);
  });
  it('errors on a unit record without UNIT or timestamp', () => {
    expect(() =>
      parseEvents(rec({ MESSAGE_ID: JOURNALD_UNIT_STARTED }), { source: 'j' }),
    ).toThrow("j:1: unit record without 'UNIT'");
    expect(() =>
      parseEvents(
        rec({ MESSAGE_ID: JOURNALD_UNIT_STARTED, UNIT: [117, 110] }),
        { source: 'j' },
      ),
    ).toThrow(
      "j:1: 'UNIT' must be a string, got an array (a repeated field, or bytes journalctl could not print as text)",
    );
    expect(() =>
      parseEvents(
        jl({ _HOSTNAME: 'h', MESSAGE_ID: JOURNALD_UNIT_STARTED, UNIT: 'u' }),
        { source: 'j' },
      ),
    ).toThrow("j:1: missing '__REALTIME_TIMESTAMP'");
  });
  it.each([
    [
      'a truncated record',
      '{"__REALTIME_TIMESTAMP": "1714557600123456", "MESSAGE": "eth0',
    ],
    ['a line that is no JSON', 'kernel: eth0 up'],
    [
      'a unit record with broken JSON',
      `{"MESSAGE_ID": "${JOURNALD_UNIT_STARTED}", "UNIT": }`,
    ],
    // Shaped like an object (`{"` … `}`) but no JSON: a bare word, an unclosed string.
    [
      'a record with a broken value',
      '{"__REALTIME_TIMESTAMP": oops, "MESSAGE": "x}',
    ],
    [
      'a record with an invalid escape',
      '{"__REALTIME_TIMESTAMP": "1", "MESSAGE": "C:\\q"}',
    ],
    [
      'a record with a trailing comma',
      '{"__REALTIME_TIMESTAMP": "1", "MESSAGE": "x",}',
    ],
  ])('errors on %s among irrelevant records, naming the line', (_what, bad) => {
    const text = [
      rec({ MESSAGE: 'kernel: eth0 up' }),
      rec({ MESSAGE: 'eth1 up' }),
      bad,
    ].join('\n');
    expect(() => parseEvents(text, { source: 'j' })).toThrow(/^j:3: /);
    expect(parseEvents(text, { source: 'j', lenient: true })).toMatchObject({
      skipped: 1,
      ignored: 2,
      events: [],
    });
  });
});

describe('parseEvents: docker', () => {
  const ev = (action: string, attrs: object, extra: object = {}) =>
    jl({
      Type: 'container',
      Action: action,
      status: action,
      Actor: { ID: 'c1', Attributes: { name: 'web-1', ...attrs } },
      timeNano: 1714557600000000000,
      ...extra,
    });
  it('start is an initialization, die with a non-zero exit code a failure; labels or container name', () => {
    const text = [
      ev('start', {
        'recovery.backstage-recovery.io/service': 'web',
        'recovery.backstage-recovery.io/machine': 'vm1',
      }),
      ev('die', { exitCode: '0' }),
      ev('die', { exitCode: '137' }),
      jl({
        Type: 'network',
        Action: 'connect',
        Actor: { ID: 'n', Attributes: {} },
        timeNano: 1,
      }),
      ev('create', {}),
    ].join('\n');
    const r = parseEvents(text);
    expect(r.format).toBe('docker');
    expect(r.events).toEqual([
      { time: 1714557600000, machine: 'vm1', service: 'web', type: 'start' },
      {
        time: 1714557600000,
        machine: 'web-1',
        service: 'web-1',
        type: 'failure',
      },
    ]);
    expect(r.ignored).toBe(3);
  });
  it('keeps a machine label in ref form as the ref it names, one spelling for all; a name alone as it is', () => {
    const machineOf = (label: string) =>
      parseEvents(ev('start', { [MACHINE_LABEL]: label })).events[0].machine;
    for (const label of [
      'resource:web-01',
      'resource:default/web-01',
      'Resource:Default/Web-01',
    ])
      expect(machineOf(label)).toBe('resource:default/web-01');
    expect(machineOf('resource:ops/web-01')).toBe('resource:ops/web-01');
    // A name is also what hosts and containers are known by: the analysis matches it to the catalog.
    expect(machineOf('Web-01')).toBe('Web-01');
    // Not a machine's ref: kept as written.
    expect(machineOf('component:web')).toBe('component:web');
  });
  it("reads die's exitCode as a whole number (00 is 0); one that is none is malformed, not a failure", () => {
    const failures = (code: unknown) =>
      parseEvents(ev('die', { exitCode: code }), { source: 'd' }).events.map(
        e => e.type,
      );
    expect(failures('137')).toEqual(['failure']);
    expect(failures(137)).toEqual(['failure']);
    expect(failures('-1')).toEqual(['failure']);
    expect(failures('00')).toEqual([]);
    expect(failures(0)).toEqual([]);
    expect(failures(null)).toEqual([]);
    for (const [code, shown] of [
      ['', '""'],
      ['abc', '"abc"'],
      [true, 'a boolean (true)'],
      [1.5, 'a number (1.5)'],
      [' 1', '" 1"'],
      [{}, 'an object ({})'],
    ] as const) {
      expect(() => failures(code)).toThrow(
        `d:1: 'exitCode' must be the container's exit status, got ${shown}`,
      );
    }
    expect(
      parseEvents(
        [ev('die', { exitCode: 'oops' }), ev('start', {})].join('\n'),
        { lenient: true },
      ),
    ).toMatchObject({ skipped: 1, events: [{ type: 'start' }] });
  });
  it('names the machine label as what is missing where a service label has no container name beside it', () => {
    const text = jl({
      Type: 'container',
      Action: 'start',
      Actor: { ID: 'c', Attributes: { [SERVICE_LABEL]: 'web' } },
      timeNano: 1714557600000000000,
    });
    expect(() => parseEvents(text, { source: 'd' })).toThrow(
      `d:1: container event without a machine label (${MACHINE_LABEL}) or container name`,
    );
    const both = jl({
      Type: 'container',
      Action: 'start',
      Actor: {
        ID: 'c',
        Attributes: { [SERVICE_LABEL]: 'web', [MACHINE_LABEL]: 'vm1' },
      },
      timeNano: 1714557600000000000,
    });
    expect(parseEvents(both).events).toEqual([
      { time: 1714557600000, machine: 'vm1', service: 'web', type: 'start' },
    ]);
  });
  it('gives one event per service of a comma-separated service label, trimmed', () => {
    const text = [
      ev('start', {
        'recovery.backstage-recovery.io/service': 'database, files ,',
        'recovery.backstage-recovery.io/machine': 'data-01',
      }),
      // Only separators: no service named, so the container name.
      ev('die', {
        exitCode: '1',
        'recovery.backstage-recovery.io/service': ' , ',
      }),
    ].join('\n');
    const r = parseEvents(text);
    expect(r.events).toEqual([
      {
        time: 1714557600000,
        machine: 'data-01',
        service: 'database',
        type: 'start',
      },
      {
        time: 1714557600000,
        machine: 'data-01',
        service: 'files',
        type: 'start',
      },
      {
        time: 1714557600000,
        machine: 'web-1',
        service: 'web-1',
        type: 'failure',
      },
    ]);
    const p = new EventLineParser({ format: 'docker' });
    expect(p.push(text.split('\n')[0]).map(e => e.service)).toEqual([
      'database',
      'files',
    ]);
    expect(p.events).toBe(2);
  });
  it('errors without timeNano', () => {
    const text = jl({
      Type: 'container',
      Action: 'start',
      Actor: { ID: 'c', Attributes: { name: 'n' } },
    });
    expect(() => parseEvents(text, { format: 'docker', source: 'd' })).toThrow(
      "d:1: missing 'timeNano'",
    );
    const bad = jl({
      Type: 'container',
      Action: 'start',
      Actor: { ID: 'c', Attributes: { name: 'n' } },
      time: '2024-05-01',
    });
    expect(() => parseEvents(bad, { format: 'docker', source: 'd' })).toThrow(
      "d:1: missing 'timeNano', and 'time' is no count of seconds since the epoch",
    );
  });
  it("is detected from an old engine's status, id and from alone, and says such a record names no container", () => {
    const old = jl({
      status: 'start',
      id: 'c0ffee',
      from: 'nginx:1.25',
      time: 1714557600,
    });
    expect(() => parseEvents(old, { source: 'd' })).toThrow(
      "d:1: container event without a service label or container name (no 'Actor': a Docker engine before 1.10?)",
    );
    expect(parseEvents(old, { source: 'd', lenient: true })).toMatchObject({
      skipped: 1,
    });
    expect(
      parseEvents(jl({ status: 'pull', id: 'nginx:1.25', time: 1714557600 }), {
        format: 'docker',
      }),
    ).toMatchObject({ ignored: 1 });
  });
  it('without timeNano, takes time (seconds)', () => {
    const text = jl({
      Type: 'container',
      Action: 'start',
      Actor: { ID: 'c', Attributes: { name: 'n' } },
      time: 1714557600,
    });
    expect(parseEvents(text, { format: 'docker' }).events).toEqual([
      { time: 1714557600000, machine: 'n', service: 'n', type: 'start' },
    ]);
  });
});

describe('EventLineParser', () => {
  it.each([
    [
      'journald',
      jl({
        __REALTIME_TIMESTAMP: '1714557600123456',
        _HOSTNAME: 'h1',
        MESSAGE_ID: JOURNALD_UNIT_STARTED,
        UNIT: 'db.service',
      }),
      'db.service',
    ],
    [
      'docker',
      jl({
        Type: 'container',
        Action: 'start',
        Actor: { Attributes: { name: 'web-1' } },
        timeNano: 1714557600000000000,
      }),
      'web-1',
    ],
    ['jsonl', jl({ time: 1714557600000, machine: 'm', service: 'api' }), 'api'],
  ])(
    'lenient: detects the format from the first record that converts, not a malformed one before it (%s)',
    (format, record, service) => {
      // `{}` and a record that is no event of any format: both skipped, neither fixes the format.
      const text = [
        '{}',
        jl({ time: 'yesterday', machine: 'm', service: 's' }),
        record,
        record,
      ].join('\n');
      const r = parseEvents(text, { lenient: true, source: 'x' });
      expect(r).toMatchObject({ format, skipped: 2, ignored: 0 });
      expect(r.events.map(e => e.service)).toEqual([service, service]);
      // Not lenient: the first malformed line stops the run, as before.
      expect(() => parseEvents(text, { source: 'x' })).toThrow(
        "x:1: missing 'time'",
      );
    },
  );
  it('lenient: an input of malformed records only has no format', () => {
    expect(parseEvents('{}\n{"time": 1}', { lenient: true })).toMatchObject({
      format: undefined,
      skipped: 2,
      events: [],
    });
  });

  it('streams line by line, counting lines, and honours a forced format', () => {
    const p = new EventLineParser({ format: 'jsonl', source: 's' });
    expect(p.push(jl({ time: 5, machine: 'm', service: 'a' }))).toEqual([
      { time: 5, machine: 'm', service: 'a', type: 'start' },
    ]);
    expect(p.push('   ')).toEqual([]);
    // A journald record forced as jsonl is malformed (no time/machine).
    expect(() => p.push(jl({ MESSAGE_ID: JOURNALD_UNIT_STARTED }))).toThrow(
      "s:3: missing 'time'",
    );
    expect(p.lines).toBe(3);
    expect(() => new EventLineParser({ format: 'xml' as any })).toThrow(
      /unknown format/,
    );
  });
});

describe('parseEventsYielding', () => {
  // Over 600 KB, several slices: lines (and characters of non-ASCII names) cut between slices.
  const lines = Array.from({ length: 6_000 }, (_, i) =>
    i % 1000 === 999
      ? jl({
          time: 1_700_000_000_000 + i,
          machine: `m${i % 7}`,
          event: 'clock',
          reference: 1_700_000_060_000 + i,
        })
      : jl({
          time: 1_700_000_000_000 + i * 1000,
          machine: `m${i % 7}`,
          service: `sérvice-${'é'.repeat(i % 40)}-${i % 13}`,
          event: i % 17 === 0 ? 'failure' : 'start',
          note: 'x'.repeat(i % 50),
        }),
  );
  const options = {
    source: 'big.jsonl',
    received: { at: 1_800_000_000_000, marginMs: 86_400_000 },
  };

  it('reads a large text as parseEvents does, letting timers run between its slices', async () => {
    const text = lines.join('\n');
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    let result;
    try {
      result = await parseEventsYielding(text, options);
    } finally {
      clearInterval(timer);
    }
    expect(result).toEqual(parseEvents(text, options));
    expect(result.events).toHaveLength(6_000);
    expect(ticks).toBeGreaterThanOrEqual(2);
  });

  it('refuses a text whose last line is malformed as parseEvents does', async () => {
    const text = [
      ...lines,
      '{"time":"yesterday","machine":"m","service":"s"}',
    ].join('\n');
    expect(() => parseEvents(text, options)).toThrow(/^big\.jsonl:6001: /);
    await expect(parseEventsYielding(text, options)).rejects.toThrow(
      (() => {
        try {
          parseEvents(text, options);
        } catch (e) {
          return (e as Error).message;
        }
        return 'parsed';
      })(),
    );
  });
});
