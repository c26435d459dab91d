import { vi } from 'vitest';

// Backstage's test utilities (startTestBackend, mockServices, TestDatabases,
// renderInTestApp) expect jest's globals.
(globalThis as any).jest = vi;

if (typeof window !== 'undefined') {
  await import('@testing-library/jest-dom/vitest');
}

// The machine's PostgreSQL (trust auth) for store tests, unless the caller points elsewhere.
process.env.BACKSTAGE_TEST_DATABASE_POSTGRES15_CONNECTION_STRING ??=
  'postgresql://postgres@127.0.0.1:5432';
