import Docker from 'dockerode';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {
  LabHandle,
  MachineHandle,
} from '@backstage-recovery/plugin-recovery-node';
import { DockerCaptureSource } from '../DockerCaptureSource';
import { DockerHypervisorHost } from '../DockerHypervisorHost';
import { hostCondition } from '@backstage-recovery/plugin-recovery-node';
import { Readable } from 'node:stream';
import { followProgress } from './dockerStreams';
import {
  answerWithin,
  engineFailure,
  explainEngineError,
  isUnanswered,
  onEngine,
} from './engineErrors';

/** A local TCP port nothing listens on: bound once by us, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise(resolve => server.close(resolve));
  return port;
}

describe('engine errors', () => {
  it('names the engine that cannot be reached, with where and why', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'no-engine-'));
    try {
      const docker = new Docker({ socketPath: join(dir, 'docker.sock') });
      await expect(
        onEngine('primary', () => docker.ping()),
      ).rejects.toMatchObject({
        name: 'ServiceUnavailableError',
        message: `Docker engine 'primary' is unreachable at ${join(dir, 'docker.sock')} (ENOENT): is it running, and may the backend use it?`,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names the engine from every hypervisor host and capture source operation, not only createLab and capture', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'no-engine-'));
    try {
      const socket = join(dir, 'docker.sock');
      const host = new DockerHypervisorHost(
        'dr-host',
        new Docker({ socketPath: socket }),
        { storeDirectory: dir },
      );
      const lab: LabHandle = { runId: 'run-1', networks: ['rr-run-1-prod'] };
      const machine: MachineHandle = {
        runId: 'run-1',
        machineRef: 'resource:default/db',
        id: 'c0ffee',
        hostnames: ['db'],
      };
      // Each says what it was doing first, then the engine's failure: a 503, the engine named.
      const unreachable = (doing: string) => ({
        name: 'ServiceUnavailableError',
        statusCode: 503,
        engine: 'dr-host',
        message: `${doing} failed: Docker engine 'dr-host' is unreachable at ${socket} (ENOENT): is it running, and may the backend use it?`,
      });
      await expect(host.listLabResources('run-1')).rejects.toMatchObject(
        unreachable('listing the lab of run run-1'),
      );
      await expect(host.listLabResources()).rejects.toMatchObject(
        unreachable("listing every run's lab"),
      );
      await expect(host.teardown('run-1')).rejects.toMatchObject(
        unreachable('tearing down the lab of run run-1'),
      );
      await expect(host.logTail(machine, 20)).rejects.toMatchObject(
        unreachable(
          'reading the log of resource:default/db in the lab of run run-1',
        ),
      );
      await expect(
        host.probe(lab, machine, { kind: 'tcp', port: 5432 }),
      ).rejects.toMatchObject(
        unreachable('probing resource:default/db in the lab of run run-1'),
      );
      await expect(host.startMachine(machine)).rejects.toMatchObject(
        unreachable('starting resource:default/db in the lab of run run-1'),
      );
      await expect(host.inspectMachine(machine)).rejects.toMatchObject(
        unreachable('inspecting resource:default/db in the lab of run run-1'),
      );

      // Over TCP, the same: the capture source's discard on a port where nothing listens.
      const port = await closedPort();
      const source = new DockerCaptureSource(
        'primary',
        new Docker({ host: '127.0.0.1', port, protocol: 'http' }),
        { storeDirectory: dir },
      );
      await expect(
        source.discard({ captureId: 'cap-1', artifact: 'cap-1.tar' }),
      ).rejects.toMatchObject({
        name: 'ServiceUnavailableError',
        message: `Docker engine 'primary' is unreachable at 127.0.0.1:${port} (ECONNREFUSED): is it running, and may the backend use it?`,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names the engine whose host name no longer resolves, with that name', async () => {
    // `.invalid` never resolves (RFC 6761): ENOTFOUND, or EAI_AGAIN where no resolver answers.
    const docker = new Docker({
      host: 'dr-host.invalid',
      port: 2376,
      protocol: 'http',
    });
    const error = await onEngine('dr-host', () => docker.ping()).catch(e => e);
    expect(error.name).toBe('ServiceUnavailableError');
    expect(error.message).toMatch(
      /^Docker engine 'dr-host' is unreachable at dr-host\.invalid \((ENOTFOUND|EAI_AGAIN)\): is it running, and may the backend use it\?$/,
    );
  });

  it('names the engine on a network that cannot be reached, or a connection its engine broke off', () => {
    for (const code of ['ENETUNREACH', 'EHOSTDOWN', 'EPIPE']) {
      const error = Object.assign(new Error(`connect ${code} 10.9.9.9:2376`), {
        code,
        address: '10.9.9.9',
        port: 2376,
      });
      expect(explainEngineError('dr-host', error)).toMatchObject({
        name: 'ServiceUnavailableError',
        message: `Docker engine 'dr-host' is unreachable at 10.9.9.9:2376 (${code}): is it running, and may the backend use it?`,
      });
    }
  });

  it('leaves a file error (with its path) alone: a missing file is not an unreachable engine', async () => {
    const error = await readFile(
      join(tmpdir(), 'no-such-capture-artifact.tar'),
    ).catch(e => e);
    expect(error.code).toBe('ENOENT');
    expect(explainEngineError('primary', error)).toBe(error);
  });

  it('bounds an engine call: unanswered within the wait, it fails naming engine, call and wait; stopped by its caller, as the call does', async () => {
    // A call that ends only when its signal aborts (an engine that accepted and never answers).
    const never = (signal: AbortSignal) =>
      new Promise<never>((_resolve, reject) =>
        signal.addEventListener('abort', () => reject(signal.reason)),
      );
    const silent = await answerWithin(
      'primary',
      'the list of capture images',
      50,
      never,
    ).catch(e => e);
    expect(silent).toMatchObject({
      name: 'ServiceUnavailableError',
      message:
        "Docker engine 'primary' did not answer the list of capture images within 0.05 s",
    });
    expect(isUnanswered(silent)).toBe(true);
    const stopped = new AbortController();
    const stopping = answerWithin(
      'primary',
      'the unpause',
      60_000,
      never,
      stopped.signal,
    ).catch(e => e);
    stopped.abort(new Error('the backend shuts down'));
    const error = await stopping;
    expect(error.message).toBe('the backend shuts down');
    expect(isUnanswered(error)).toBe(false);
    await expect(
      answerWithin('primary', 'the ping', 50, async () => 'OK'),
    ).resolves.toBe('OK');
  });

  it("leaves an error answer to explainEngineError's caller, as it does any other error", () => {
    const error = Object.assign(new Error('no such container'), {
      statusCode: 404,
    });
    expect(explainEngineError('primary', error)).toBe(error);
  });

  it('keeps an engine error already said with its context as it is: one prefix, its own stack', () => {
    const refused = Object.assign(
      new Error('connect ECONNREFUSED /run/docker.sock'),
      { code: 'ECONNREFUSED', address: '/run/docker.sock' },
    );
    const said = engineFailure(
      'primary',
      refused,
      'capture of resource:default/web-01 (container web-01) failed while pausing it',
    );
    expect(explainEngineError('primary', said)).toBe(said);
    const again = engineFailure(
      'primary',
      explainEngineError('primary', said),
      'the capture of web-01 failed',
    ) as Error;
    expect(again.message).toBe(
      "capture of resource:default/web-01 (container web-01) failed while pausing it: Docker engine 'primary' is unreachable at /run/docker.sock (ECONNREFUSED): is it running, and may the backend use it?",
    );
  });

  it('names a failed TLS handshake (a certificate not trusted, for another name, no TLS there) as the engine unreachable, 503', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [
        {
          code: 'DEPTH_ZERO_SELF_SIGNED_CERT',
          message: 'self-signed certificate',
        },
        '(DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate)',
      ],
      [
        {
          code: 'ERR_TLS_CERT_ALTNAME_INVALID',
          message: "Hostname/IP does not match certificate's altnames",
          host: 'dr-host.example',
        },
        "at dr-host.example: the TLS connection failed (ERR_TLS_CERT_ALTNAME_INVALID: Hostname/IP does not match certificate's altnames)",
      ],
      [
        {
          code: 'EPROTO',
          syscall: 'write',
          message:
            'write EPROTO C08C66ABFF7E0000:error:0A00010B:SSL routines:tls_validate_record_header:wrong version number:../deps/openssl/ssl/record.c:77:',
        },
        '(EPROTO: wrong version number)',
      ],
    ];
    for (const [fields, said] of cases) {
      const error = engineFailure(
        'dr-host',
        Object.assign(new Error(String(fields.message)), fields),
        'tearing down the lab of run run-1 failed',
      ) as Error;
      expect(error).toMatchObject({
        name: 'ServiceUnavailableError',
        statusCode: 503,
        engine: 'dr-host',
      });
      expect(error.message).toContain(said);
      expect(error.message).toMatch(
        /^tearing down the lab of run run-1 failed: Docker engine 'dr-host' is unreachable.*: does it speak TLS there, and do its certificate and recovery\.docker\.engines\[dr-host\] ca, cert and key match\?$/,
      );
    }
  });

  it("says an error answer in the engine's own words, under its context, as a 502 whatever its status", () => {
    // As dockerode words it: `(HTTP code <status>) <reason> - <the engine's message> `.
    for (const statusCode of [500, 404, 409, 400]) {
      const answer = Object.assign(
        new Error(`(HTTP code ${statusCode}) unexpected - the engine says no `),
        {
          statusCode,
          reason: undefined,
          json: { message: 'the engine says no' },
        },
      );
      expect(
        engineFailure(
          'primary',
          answer,
          'starting resource:default/db in the lab of run run-1 failed',
        ),
      ).toMatchObject({
        name: 'EngineFailedError',
        statusCode: 502,
        engine: 'primary',
        message: `starting resource:default/db in the lab of run run-1 failed: Docker engine 'primary' answered HTTP ${statusCode}: the engine says no`,
      });
    }
  });

  it('says where the engine ran out of room on its host: a load it wrote into its stream, an answer, a file of the backend not', async () => {
    const restoring =
      'restoring resource:default/db-01 (capture cap-1) in the lab of run run-1 failed';
    const full =
      'Error processing tar file(exit status 1): write /3f5a/layer.tar: no space left on device';
    // `docker load` answers 200, then writes its failure into the stream.
    const loaded = followProgress(
      Readable.from([
        `${JSON.stringify({ errorDetail: { message: full }, error: full })}\r\n`,
      ]),
    );
    const error = await onEngine('recovery', () => loaded, restoring).catch(
      e => e,
    );
    expect(error).toMatchObject({
      name: 'EngineFailedError',
      statusCode: 502,
      engine: 'recovery',
      message: `${restoring}: Docker engine 'recovery' answered: ${full}`,
    });
    expect(hostCondition(error)).toEqual({
      kind: 'exhausted',
      resource: 'disk',
    });
    // Said again under another context, it keeps what ran out.
    expect(hostCondition(engineFailure('recovery', error, 'again'))).toEqual({
      kind: 'exhausted',
      resource: 'disk',
    });
    const answer = (message: string) =>
      Object.assign(new Error(`(HTTP code 500) server error - ${message} `), {
        statusCode: 500,
      });
    const starting =
      'starting resource:default/db-01 in the lab of run run-1 failed';
    expect(
      hostCondition(
        engineFailure(
          'recovery',
          answer(
            'OCI runtime create failed: runc create failed: cannot allocate memory',
          ),
          starting,
        ),
      ),
    ).toEqual({ kind: 'exhausted', resource: 'memory' });
    expect(
      hostCondition(
        engineFailure('recovery', answer('the engine says no'), starting),
      ),
    ).toBeUndefined();
    // The backend's own full disk (a file it writes) is no answer of the engine's.
    const own = Object.assign(
      new Error('ENOSPC: no space left on device, write'),
      {
        code: 'ENOSPC',
        syscall: 'write',
      },
    );
    expect(engineFailure('recovery', own, restoring)).toBe(own);
    expect(hostCondition(own)).toBeUndefined();
  });

  it("leaves what is not the engine's failure as it is: the operation's own refusal, a file's error, an EngineError that said its context", async () => {
    const refusal = Object.assign(
      new Error(
        'machine resource:default/web-01: no container "web-01" on engine primary',
      ),
      { name: 'NotFoundError' },
    );
    const fileError = await readFile(
      join(tmpdir(), 'no-such-capture-artifact.tar'),
    ).catch(e => e);
    const said = engineFailure(
      'primary',
      Object.assign(new Error('refused'), {
        code: 'ECONNREFUSED',
        address: '127.0.0.1',
        port: 1,
      }),
      'listing the lab of run run-1 failed',
    );
    for (const error of [
      refusal,
      fileError,
      said,
      new Error('checksum mismatch'),
    ]) {
      expect(
        engineFailure(
          'primary',
          error,
          'capture of resource:default/web-01 (container web-01) failed while committing the image',
        ),
      ).toBe(error);
    }
    // One said without a context (explainEngineError, answerWithin) is said again with it.
    const bare = explainEngineError(
      'primary',
      Object.assign(new Error('refused'), {
        code: 'ECONNREFUSED',
        address: '127.0.0.1',
        port: 1,
      }),
    );
    expect(
      engineFailure(
        'primary',
        bare,
        'inspecting resource:default/db in the lab of run run-1 failed',
      ),
    ).toMatchObject({
      name: 'ServiceUnavailableError',
      statusCode: 503,
      message:
        "inspecting resource:default/db in the lab of run run-1 failed: Docker engine 'primary' is unreachable at 127.0.0.1:1 (ECONNREFUSED): is it running, and may the backend use it?",
    });
  });
});
