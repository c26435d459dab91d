import {
  busyWithRunId,
  HOST_BUSY_ERROR_NAME,
  hostBusy,
  isHostBusy,
  KEPT_FAILOVER_ERROR_NAME,
  keptFailover,
  MACHINES_NOT_CAPTURED_ERROR_NAME,
  machinesNotCaptured,
  missingDependencies,
  type ApiErrorAnswer,
} from '@backstage-recovery/plugin-recovery-common';
import { RecoveryApiError } from './recoveryClient';

describe("RecoveryApiError, read by recovery-common's guards of the API's errors", () => {
  it('is the answer the guards read: its status, and its body named by the error it names', () => {
    const busy = new RecoveryApiError(
      "POST /runs failed with 409: Hypervisor host 'h' is busy",
      409,
      HOST_BUSY_ERROR_NAME,
      {
        name: HOST_BUSY_ERROR_NAME,
        message: "Hypervisor host 'h' is busy",
        runId: 'r1',
        entityRef: 'system:default/site',
      },
    );
    const answer: ApiErrorAnswer = busy;
    expect(answer.statusCode).toBe(409);
    expect(answer.body.error).toMatchObject({
      name: HOST_BUSY_ERROR_NAME,
      runId: 'r1',
    });
    expect(isHostBusy(busy)).toBe(true);
    expect(hostBusy(busy)).toEqual({
      runId: 'r1',
      entityRef: 'system:default/site',
    });
    expect(busyWithRunId(busy)).toBe('r1');
    expect(machinesNotCaptured(busy)).toBeUndefined();
  });

  it('takes the name it was given where the backend gave no body of parts', () => {
    const busy = new RecoveryApiError(
      'POST /runs failed with 409: busy',
      409,
      HOST_BUSY_ERROR_NAME,
    );
    expect(hostBusy(busy)).toEqual({});
    const uncaptured = new RecoveryApiError(
      'POST /runs failed with 409: No capture of resource:default/a-01 yet',
      409,
      MACHINES_NOT_CAPTURED_ERROR_NAME,
    );
    expect(machinesNotCaptured(uncaptured)).toEqual([]);
    expect(isHostBusy(uncaptured)).toBe(false);
  });

  it("reads a failover kept on the host by its parts, and nothing of an answer that is not the API's error", () => {
    const kept = new RecoveryApiError(
      'POST /runs failed with 409: kept failover',
      409,
      KEPT_FAILOVER_ERROR_NAME,
      {
        name: KEPT_FAILOVER_ERROR_NAME,
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
    // A gateway's page, not JSON: no name, so no refusal of the API's.
    const page = new RecoveryApiError(
      'POST /runs failed with 409: <html>conflict</html>',
      409,
    );
    for (const guard of [
      hostBusy,
      keptFailover,
      machinesNotCaptured,
      missingDependencies,
    ])
      expect(guard(page)).toBeUndefined();
  });
});
