import {
  CustomErrorBase,
  serializeError,
  ServiceUnavailableError,
} from '@backstage/errors';
import { ENGINE_FAILED_ERROR_NAME } from '@backstage-recovery/plugin-recovery-common';
import {
  CaptureDamagedError,
  CaptureStoppedError,
  CaptureStoreError,
  EngineFailedError,
  engineError,
  EngineUnreachableError,
  isCaptureDamaged,
  isCaptureStopped,
  isCaptureStoreError,
  isEngineError,
  isLabSubnetHeld,
  LabSubnetHeldError,
} from './providers';

describe("providers' errors", () => {
  it('an engine out of reach is a ServiceUnavailableError (503) naming the engine', () => {
    const error = engineError(
      "Docker engine 'primary' is unreachable (ECONNREFUSED)",
      'primary',
      'unreachable',
    );
    expect(error).toBeInstanceOf(EngineUnreachableError);
    expect(error).toBeInstanceOf(ServiceUnavailableError);
    expect(error).toMatchObject({
      name: 'ServiceUnavailableError',
      statusCode: 503,
      engine: 'primary',
      message: "Docker engine 'primary' is unreachable (ECONNREFUSED)",
    });
    expect(isEngineError(error)).toBe(true);
  });

  it('an engine that answered with an error is an EngineFailedError (502), not a 503, naming the engine', () => {
    const error = engineError(
      "Docker engine 'primary' answered HTTP 500: commit failed",
      'primary',
      'answered',
    );
    expect(error).toBeInstanceOf(EngineFailedError);
    expect(error).toBeInstanceOf(CustomErrorBase);
    expect(error).not.toBeInstanceOf(ServiceUnavailableError);
    expect(error).toMatchObject({
      name: ENGINE_FAILED_ERROR_NAME,
      statusCode: 502,
      engine: 'primary',
    });
    expect(isEngineError(error)).toBe(true);
  });

  it('puts on the wire what the API documents of an engine failure: name, message, statusCode and engine', () => {
    for (const [failure, name, statusCode] of [
      ['unreachable', 'ServiceUnavailableError', 503],
      ['answered', 'EngineFailedError', 502],
    ] as const) {
      expect(
        JSON.parse(
          JSON.stringify(serializeError(engineError('said', 'dr', failure))),
        ),
      ).toEqual({ name, message: 'said', statusCode, engine: 'dr' });
    }
    expect(
      JSON.parse(
        JSON.stringify(serializeError(new CaptureStoppedError('stopped'))),
      ),
    ).toEqual({
      name: 'ServiceUnavailableError',
      message: 'stopped',
      statusCode: 503,
    });
  });

  it('a capture stopped as the backend shuts down is a ServiceUnavailableError told apart from an engine out of reach', () => {
    const stopped = new CaptureStoppedError(
      'capture of resource:default/web-01 stopped as the backend shuts down: nothing kept',
    );
    expect(stopped).toBeInstanceOf(ServiceUnavailableError);
    expect(stopped).toMatchObject({
      name: 'ServiceUnavailableError',
      statusCode: 503,
    });
    expect(isCaptureStopped(stopped)).toBe(true);
    expect(isEngineError(stopped)).toBe(false);
    expect(
      isCaptureStopped(engineError('unreachable', 'primary', 'unreachable')),
    ).toBe(false);
  });

  it('tells its errors by their class, not by a name or fields another error happens to carry', () => {
    const lookalikes = [
      new ServiceUnavailableError('the catalog is unreachable'),
      Object.assign(new Error('renamed'), {
        name: 'ServiceUnavailableError',
        statusCode: 503,
        engine: 'primary',
      }),
      Object.assign(new Error('renamed'), {
        name: 'EngineFailedError',
        statusCode: 502,
        engine: 'primary',
      }),
      Object.assign(new Error('flagged'), { captureStopped: true }),
      undefined,
    ];
    for (const other of lookalikes) {
      expect(isEngineError(other)).toBe(false);
      expect(isCaptureStopped(other)).toBe(false);
    }
  });

  it('tells its errors made by another copy of this package (an app may resolve two), by the kind every copy marks them with', () => {
    // What a copy's class makes: another class, the same mark under the shared key.
    const kind = Symbol.for(
      '@backstage-recovery/plugin-recovery-node:error-kind',
    );
    class OtherCopysError extends Error {}
    const fromOtherCopy = (mark: string) =>
      Object.assign(new OtherCopysError('from the other copy'), {
        [kind]: mark,
      });
    expect(isEngineError(fromOtherCopy('engine-unreachable'))).toBe(true);
    expect(isEngineError(fromOtherCopy('engine-failed'))).toBe(true);
    expect(isCaptureStopped(fromOtherCopy('capture-stopped'))).toBe(true);
    expect(isCaptureStoreError(fromOtherCopy('capture-store'))).toBe(true);
    expect(isCaptureDamaged(fromOtherCopy('capture-damaged'))).toBe(true);
    expect(isEngineError(fromOtherCopy('capture-stopped'))).toBe(false);
    expect(
      isCaptureDamaged(new CaptureStoreError('full', '/var/lib/captures')),
    ).toBe(false);
    expect(
      isCaptureDamaged(new CaptureDamagedError('checksum mismatch', 'c1')),
    ).toBe(true);
    expect(isLabSubnetHeld(fromOtherCopy('lab-subnet-held'))).toBe(true);
    expect(isLabSubnetHeld(fromOtherCopy('engine-failed'))).toBe(false);
  });

  it("a lab subnet held on the host is neither the engine's failure nor one out of reach: the run tears its lab down and says why", () => {
    const held = new LabSubnetHeldError('held', 'dr', '172.29.10.0/24', {
      name: 'foreign-x',
      id: 'abc',
      subnet: '172.29.10.0/25',
    });
    expect(isLabSubnetHeld(held)).toBe(true);
    expect(isEngineError(held)).toBe(false);
    expect(held).not.toBeInstanceOf(ServiceUnavailableError);
    expect(isLabSubnetHeld(engineError('answered', 'dr', 'answered'))).toBe(
      false,
    );
  });
});
