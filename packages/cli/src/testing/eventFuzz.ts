/**
 * Seeded fuzz inputs for the event parsers, as the CLI's `recovery analyze` and the backend's
 * `POST /api/recovery/events` read them: valid exported logs of each format (jsonl, journald,
 * docker events), mutated the ways real exports go wrong and the ways nobody thought of.
 * Each case is reproducible from its seed alone.
 */
import {
  type InitializationEvent,
  MACHINE_LABEL,
} from '@backstage-recovery/plugin-recovery-common';
import {
  generateHistory,
  journaldNoise,
  seededRandom,
  toDocker,
  toJournaldRecord,
  toJsonl,
} from '../../../../bench/generate';

export type FuzzFormat = 'jsonl' | 'journald' | 'docker';
const FORMATS: FuzzFormat[] = ['jsonl', 'journald', 'docker'];

export interface FuzzFile {
  name: string;
  data: Buffer;
}

export interface FuzzCase {
  seed: number;
  /** The format each file was made from (before mutations). */
  formats: FuzzFormat[];
  files: FuzzFile[];
  /** `--format` / `?format=` to force, sometimes. */
  forced?: FuzzFormat;
  /** What was done to the valid lines, in order: a failure names them. */
  mutations: string[];
}

// A small site: each case reads a window of it, so each analysis stays in milliseconds.
const history = generateHistory({
  seed: 17,
  machines: 3,
  services: 6,
  siteBoots: 4,
  machineReboots: 3,
});
const withClocks: InitializationEvent[] = [
  ...history.events,
  // jsonl clock readings of two machines, a few seconds off.
  ...history.events
    .filter((_, i) => i % 25 === 0)
    .map(e => ({
      time: e.time,
      machine: e.machine,
      service: '',
      type: 'clock' as const,
      reference: e.time + 4_000,
    })),
].sort((a, b) => a.time - b.time);

const BASE: Record<FuzzFormat, string[]> = {
  jsonl: toJsonl(withClocks),
  journald: history.events.flatMap((e, i) =>
    i % 3 === 0
      ? [
          journaldNoise(e.machine, e.time - 500, i * 2),
          toJournaldRecord(e, i * 2 + 1),
        ]
      : [toJournaldRecord(e, i * 2 + 1)],
  ),
  docker: toDocker(history.events),
};

/** Fields of each format's records a mutation aims at (a dotted path into the record). */
const FIELDS: Record<FuzzFormat, string[]> = {
  jsonl: ['time', 'machine', 'service', 'event', 'reference'],
  journald: [
    '__REALTIME_TIMESTAMP',
    '_HOSTNAME',
    'UNIT',
    'USER_UNIT',
    'MESSAGE_ID',
    '_MACHINE_ID',
    'MESSAGE',
  ],
  docker: [
    'timeNano',
    'time',
    'Action',
    'status',
    'Type',
    'Actor',
    'Actor.Attributes',
    'Actor.Attributes.name',
    'Actor.Attributes.recovery.backstage-recovery.io/service',
    'Actor.Attributes.recovery.backstage-recovery.io/machine',
    'Actor.Attributes.exitCode',
  ],
};

const nested = (depth: number, open = '[', close = ']', inner = '1') =>
  `${open.repeat(depth)}${inner}${close.repeat(depth)}`;
