import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { demoRecoveryConfig, startBackend } from './backend';

describe('a backend started with a recovery config error', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'recovery-config-error-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('exits with status 1, having named the key and what is wrong with it', async () => {
    const config = demoRecoveryConfig(dataDir);
    const broken = {
      recovery: { ...config.recovery, objectives: { rpo: '24 hourz' } },
    };
    const failure = await startBackend({
      dataDir,
      config: broken,
      readyTimeoutMs: 120_000,
    }).then(
      // Started all the same: stopped, not left running after the test fails.
      backend => backend.stop().then(() => undefined),
      (e: Error) => e,
    );
    // Exited, not left alive and never ready (startBackend would say "not ready after").
    expect(failure?.message).toMatch(/^backend exited with 1:/);
    expect(failure?.message).toContain(
      'Invalid duration "24 hourz" at recovery.objectives.rpo',
    );
  }, 180_000);
});
