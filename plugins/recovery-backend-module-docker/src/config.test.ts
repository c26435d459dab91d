import { ConfigReader } from '@backstage/config';
import { loadConfigSchema } from '@backstage/config-loader';
import type { JsonValue } from '@backstage/types';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readDockerModuleConfig } from './config';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'recovery-docker-config-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const read = (tls: { ca?: string; cert?: string; key?: string }) =>
  readDockerModuleConfig(
    new ConfigReader({
      recovery: {
        captureStore: { directory: dir },
        docker: {
          engines: [
            {
              id: 'dr-host',
              host: 'dr.example.internal',
              port: 2376,
              protocol: 'https',
              ...tls,
            },
          ],
        },
      },
    }),
  );

describe('readDockerModuleConfig TLS material', () => {
  it('takes PEM text as is and reads a file path', () => {
    const keyFile = join(dir, 'client.key');
    writeFileSync(keyFile, 'KEY FROM FILE');
    const { options } = read({ ca: PEM, key: keyFile }).engines[0];
    expect(options.ca).toBe(PEM);
    expect(options.key).toBe('KEY FROM FILE');
    expect(options.cert).toBeUndefined();
  });

  it('names the config key and the file when a path cannot be read', () => {
    const missing = join(dir, 'missing-ca.pem');
    expect(() => read({ ca: missing })).toThrow(
      `recovery.docker.engines[dr-host].ca: cannot read file ${missing}: ENOENT`,
    );
    // A directory is not a certificate either.
    expect(() => read({ cert: PEM, key: dir })).toThrow(
      `recovery.docker.engines[dr-host].key: cannot read file ${dir}: EISDIR`,
    );
  });
});

describe('readDockerModuleConfig quiesce timeout', () => {
  const withTimeout = (quiesceTimeout?: string) =>
    readDockerModuleConfig(
      new ConfigReader({
        recovery: {
          captureStore: { directory: dir },
          docker: { engines: [], ...(quiesceTimeout && { quiesceTimeout }) },
        },
      }),
    );

  it('reads a duration, 30 seconds unless given; refuses what is none, naming the key', () => {
    expect(withTimeout().quiesceTimeoutMs).toBe(30_000);
    expect(withTimeout('2m').quiesceTimeoutMs).toBe(120_000);
    expect(() => withTimeout('soon')).toThrow(
      'Invalid duration "soon" at recovery.docker.quiesceTimeout',
    );
  });
});

describe('readDockerModuleConfig capture pause limit', () => {
  const withLimit = (maxCapturePause?: string | object) =>
    readDockerModuleConfig(
      new ConfigReader({
        recovery: {
          captureStore: { directory: dir },
          docker: { engines: [], ...(maxCapturePause && { maxCapturePause }) },
        },
      }),
    );

  it('reads a duration, 5 minutes unless given', () => {
    expect(withLimit().maxCapturePauseMs).toBe(300_000);
    expect(withLimit('30s').maxCapturePauseMs).toBe(30_000);
    expect(withLimit('1m30s').maxCapturePauseMs).toBe(90_000);
  });

  it("reads Backstage's duration forms too, as the schedules do", () => {
    expect(withLimit('PT45S').maxCapturePauseMs).toBe(45_000);
    expect(withLimit({ minutes: 2 }).maxCapturePauseMs).toBe(120_000);
    expect(withLimit('2 minutes').maxCapturePauseMs).toBe(120_000);
  });

  it('refuses what is no duration, or none, naming the key', () => {
    for (const text of ['soon', '30']) {
      expect(() => withLimit(text)).toThrow(
        `Invalid duration "${text}" at recovery.docker.maxCapturePause: use e.g. 90s, 1h30m, PT15M or { minutes: 15 }`,
      );
    }
    expect(() => withLimit({ minute: 2 })).toThrow(
      'Invalid duration {"minute":2} at recovery.docker.maxCapturePause',
    );
    expect(() => withLimit('0s')).toThrow(
      'Invalid duration "0s" at recovery.docker.maxCapturePause: must be longer than 0s',
    );
  });
});

