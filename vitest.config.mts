import { defineConfig } from 'vitest/config';

// One runner for the whole repository. Projects split by what a test needs:
// `unit` (nothing), `frontend` (jsdom), `integration` and `e2e` (a real Docker engine,
// started by scripts/docker-engines.sh; the README's test command does that). The last two restore
// the demo machines, with the same names and addresses, on the one recovery engine: each runs
// alone (groupOrder), after the tests that need no engine.
export default defineConfig({
  test: {
    globals: true,
    setupFiles: ['./vitest.setup.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          environment: 'node',
          include: [
            'plugins/*/src/**/*.test.ts',
            'packages/*/src/**/*.test.ts',
          ],
          exclude: ['**/*.docker.test.ts', '**/node_modules/**'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'frontend',
          environment: 'jsdom',
          // Its ESM build imports directories, which Node's resolver refuses outside a bundler.
          server: { deps: { inline: ['material-ui-popup-state'] } },
          include: [
            'plugins/*/src/**/*.test.tsx',
            'packages/*/src/**/*.test.tsx',
          ],
          testTimeout: 30_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          environment: 'node',
          include: ['plugins/*/src/**/*.docker.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          environment: 'node',
          include: ['test/**/*.test.ts'],
          testTimeout: 900_000,
          hookTimeout: 900_000,
          fileParallelism: false,
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
