import { pipeline, Transform, type Readable } from 'node:stream';
import type { Transfer } from '@backstage-recovery/plugin-recovery-node';

/** Splits Docker's multiplexed stdout/stderr framing (non-TTY logs and exec output). */
export function demuxDockerStream(buffer: Buffer): {
  stdout: string;
  stderr: string;
} {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let offset = 0;
  // Not framed (TTY): everything is stdout.
  if (
    buffer.length >= 8 &&
    !(buffer[0] <= 2 && buffer[1] === 0 && buffer[2] === 0 && buffer[3] === 0)
  ) {
    return { stdout: buffer.toString('utf8'), stderr: '' };
  }
  while (offset + 8 <= buffer.length) {
    const stream = buffer[offset];
    const size = buffer.readUInt32BE(offset + 4);
    const chunk = buffer.subarray(offset + 8, offset + 8 + size);
    (stream === 2 ? err : out).push(chunk);
    offset += 8 + size;
  }
  return {
    stdout: Buffer.concat(out).toString('utf8'),
    stderr: Buffer.concat(err).toString('utf8'),
  };
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream)
    chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/**
 * An error the engine wrote into a progress stream (`{"errorDetail":…}`) after answering 200: its
 * answer all the same, in its own words (engineErrors reads it as such).
 */
export class EngineStreamError extends Error {}

/** Reads a Docker progress stream (load, import, pull) and fails on its first error message. */
export async function followProgress(stream: Readable): Promise<string[]> {
  const text = (await readAll(stream)).toString('utf8');
  const messages: string[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let msg: any;
    try {
      msg = JSON.parse(line);
    } catch {
      messages.push(line);
      continue;
    }
    if (msg.error || msg.errorDetail) {
      throw new EngineStreamError(
        msg.error ?? msg.errorDetail?.message ?? line,
      );
    }
    if (msg.stream) messages.push(String(msg.stream).trim());
    else if (msg.status) messages.push(String(msg.status).trim());
  }
  return messages;
}

/**
 * `stream` as it is read, each chunk told to `transfer`: an error of either side ends both (the
 * read of the source fails its reader; the reader's destroy stops the source).
 */
export function counted(stream: Readable, transfer: Transfer): Readable {
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      transfer.add(chunk.length);
      done(null, chunk);
    },
  });
  return pipeline(stream, counter, () => {});
}

/** True for Docker API errors with the given HTTP status. */
export function isStatus(e: unknown, ...codes: number[]): boolean {
  return codes.includes((e as { statusCode?: number })?.statusCode ?? -1);
}
