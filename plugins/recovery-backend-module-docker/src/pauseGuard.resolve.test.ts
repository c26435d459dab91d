// The guard's script resolved when a guard starts, not when the module loads: a package laid out
// otherwise (the script missing) fails one capture's guard, never the import of the Docker module.
vi.mock('@backstage/backend-plugin-api', async importOriginal => ({
  ...(await importOriginal<typeof import('@backstage/backend-plugin-api')>()),
  resolvePackagePath: () => {
    throw new Error(
      'Cannot find module @backstage-recovery/plugin-recovery-backend-module-docker/package.json',
    );
  },
}));

describe('pause guard script resolution', () => {
  it('leaves the module importable, and fails only the guard that starts', async () => {
    const { armPauseGuard } = await import('./pauseGuard');
    await expect(
      armPauseGuard({
        engineId: 'primary',
        containerId: 'c'.repeat(64),
        machineRef: 'resource:default/web-01',
        captureId: 'cap-1',
        notePath: '/nowhere/.paused/primary.c',
        connection: { socketPath: '/nowhere/engine.sock' },
        limitMs: 60_000,
        storeDirectory: '/nowhere',
      }),
    ).rejects.toThrow(
      /^the pause guard \(src\/guard\/pauseGuard\.cjs\) did not start: Cannot find module/,
    );
  });
});