describe('the config schema, config.d.ts', () => {
  // What the backend checks app-config against at start, before readDockerModuleConfig reads it.
  it('takes every duration form maxCapturePause is read in', async () => {
    const schema = await loadConfigSchema({
      dependencies: [
        '@backstage-recovery/plugin-recovery-backend-module-docker',
      ],
      excludePackageDependencies: true,
    });
    const validate = (maxCapturePause: JsonValue) => () =>
      schema.process([
        {
          context: 'app-config.yaml',
          data: {
            recovery: {
              captureStore: { directory: dir },
              docker: { maxCapturePause },
            },
          },
        },
      ]);
    for (const form of ['5m', '1m30s', 'PT5M', '5 minutes', { minutes: 5 }]) {
      expect(validate(form)).not.toThrow();
    }
    expect(validate({ minutes: 'five' })).toThrow(
      'at /recovery/docker/maxCapturePause/minutes',
    );
  });
});

describe('readDockerModuleConfig remote engines', () => {
  const engine = (settings: Record<string, unknown>) =>
    readDockerModuleConfig(
      new ConfigReader({
        recovery: {
          captureStore: { directory: dir },
          docker: { engines: [{ id: 'dr-host', ...settings }] },
        },
      }),
    ).engines[0].options;

  it('speaks TLS, on Docker’s TLS port, when given TLS material without a protocol', () => {
    expect(
      engine({ host: 'dr.example.internal', ca: PEM, cert: PEM, key: PEM }),
    ).toMatchObject({
      host: 'dr.example.internal',
      protocol: 'https',
      port: 2376,
      ca: PEM,
      cert: PEM,
      key: PEM,
    });
    expect(
      engine({ host: 'dr.example.internal', protocol: 'http' }),
    ).toMatchObject({ protocol: 'http', port: 2375 });
    expect(
      engine({ host: 'dr.example.internal', protocol: 'https', port: 12376 }),
    ).toMatchObject({ protocol: 'https', port: 12376 });
  });

  it('refuses TLS material it would ignore, an unknown protocol, and an engine given two ways', () => {
    expect(() =>
      engine({
        host: 'dr.example.internal',
        protocol: 'http',
        ca: PEM,
        cert: PEM,
        key: PEM,
      }),
    ).toThrow(
      'recovery.docker.engines[dr-host].protocol is http, so its ca, cert and key would be ignored: use https',
    );
    expect(() =>
      engine({ host: 'dr.example.internal', protocol: 'tcp' }),
    ).toThrow(
      'recovery.docker.engines[dr-host].protocol must be http or https, not tcp',
    );
    expect(() =>
      engine({ host: 'dr.example.internal', socketPath: '/run/docker.sock' }),
    ).toThrow(
      'recovery.docker.engines[dr-host] has both socketPath and host: give one',
    );
  });

  it('refuses a port that is no TCP port, naming the key and the value', () => {
    for (const port of [0, -1, 65536, 2376.5]) {
      expect(() => engine({ host: 'dr.example.internal', port })).toThrow(
        `recovery.docker.engines[dr-host].port is ${port}: a TCP port is an integer from 1 to 65535`,
      );
    }
    expect(
      engine({ host: 'dr.example.internal', protocol: 'http', port: 65535 }),
    ).toMatchObject({ port: 65535 });
  });

  it('refuses plain HTTP to another machine unless protocol http says so: the API is root there, and carries captures in the clear', () => {
    for (const host of [
      'dr.example.internal',
      '10.0.0.9',
      'http://dr.example.internal',
      '128.0.0.1',
      '::2',
      'engine.localhost',
      'http://engine.localhost',
    ]) {
      expect(() => engine({ host })).toThrow(
        `recovery.docker.engines[dr-host].host is ${host} with no TLS (ca, cert, key): Docker's API over plain HTTP to another machine is unauthenticated, root on that host to anyone who reaches the port, and carries captures (their secrets) unencrypted. Give ca, cert and key (https), or set recovery.docker.engines[dr-host].protocol: http to accept it (a trusted, isolated network)`,
      );
    }
    // This machine's own engine (a tunnel, say): nothing leaves it.
    for (const host of [
      'localhost',
      '127.0.0.1',
      '127.1.2.3',
      '::1',
      '[::1]',
      'http://localhost',
      'http://[::1]',
    ])
      expect(engine({ host })).toMatchObject({ protocol: 'http', port: 2375 });
    // TLS where the URL says so.
    expect(engine({ host: 'https://dr.example.internal' })).toMatchObject({
      host: 'https://dr.example.internal',
    });
  });
});