const nestedObject = (depth: number) =>
  `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

/** Values as raw JSON text (some of them not JSON at all): times, names, the odd and the hostile. */
const TIMES = [
  '-1',
  '0',
  '1',
  '-0',
  '1.5',
  '0.0000001',
  '1e400',
  '-1e400',
  '1e308',
  'NaN',
  'Infinity',
  '-Infinity',
  '"NaN"',
  '"Infinity"',
  '8640000000000000',
  '8640000000000001',
  '"8640000000000001"',
  '9007199254740993',
  '"-5"',
  '"1e3"',
  '" 123"',
  '"0x10"',
  '""',
  'null',
  'true',
  'false',
  '[]',
  '{}',
  '[1714557600000]',
  '"2024-02-30T00:00:00Z"',
  '"+275760-09-13T00:00:00Z"',
  '"275760-09-13T00:00:00.001Z"',
  '"2024-05-01T10:00:00"',
  '"2024-05-01T10:00:00,5+05"',
  '"2024-05-01T10:00:00.123456789-0130"',
  '"1969-12-31T23:59:59.999Z"',
  '"9999-12-31T23:59:59Z"',
  '1714557600',
  '1714557600000',
  '"1714557600000"',
  '1714557600000000',
  '1714557600000000000',
  '"1714557600000000000"',
  `"${'9'.repeat(400)}"`,
  '1e-400',
  '{"toString":1}',
  '{"valueOf":1,"toString":1}',
];
const NAMES = [
  '""',
  '" "',
  '"\\u0000"',
  '"a\\u0000b"',
  '"\\n"',
  '"\\u001b[31mred"',
  '"\\u007f"',
  '"\\u0085"',
  '"\\u009b31m"',
  `"${'x'.repeat(255)}"`,
  `"${'x'.repeat(256)}"`,
  `"${'\u{1F600}'.repeat(255)}"`,
  `"${'\u{1F600}'.repeat(256)}"`,
  '"__proto__"',
  '"constructor"',
  '"toString"',
  '"hasOwnProperty"',
  '"valueOf"',
  '"prototype"',
  '"\\ud800"',
  '"\\udc00x"',
  '"\\ud83d"',
  '"é"',
  '"\\ufeff"',
  '"\\u2028"',
  '"\\ufffd"',
  '"a,b"',
  '", ,"',
  '"/^(a+)+$/"',
  '"$1"',
  '"%s%n"',
  '"web-01"',
  '"db"',
  '5',
  '-0',
  '1e400',
  'null',
  'true',
  '[]',
  '["a"]',
  '[104,105]',
  '{}',
  '{"toString":1}',
  '{"__proto__":{"x":1}}',
];
const EVENTS = [
  '"start"',
  '"failure"',
  '"clock"',
  '"START"',
  '"stop"',
  '""',
  'null',
  '1',
  '[]',
  '["start"]',
  '{"toString":1}',
  '"__proto__"',
];
const MESSAGE_IDS = [
  '"39f53479d3a045ac8e11786248231fbf"',
  '"be02cf6855d2428ba40df7e9d022f03d"',
  '"39F53479D3A045AC8E11786248231FBF"',
  '" 39f53479d3a045ac8e11786248231fbf"',
  '[51,57,102]',
  '["39f53479d3a045ac8e11786248231fbf","be02cf6855d2428ba40df7e9d022f03d"]',
  '0',
];
const ODD = [
  nested(40),
  nested(5_000),
  nestedObject(3_000),
  nested(3_000, '{"a":[', ']}'),
  '{"toString":1}',
  '{"valueOf":{"toString":1}}',
  '[[]]',
  '[{}]',
  '"\\"',
  '"\\\\"',
  '"\\u12"',
];

/** A JSON array of the UTF-8 bytes of `text`: how journalctl prints a field that is not text. */
const bytesArray = (text: string) => JSON.stringify([...Buffer.from(text)]);

/** One case: a window of valid lines of one or two formats, with one to four mutations. */
export function fuzzCase(seed: number): FuzzCase {
  const { rnd, pick } = seededRandom(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const mutations: string[] = [];
  const format = pick(FORMATS);
  const window = (f: FuzzFormat, size: number) => {
    const base = BASE[f];
    const start = int(Math.max(1, base.length - size));
    return base.slice(start, start + size);
  };
  let lines = window(format, 12 + int(30));
  const formats = [format];
  // Bytes mutations apply after the lines are joined: they need not keep a line valid text.
  const byteMutations: ((data: Buffer) => Buffer)[] = [];
  let eol = '\n';
  let finalEol = true;
  let secondFile: string[] | undefined;
  /** jsonl clock readings in a file of their own, read after the others. */
  let clockFile: string[] | undefined;
  let forced: FuzzFormat | undefined;

  /** The line's record with `path` set to raw JSON text `raw` (or deleted, for undefined). */
  const setField = (
    line: string,
    path: string,
    raw: string | undefined,
  ): string => {
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line);
    } catch {
      return line;
    }
    if (typeof record !== 'object' || record === null) return line;
    const keys = path.startsWith('Actor.Attributes.')
      ? ['Actor', 'Attributes', path.slice('Actor.Attributes.'.length)]
      : path.split('.');
    let target: Record<string, unknown> = record;
    for (const k of keys.slice(0, -1)) {
      if (typeof target[k] !== 'object' || target[k] === null) target[k] = {};
      target = target[k] as Record<string, unknown>;
    }
    const last = keys[keys.length - 1];
    if (raw === undefined) delete target[last];
    else target[last] = '@@RAW@@';
    try {
      return JSON.stringify(record).replace('"@@RAW@@"', () => raw ?? '');
    } catch {
      // A record an earlier mutation nested too deep to write again: it stays as it is.
      return line;
    }
  };
  const pickLine = () => int(lines.length);
  /** The machine a record names, in its format; undefined for a line that is no such record. */
  const machineOf = (line: string): string | undefined => {
    let record;
    try {
      record = JSON.parse(line);
    } catch {
      return undefined;
    }
    const attributes = record?.Actor?.Attributes;
    const machine =
      format === 'jsonl'
        ? record?.machine
        : format === 'journald'
          ? record?._HOSTNAME
          : (attributes?.[MACHINE_LABEL] ?? attributes?.name);
    return typeof machine === 'string' ? machine : undefined;
  };
  const valueFor = (field: string) => {
    const which = rnd();
    if (/time|TIMESTAMP|reference/i.test(field))
      return which < 0.7 ? pick(TIMES) : pick([...NAMES, ...ODD]);
    if (field === 'event')
      return which < 0.7 ? pick(EVENTS) : pick([...TIMES, ...ODD]);
    if (field === 'MESSAGE_ID')
      return which < 0.6 ? pick(MESSAGE_IDS) : pick([...NAMES, ...ODD]);
    if (field === 'Action' || field === 'status')
      return pick([
        '"start"',
        '"die"',
        '"stop"',
        '"START"',
        'null',
        '1',
        '[]',
        '{"toString":1}',
        ...ODD,
      ]);
    if (field === 'Type')
      return pick([
        '"container"',
        '"image"',
        '"network"',
        '""',
        'null',
        '1',
        '[]',
      ]);
    if (field.endsWith('exitCode'))
      return pick([
        '"0"',
        '0',
        '"1"',
        '1',
        '"137"',
        '-1',
        'null',
        '""',
        '[]',
        '{}',
        '{"toString":1}',
        '{"valueOf":1}',
        '1e400',
        ...ODD,
      ]);
    if (field === 'UNIT' || field === 'USER_UNIT' || field === '_HOSTNAME') {
      if (which < 0.25)
        return bytesArray(
          pick(['nginx.service', 'caf\u00e9.service', 'web-01']),
        );
      // A field repeated in one entry: journalctl prints each value, bytes as arrays.
      if (which < 0.3) return `[${bytesArray('a')},${bytesArray('b')}]`;
    }
    return which < 0.85 ? pick(NAMES) : pick([...TIMES, ...ODD]);
  };

  const MUTATORS: Record<string, () => void> = {
    field: () => {
      const i = pickLine();
      const field = pick(FIELDS[format]);
      const raw = valueFor(field);
      // An exit status is looked at in a container's death alone.
      if (field.endsWith('exitCode') && rnd() < 0.7)
        lines[i] = setField(
          setField(lines[i], 'Action', '"die"'),
          'status',
          '"die"',
        );
      lines[i] = setField(lines[i], field, raw);
      mutations.push(
        `line ${i + 1}: ${field} = ${raw.length > 60 ? `${raw.slice(0, 60)}… (${raw.length} chars)` : raw}`,
      );
    },
    hostileObject: () => {
      // An object whose own toString or valueOf is no function: String() and template strings throw on it.
      const i = pickLine();
      const field =
        format === 'docker' && rnd() < 0.5
          ? 'Actor.Attributes.exitCode'
          : pick(FIELDS[format]);
      const raw = pick([
        '{"toString":1}',
        '{"valueOf":1,"toString":1}',
        '{"toString":{}}',
        '[{"toString":1}]',
        '{"__proto__":null,"toString":1}',
      ]);
      if (field.endsWith('exitCode'))
        lines[i] = setField(
          setField(lines[i], 'Action', '"die"'),
          'status',
          '"die"',
        );
      lines[i] = setField(lines[i], field, raw);
      mutations.push(`line ${i + 1}: ${field} = ${raw}`);
    },
    missingField: () => {
      const i = pickLine();
      const field = pick(FIELDS[format]);
      lines[i] = setField(lines[i], field, undefined);
      mutations.push(`line ${i + 1}: without ${field}`);
    },
    extraField: () => {
      const i = pickLine();
      const key = pick([
        'note',
        '__proto__',
        'constructor',
        'toString',
        'hasOwnProperty',
        'time',
        'machine',
        'service',
        'event',
        'reference',
        '_HOSTNAME',
        'MESSAGE_ID',
        '__REALTIME_TIMESTAMP',
        'timeNano',
        'Actor',
        'status',
        'id',
        'from',
        'UNIT',
        'x'.repeat(300),
      ]);
      const raw = pick([...NAMES, ...TIMES, ...ODD]);
      lines[i] = setField(lines[i], key, raw);
      mutations.push(
        `line ${i + 1}: extra ${key.length > 20 ? `${key.slice(0, 20)}…` : key} = ${raw.slice(0, 60)}`,
      );
    },
    duplicateKey: () => {
      // JSON.parse keeps the last of duplicate keys: before the first `}` of the line or after `{`.
      const i = pickLine();
      const key = pick([...FIELDS[format], 'time', 'machine']);
      const raw = valueFor(key);
      const at = rnd() < 0.5 ? 'first' : 'last';
      const line = lines[i];
      lines[i] =
        at === 'first'
          ? line.replace('{', () => `{"${key}":${raw},`)
          : line.replace(/\}\s*$/, () => `,"${key}":${raw}}`);
      mutations.push(
        `line ${i + 1}: duplicate ${key} (${at}) = ${raw.slice(0, 60)}`,
      );
    },
    numbersAsStrings: () => {
      const i = pickLine();
      const toString = rnd() < 0.5;
      lines[i] = toString
        ? lines[i].replace(/:(-?\d[\d.eE+-]*)/g, ':"$1"')
        : lines[i].replace(/:"(-?\d[\d.eE+-]*)"/g, ':$1');
      mutations.push(
        `line ${i + 1}: ${toString ? 'numbers as strings' : 'digit strings as numbers'}`,
      );
    },
    truncate: () => {
      // Cut at a position of each class: in a key, after a colon, in a string, in a number, at a
      // brace, an escape, the first or last character.
      const i = rnd() < 0.5 ? lines.length - 1 : pickLine();
      const line = lines[i];
      const cls = pick([
        '"',
        ':',
        ',',
        '0123456789',
        '{}[]',
        '\\',
        'abcdefghijklmnopqrstuvwxyz',
        'edge',
      ]);
      // Within the first 4,000 characters: a long line's tail is more of the same.
      const positions =
        cls === 'edge'
          ? [0, 1, line.length - 1]
          : [...line.slice(0, 4_000)].flatMap((c, p) =>
              cls.includes(c) ? [p, p + 1] : [],
            );
      const cut = positions.length ? pick(positions) : int(line.length);
      lines[i] = line.slice(0, cut);
      if (i === lines.length - 1 && rnd() < 0.6) finalEol = false;
      mutations.push(
        `line ${i + 1}: cut at ${cut} of ${line.length} (${cls})${i === lines.length - 1 && !finalEol ? ', no final line end' : ''}`,
      );
    },
    byteFlip: () => {
      const flips = 1 + int(3);
      mutations.push(`${flips} random byte(s) replaced`);
      byteMutations.push(data => {
        const out = Buffer.from(data);
        for (let k = 0; k < flips && out.length; k++)
          out[int(out.length)] = int(256);
        return out;
      });
    },
    invalidUtf8: () => {
      const bytes = pick([
        [0xff],
        [0xc3],
        [0xe2, 0x82],
        [0xed, 0xa0, 0x80],
        [0xc0, 0xaf],
        [0xf4, 0x90, 0x80, 0x80],
        [0xfc],
        [0x80, 0x80],
      ]);
      const inString = rnd() < 0.7;
      mutations.push(
        `bytes ${bytes.map(b => b.toString(16)).join(' ')} ${inString ? 'in a string' : 'anywhere'}`,
      );
      byteMutations.push(data => {
        const from = int(data.length + 1);
        const quote = data.indexOf(0x22, from);
        const at = inString && quote >= 0 ? quote + 1 : from;
        return Buffer.concat([
          data.subarray(0, at),
          Buffer.from(bytes),
          data.subarray(at),
        ]);
      });
    },
    bom: () => {
      const where = pick([
        'file',
        'line',
        'every line',
        'utf16le bom',
        'double',
      ]);
      mutations.push(`byte-order mark: ${where}`);
      if (where === 'line') lines[pickLine()] = `\ufeff${lines[pickLine()]}`;
      else if (where === 'every line') lines = lines.map(l => `\ufeff${l}`);
      else if (where === 'double') lines[0] = `\ufeff\ufeff${lines[0]}`;
      else
        byteMutations.push(data =>
          Buffer.concat([
            Buffer.from(where === 'file' ? [0xef, 0xbb, 0xbf] : [0xff, 0xfe]),
            data,
          ]),
        );
    },
    lineEnds: () => {
      const kind = pick(['\r\n', '\r\r\n', '\r', '\n\r', 'mixed', 'cr inside']);
      mutations.push(`line ends ${JSON.stringify(kind)}`);
      if (kind === 'mixed')
        lines = lines.map(l => (rnd() < 0.5 ? `${l}\r` : l));
      else if (kind === 'cr inside') {
        const i = pickLine();
        const p = int(lines[i].length);
        lines[i] = `${lines[i].slice(0, p)}\r${lines[i].slice(p)}`;
      } else eol = kind;
    },
    longLine: () => {
      const i = pickLine();
      const size = pick([70_000, 200_000, 600_000]);
      const kind = pick(['garbage', 'message', 'name', 'bytes']);
      if (kind === 'garbage') lines.splice(i, 0, 'x'.repeat(size));
      else if (kind === 'message')
        lines[i] = setField(
          lines[i],
          'MESSAGE',
          JSON.stringify('m'.repeat(size)),
        );
      else if (kind === 'bytes')
        lines[i] = setField(
          lines[i],
          'MESSAGE',
          `[${Array(size / 4)
            .fill('200')
            .join(',')}]`,
        );
      else
        lines[i] = setField(
          lines[i],
          pick(
            FIELDS[format].filter(
              f =>
                !/time|TIMESTAMP|reference|MESSAGE_ID|Actor$|Attributes$/i.test(
                  f,
                ),
            ),
          ),
          JSON.stringify('n'.repeat(size)),
        );
      mutations.push(`line ${i + 1}: long (${kind}, ${size})`);
    },
    deepNesting: () => {
      const i = pickLine();
      const depth = pick([100, 10_000, 50_000]);
      const where = pick(['line', 'value']);
      const raw = rnd() < 0.5 ? nested(depth) : nestedObject(depth);
      if (where === 'line') lines[i] = raw;
      else
        lines[i] = setField(lines[i], pick([...FIELDS[format], 'note']), raw);
      mutations.push(`line ${i + 1}: nested ${depth} deep (${where})`);
    },
    emptyLines: () => {
      const n = 1 + int(4);
      for (let k = 0; k < n; k++)
        lines.splice(
          int(lines.length + 1),
          0,
          pick([
            '',
            ' ',
            '\t',
            '  \t ',
            '\u00a0',
            '\u3000',
            '\ufeff',
            '\u0000',
          ]),
        );
      mutations.push(`${n} blank line(s)`);
    },
    mixedFormats: () => {
      const other = pick(FORMATS.filter(f => f !== format));
      const extra = window(other, 1 + int(6));
      if (rnd() < 0.3) {
        secondFile = extra.concat(window(other, 10));
        formats.push(other);
        mutations.push(`a second file of ${other}`);
      } else {
        const at = int(lines.length + 1);
        lines.splice(at, 0, ...extra);
        mutations.push(`${extra.length} ${other} line(s) at line ${at + 1}`);
      }
    },
    whitespaceOnly: () => {
      lines = [pick(['', ' ', '\t\t', '   \r']), ' ', ''];
      mutations.push('whitespace only');
    },
    notARecord: () => {
      const i = pickLine();
      const raw = pick([
        '{',
        '}',
        '[',
        ']',
        'null',
        '1',
        '"text"',
        'true',
        '[1,2]',
        `[${lines[i]}]`,
        '{}',
        '{"":""}',
        'nul',
        '\u0000\u0000',
        ...ODD,
      ]);
      lines[i] = raw;
      mutations.push(`line ${i + 1}: ${raw.slice(0, 40)}`);
    },
    prettyPrinted: () => {
      const i = pickLine();
      try {
        lines.splice(
          i,
          1,
          ...JSON.stringify(JSON.parse(lines[i]), null, 2).split('\n'),
        );
        mutations.push(`line ${i + 1}: pretty-printed`);
      } catch {
        mutations.push('pretty-printed (no record)');
      }
    },
    reorder: () => {
      const { shuffled } = seededRandom(seed + 1);
      lines = rnd() < 0.5 ? shuffled(lines) : [...lines, ...lines];
      mutations.push('lines shuffled or repeated');
    },
    utf16: () => {
      mutations.push('the whole file in UTF-16LE');
      byteMutations.push(data => Buffer.from(data.toString('utf8'), 'utf16le'));
    },
    rename: () => {
      // Every mention of one service or machine renamed: a valid input whose names a dictionary keyed
      // by plain objects would lose (`__proto__`), or that are valid only just (255 characters).
      const which = pick(
        format === 'docker'
          ? ['svc-1', 'svc-2', 'host-1', 'host-2']
          : ['svc-1.service', 'svc-2.service', 'host-1', 'host-2'],
      );
      // '\ud800' is written to the file as U+FFFD's bytes; its JSON escape (the text \ud800) is a lone surrogate once parsed.
      const to = pick([
        '__proto__',
        'constructor',
        'toString',
        'hasOwnProperty',
        'valueOf',
        'x'.repeat(255),
        '\u{1F600}'.repeat(255),
        'café',
        '\ud800',
        '\\ud800',
        'a\\udc00',
        'a b',
        '$&',
        '0',
        '-1',
        'NaN',
      ]);
      lines = lines.map(l => l.split(which).join(to));
      mutations.push(`${which} renamed ${to.slice(0, 20)}`);
    },
    extremeTimes: () => {
      // Valid times at the edges: all at once, 1970, the last date a Date holds, a year apart.
      const base = pick([
        0,
        1,
        1e11,
        Date.UTC(2200, 0, 1),
        8.64e15 - 10_000_000,
        8.64e15,
      ]);
      const step = pick([0, 1, 60_000, 365 * 86_400_000]);
      const machine = rnd() < 0.5 ? pick(['host-1', 'host-2']) : undefined;
      let k = 0;
      lines = lines.map(l => {
        if (machine !== undefined && !l.includes(`"${machine}"`)) return l;
        const t = Math.min(8.64e15, base + step * k++);
        if (format === 'jsonl') {
          const moved = setField(l, 'time', String(t));
          return l.includes('"clock"')
            ? setField(moved, 'reference', String(Math.min(8.64e15, t + 4_000)))
            : moved;
        }
        if (format === 'journald')
          return setField(l, '__REALTIME_TIMESTAMP', `"${BigInt(t) * 1000n}"`);
        return setField(l, 'timeNano', `"${BigInt(t) * 1_000_000n}"`);
      });
      mutations.push(
        `times of ${machine ?? 'every machine'} from ${base}, ${step} ms apart`,
      );
    },
    pastReach: () => {
      // A record near the last date there is, and a clock reading of its machine (before or after it,
      // or in a file of its own) whose offset may move it past that date: known only once all is read.
      const i = pickLine();
      const machine = machineOf(lines[i]);
      if (machine === undefined) {
        mutations.push(`line ${i + 1}: no record to move near the last date`);
        return;
      }
      const t = 8.64e15 - pick([1, 1000, 60_000, 86_400_000]);
      if (format === 'jsonl') lines[i] = setField(lines[i], 'time', String(t));
      else if (format === 'journald')
        lines[i] = setField(
          lines[i],
          '__REALTIME_TIMESTAMP',
          `"${BigInt(t) * 1000n}"`,
        );
      else
        lines[i] = setField(
          lines[i],
          'timeNano',
          `"${BigInt(t) * 1_000_000n}"`,
        );
      const offset = pick([
        -1000,
        1,
        60_000,
        86_400_000,
        50 * 365 * 86_400_000,
      ]);
      const at = Date.UTC(2030, 0, 1);
      const reading = JSON.stringify({
        time: at,
        machine,
        event: 'clock',
        reference: at + offset,
      });
      const where =
        format === 'jsonl' && rnd() < 0.6 ? pick(['before', 'after']) : 'file';
      if (where === 'file') clockFile = [...(clockFile ?? []), reading];
      else lines.splice(where === 'before' ? i : i + 1, 0, reading);
      mutations.push(
        `line ${i + 1}: time ${t}, a clock reading of ${machine} ${offset} ms off ${where === 'file' ? 'in a file of its own' : where === 'before' ? 'before it' : 'after it'}`,
      );
    },
    forceFormat: () => {
      forced = pick(FORMATS);
      mutations.push(`forced format ${forced}`);
    },
  };
  const names = Object.keys(MUTATORS);
  const count = 1 + int(rnd() < 0.8 ? 2 : 4);
  for (let k = 0; k < count; k++) MUTATORS[pick(names)]();

  const join = (ls: string[], end: boolean) =>
    Buffer.from(ls.join(eol) + (end && ls.length ? eol : ''));
  let data = join(lines, finalEol);
  for (const mutate of byteMutations) data = mutate(data);
  const files: FuzzFile[] = [
    { name: `fuzz-${seed}.${format === 'jsonl' ? 'jsonl' : 'json'}`, data },
  ];
  if (secondFile)
    files.push({ name: `fuzz-${seed}-b.json`, data: join(secondFile, true) });
  if (clockFile)
    files.push({
      name: `fuzz-${seed}-clock.jsonl`,
      data: join(clockFile, true),
    });
  return { seed, formats, files, forced, mutations };
}

/** A case as a failure message shows it: enough to read, and the seed to reproduce it. */
export function describeCase(c: FuzzCase): string {
  const shownFile = (f: FuzzFile) => {
    const text = f.data.toString('utf8');
    return `${f.name} (${f.data.length} bytes): ${JSON.stringify(text.length > 700 ? `${text.slice(0, 700)}…` : text)}`;
  };
  return `seed ${c.seed} (fuzzCase(${c.seed})), made from ${c.formats.join(' + ')}${c.forced ? `, --format ${c.forced}` : ''}; mutations: ${c.mutations.join('; ')}\n${c.files.map(shownFile).join('\n')}`;
}
