'use strict';
// The pause guard: a dead man's switch for a capture's pause of a production machine. A capture
// starts it (detached, plain Node, no dependencies) before it pauses the machine; it unpauses the
// machine itself if the backend dies meanwhile (SIGKILL, OOM: its standard input closes) or keeps
// it paused past the pause limit and a margin, so production never stays paused on a backend that
// is gone or stuck. Protocol, one line each (see pauseGuard.ts):
//   stdin, first:  JSON {engineId, containerId, machineRef, captureId, notePath, limitMs,
//                  connection, logFile?, signalGraceMs?}; the connection (TLS material included)
//                  comes this way, never in argv, so that no key shows in `ps`.
//   stdout:        `armed` once it holds that; nothing else is ever written to stdout.
//   stdin, then:   `unpaused` once the backend has unpaused the machine: the guard exits quietly.
//   stdin closed without it, the limit past, or SIGTERM, SIGINT or SIGHUP (systemd's
//   KillMode=control-group sends SIGTERM to the whole service when the backend dies): the guard
//   unpauses the container if it is still paused and its capture's note (notePath) is still there
//   and names its capture (captureId), logs one line to `logFile` (if it can), and exits. Without
//   that note, or with another capture's, the pause is not its capture's (a person's, a later
//   capture's, once the backend unpaused the machine itself): it is left as it is.
const http = require('node:http');
const https = require('node:https');
const fs = require('node:fs');

/** Longest one engine call waits; and how often, and how long in all, an unanswered unpause is tried. */
const CALL_WAIT_MS = 10_000;
const RETRY_MS = 1_000;
const GIVE_UP_MS = 60_000;
/**
 * Sent a signal while the backend still holds its pipe (systemd stops the whole service, backend
 * included): how long it waits for the backend's own unpause (the backend waits 10 s for the
 * engine's answer) before it acts, rather than race it (the engine fails the slower unpause).
 */
const SIGNAL_GRACE_MS = 12_000;

let config;
let buffered = '';
let acting = false;
let released = false;

function log(line) {
  if (!config || !config.logFile) return;
  try {
    fs.appendFileSync(
      config.logFile,
      `${new Date().toISOString()} pause guard of ${config.machineRef} (engine ${config.engineId}, container ${config.containerId.slice(0, 12)}, pid ${process.pid}): ${line}\n`,
    );
  } catch {
    // Nowhere to say it: the unpause is what matters.
  }
}

/** One call to the engine's API: resolves {status, body}. */
function call(method, path) {
  const c = config.connection || {};
  const secure = c.protocol === 'https';
  const options = {
    method,
    path,
    timeout: CALL_WAIT_MS,
    headers: { 'content-length': 0 },
    ...(c.socketPath
      ? { socketPath: c.socketPath }
      : {
          host: c.host,
          port: c.port || (secure ? 2376 : 2375),
          ...(secure && { ca: c.ca, cert: c.cert, key: c.key }),
        }),
  };
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).request(options, res => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', d => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body }));
      res.on('error', reject);
    });
    req.on('timeout', () =>
      req.destroy(new Error(`no answer within ${CALL_WAIT_MS / 1000} s`)),
    );
    req.on('error', reject);
    req.end();
  });
}

/**
 * Whether the pause is still its capture's: the note names it and says paused. Undefined where the
 * note cannot be read (the store failing): the guard then unpauses as if it could, production first.
 */
function noteHoldsPause() {
  let note;
  try {
    note = JSON.parse(fs.readFileSync(config.notePath, 'utf8'));
  } catch (e) {
    if (e && e.code === 'ENOENT') return false;
    return undefined;
  }
  return (
    note.captureId === config.captureId &&
    (note.phase === undefined || note.phase === 'paused')
  );
}

/**
 * Unpauses the container if it is still paused and its capture's note still holds that pause;
 * tries again while the engine does not answer.
 */
async function act(why) {
  if (acting || released) return;
  acting = true;
  const id = encodeURIComponent(config.containerId);
  const started = Date.now();
  for (;;) {
    try {
      const held = noteHoldsPause();
      const look =
        held === false
          ? undefined
          : await call('GET', `/containers/${id}/json`);
      if (!look) {
        log(
          `${why}: the note of capture ${config.captureId} no longer holds the machine (the backend unpaused it, or a later capture holds it), left as it is`,
        );
      } else if (look.status === 404) {
        log(`${why}: the container is gone, nothing to unpause`);
      } else if (look.status !== 200) {
        throw new Error(
          `the engine answered ${look.status} to the look at the container: ${look.body.trim()}`,
        );
      } else if (!JSON.parse(look.body).State?.Paused) {
        log(`${why}: the container is not paused, left as it is`);
      } else {
        const done = await call('POST', `/containers/${id}/unpause`);
        if (done.status !== 204 && done.status !== 200 && done.status !== 404) {
          throw new Error(
            `the engine answered ${done.status} to the unpause: ${done.body.trim()}`,
          );
        }
        log(
          `${why}: unpaused the container${held === undefined ? ` (its capture's note could not be read)` : ''}`,
        );
      }
      break;
    } catch (e) {
      if (Date.now() - started > GIVE_UP_MS) {
        log(
          `${why}: could not unpause the container (${e.message}); by hand: docker unpause ${config.containerId}`,
        );
        break;
      }
      await new Promise(r => setTimeout(r, RETRY_MS));
    }
  }
  process.exit(0);
}

process.stdin.setEncoding('utf8');
process.stdin.on('data', chunk => {
  buffered += chunk;
  for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
    const line = buffered.slice(0, nl).trim();
    buffered = buffered.slice(nl + 1);
    if (!config) {
      try {
        config = JSON.parse(line);
      } catch {
        process.exit(2);
      }
      // Without its note, it could not tell its capture's pause from a person's or a later capture's.
      if (
        typeof config.notePath !== 'string' ||
        typeof config.captureId !== 'string'
      )
        process.exit(2);
      // The backstop: past the limit and its margin, even a backend alive but stuck.
      const { limitMs } = config;
      setTimeout(
        () =>
          act(
            `still paused ${Math.round(limitMs / 1000)} s after the capture began`,
          ),
        limitMs,
      );
      process.stdout.write('armed\n');
    } else if (line === 'unpaused' && !acting) {
      released = true;
      process.exit(0);
    }
  }
});
let stdinEnded = false;
// The backend's end of the pipe closed: it died, or let go without saying it had unpaused.
process.stdin.on('end', () => {
  stdinEnded = true;
  if (!config) process.exit(2);
  act('the backend went away while the capture had the machine paused');
});
// Stopped itself (systemd's KillMode=control-group, as the backend dies or the service stops; a
// kill by hand): it acts before it exits, rather than die leaving the machine paused. The backend,
// while its pipe is open, gets a grace to unpause and release it first.
function onSignal(sig) {
  if (!config) process.exit(2);
  if (acting) return;
  const why = `sent ${sig} while the capture had the machine paused`;
  if (stdinEnded) {
    act(why);
    return;
  }
  setTimeout(() => act(why), config.signalGraceMs ?? SIGNAL_GRACE_MS);
}
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'])
  process.on(sig, () => onSignal(sig));
process.stdin.on(
  'error',
  () =>
    config &&
    act('the backend went away while the capture had the machine paused'),
);
// stdout's reader may be gone (the backend died): never fail for it.
process.stdout.on('error', () => {});
