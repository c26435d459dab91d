import { vi } from 'vitest';

// Backstage's test utilities (startTestBackend, mockServices, TestDatabases,
// renderInTestApp) expect jest's globals.
(globalThis as any).jest = vi;

if (typeof window !== 'undefined') {
  await import('@testing-library/jest-dom/vitest');
}
