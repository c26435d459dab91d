import { main } from '../main';

/** Runs the CLI in this process as a terminal would, returning its exit status and what it wrote. */
export async function runCli(
  argv: string[],
): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const status = await main(argv, {
    stdout: t => void (stdout += t),
    stderr: t => void (stderr += t),
  });
  return { status, stdout, stderr };
}
