import {
  ConflictError,
  CustomErrorBase,
  NotFoundError,
} from '@backstage/errors';
import {
  busyWithRunId,
  HOST_BUSY_ERROR_NAME,
  hostBusy,
  isHostBusy,
  KEPT_FAILOVER_ERROR_NAME,
  keptFailover,
  machinesNotCaptured,
} from '@backstage-recovery/plugin-recovery-common';
import { RecoveryTaskError } from './tasks';

/** A service's named refusal as the backend throws one: a 409 by its statusCode, its parts its own fields. */
class HostBusy extends CustomErrorBase {
  name = HOST_BUSY_ERROR_NAME;
  readonly statusCode = 409;
  constructor(
    readonly runId: string,
    readonly entityRef: string,
  ) {
    super(`Hypervisor host 'h' is busy with run ${runId} of ${entityRef}`);
  }
}

describe("RecoveryTaskError, read by recovery-common's guards of the API's errors", () => {
  it("answers a service's named error as its route would: its status, its name, its parts", () => {
    const busy = RecoveryTaskError.from(
      new HostBusy('r1', 'system:default/site'),
    );
    expect(busy.statusCode).toBe(409);
    expect(busy.name).toBe(HOST_BUSY_ERROR_NAME);
    expect(busy.message).toBe(
      "Hypervisor host 'h' is busy with run r1 of system:default/site",
    );
    expect(isHostBusy(busy)).toBe(true);
    expect(hostBusy(busy)).toEqual({
      runId: 'r1',
      entityRef: 'system:default/site',
    });
    expect(busyWithRunId(busy)).toBe('r1');
    expect(machinesNotCaptured(busy)).toBeUndefined();
    expect(busy.body.error).not.toHaveProperty('stack');
  });

  it("gives Backstage's errors the status its error handler answers them with, anything else a 500", () => {
    expect(
      RecoveryTaskError.from(new ConflictError('newer night')).statusCode,
    ).toBe(409);
    expect(
      RecoveryTaskError.from(new NotFoundError('Run gone')).statusCode,
    ).toBe(404);
    const broken = RecoveryTaskError.from(new TypeError('x is undefined'));
    expect({ status: broken.statusCode, name: broken.name }).toEqual({
      status: 500,
      name: 'TypeError',
    });
    expect(isHostBusy(broken)).toBe(false);
    expect(RecoveryTaskError.from('a string').statusCode).toBe(500);
  });

  it('reads a failover kept on the host by its parts', () => {
    const kept = new RecoveryTaskError(
      'kept failover',
      409,
      KEPT_FAILOVER_ERROR_NAME,
      {
        failover: 'failover f1 of component:default/bank',
        host: 'recovery',
        keeps: '2 containers and 1 network',
        holding: "production's subnet 10.3.0.0/24",
        remedy: 'release failover f1',
      },
    );
    expect(keptFailover(kept)).toEqual({
      failover: 'failover f1 of component:default/bank',
      host: 'recovery',
      keeps: '2 containers and 1 network',
      holding: "production's subnet 10.3.0.0/24",
      remedy: 'release failover f1',
    });
    expect(isHostBusy(kept)).toBe(false);
  });
});
