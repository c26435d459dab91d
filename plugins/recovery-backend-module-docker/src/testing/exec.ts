import type Docker from 'dockerode';
import { PassThrough } from 'node:stream';

/** Runs `cmd` by `sh -c` in the container to its end: its exit code and output (stdout and stderr). */
export async function sh(
  container: Docker.Container,
  cmd: string,
): Promise<{ exitCode: number | null; output: string }> {
  const exec = await container.exec({
    Cmd: ['sh', '-c', cmd],
    AttachStdout: true,
    AttachStderr: true,
  });
  const stream = await exec.start({ hijack: true, stdin: false });
  const out = new PassThrough();
  let output = '';
  out.on('data', chunk => {
    output += chunk.toString();
  });
  container.modem.demuxStream(stream, out, out);
  await new Promise(resolve => stream.on('end', resolve));
  return { exitCode: (await exec.inspect()).ExitCode, output: output.trim() };
}
