// Run by pauseGuard.docker.test.ts as a backend of its own (node -r the Backstage CLI's
// nodeTransform): captures one container with a pause guard, so that the test can kill this
// process mid-pause. Reads what to capture from the environment; prints the capture when done.
import Docker from 'dockerode';
import { DockerCaptureSource } from '../DockerCaptureSource';

const {
  GUARD_TEST_SOCKET,
  GUARD_TEST_CONTAINER,
  GUARD_TEST_STORE,
  GUARD_TEST_CAPTURE_ID,
} = process.env;
const connection = { socketPath: GUARD_TEST_SOCKET! };
const source = new DockerCaptureSource('primary', new Docker(connection), {
  storeDirectory: GUARD_TEST_STORE!,
  maxPauseMs: 120_000,
  engineConnection: connection,
});
source
  .capture(
    {
      machineRef: 'resource:default/guarded',
      engine: 'primary',
      container: GUARD_TEST_CONTAINER!,
    },
    { captureId: GUARD_TEST_CAPTURE_ID! },
  )
  .then(
    c => console.log(JSON.stringify({ pausedMs: c.pausedMs })),
    e => {
      console.error(e);
      process.exitCode = 1;
    },
  );