describe('readDockerModuleConfig engine addresses', () => {
  const engine = (e: Record<string, unknown>) =>
    readDockerModuleConfig(
      new ConfigReader({
        recovery: {
          captureStore: { directory: dir },
          docker: { engines: [{ id: 'primary', ...e }] },
        },
      }),
    ).engines[0];

  it("takes a socket in DOCKER_HOST's form as its path", () => {
    expect(
      engine({ socketPath: 'unix:///run/recovery-docker/primary.sock' })
        .options,
    ).toEqual({
      socketPath: '/run/recovery-docker/primary.sock',
    });
    expect(engine({ socketPath: '/var/run/docker.sock' }).options).toEqual({
      socketPath: '/var/run/docker.sock',
    });
  });

  it("refuses DOCKER_HOST's tcp:// URL as host, naming the key: dockerode would go to port 80", () => {
    expect(() => engine({ host: 'tcp://dr.example.internal:2376' })).toThrow(
      'recovery.docker.engines[primary].host is a URL (tcp://dr.example.internal:2376): give the host name alone, and port and protocol (http or https) apart',
    );
    // dockerode's own http(s) URLs stay as they were.
    expect(
      engine({ host: 'https://dr.example.internal' }).options,
    ).toMatchObject({ host: 'https://dr.example.internal' });
  });

  it('captures only containers labelled as their machine where an engine asks for it', () => {
    expect(
      engine({ socketPath: '/var/run/docker.sock', requireMachineLabel: false })
        .requireMachineLabel,
    ).toBe(false);
    // Secure by default: a catalog author alone cannot have any container paused and copied.
    expect(
      engine({ socketPath: '/var/run/docker.sock' }).requireMachineLabel,
    ).toBe(true);
  });
});

describe('readDockerModuleConfig engine ids', () => {
  const withIds = (...ids: string[]) =>
    readDockerModuleConfig(
      new ConfigReader({
        recovery: {
          captureStore: { directory: dir },
          docker: {
            engines: ids.map(id => ({
              id,
              socketPath: '/var/run/docker.sock',
            })),
          },
        },
      }),
    ).engines.map(e => e.id);

  it('takes simple names', () => {
    expect(
      withIds('primary', 'dr-host', 'dc1.b', 'site_2', 'A'.repeat(63)),
    ).toEqual(['primary', 'dr-host', 'dc1.b', 'site_2', 'A'.repeat(63)]);
  });

  it('refuses an id that is not a simple name, naming the key and the rule: it names files in the capture store', () => {
    // A path, names that would share another id's capture notes (`dc1/b`, `dc1 b` and `dc1-b` would all
    // be `dc1-b`), a hidden file's, and one past a file name's room.
    for (const id of [
      'dc1/b',
      '../store',
      'dc1 b',
      '.primary',
      '-x',
      'A'.repeat(64),
    ]) {
      expect(() => withIds('primary', id)).toThrow(
        `recovery.docker.engines[1].id is ${JSON.stringify(id)}: an engine id must be a simple name (letters, digits, '_', '.' and '-', starting with a letter or digit, at most 63 characters)`,
      );
    }
  });
});

describe('readDockerModuleConfig probe image', () => {
  const probeImage = (image: string) =>
    readDockerModuleConfig(
      new ConfigReader({
        recovery: {
          captureStore: { directory: dir },
          docker: { engines: [], probeImage: image },
        },
      }),
    ).probeImage;

  it('takes image names Docker takes', () => {
    for (const image of [
      'recovery/probe:1',
      'probe',
      'registry.example.com:5000/team/probe:v1.2',
      'localhost:5000/probe_x-y:latest',
    ]) {
      expect(probeImage(image)).toBe(image);
    }
  });

  it('refuses one the engine would refuse at every run, naming the key and the value', () => {
    for (const image of [
      'recovery/Probe:1',
      'recovery probe',
      'recovery/probe:',
      `recovery/probe@sha256:${'a'.repeat(64)}`,
      'tcp://probe:1',
    ]) {
      expect(() => probeImage(image)).toThrow(
        `recovery.docker.probeImage is ${JSON.stringify(image)}: give an image name and tag Docker takes`,
      );
    }
  });
});
