import Docker from 'dockerode';
import type { LoggerService } from '@backstage/backend-plugin-api';
import { EngineClock } from './engineClock';

// The engine's clock as a real engine's ping dates it (its HTTP Date), against its own /info.

const PRIMARY =
  process.env.RECOVERY_PRIMARY_DOCKER_HOST ??
  'unix:///run/recovery-docker/primary.sock';
if (!PRIMARY.startsWith('unix://'))
  throw new Error(
    `these tests reach the primary engine on a unix socket, not ${PRIMARY}`,
  );
const primary = new Docker({ socketPath: PRIMARY.slice('unix://'.length) });

describe('EngineClock on a real engine', () => {
  it("reads the engine's clock from its ping's Date as its /info's SystemTime says it, to the second", async () => {
    const warnings: string[] = [];
    const logger = {
      warn: (m: string) => warnings.push(m),
    } as unknown as LoggerService;
    const offset = await new EngineClock('primary', primary, logger).offsetMs();
    const before = Date.now();
    const { SystemTime } = await primary.info();
    const said = Date.parse(SystemTime) - (before + Date.now()) / 2;
    expect(warnings).toEqual([]);
    // Whole seconds, read as the middle of one: within half a second, and the two asks' times.
    expect(Math.abs(offset - said)).toBeLessThan(1_000);
  });
});
