'use strict';
// The pause guard: a dead man's switch for a capture's pause of a production machine. A capture
// starts it (detached, plain Node, no dependencies) before it pauses the machine; it unpauses the
// machine itself if the backend dies meanwhile (SIGKILL, OOM: its standard input closes) or keeps
// it paused past the pause limit and a margin, so production never stays paused on a backend that
// is gone or stuck. Protocol, one line each (see pauseGuard.ts):
//   stdin, first:  JSON {engineId, containerId, machineRef, limitMs, connection, logFile?}; the
//                  connection (TLS material included) comes this way, never in argv, so that no
//                  key shows in `ps`.
//   stdout:        `armed` once it holds that; nothing else is ever written to stdout.
//   stdin, then:   `unpaused` once the backend has unpaused the machine: the guard exits quietly.
//   stdin closed without it, or the limit past: the guard unpauses the container if it is still
//   paused, logs one line to `logFile` (if it can), and exits.
const http = require('node:http');
const https = require('node:https');
const fs = require('node:fs');

/** Longest one engine call waits; and how often, and how long in all, an unanswered unpause is tried. */
const CALL_WAIT_MS = 10_000;
const RETRY_MS = 1_000;
const GIVE_UP_MS = 60_000;

let config;
let buffered = '';
let acting = false;
let released = false;

function log(line) {
  if (!config || !config.logFile) return;
  try {
    fs.appendFileSync(config.logFile, `${new Date().toISOString()} pause guard of ${config.machineRef} (engine ${config.engineId}, container ${config.containerId.slice(0, 12)}, pid ${process.pid}): ${line}\n`);
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
      : { host: c.host, port: c.port || (secure ? 2376 : 2375), ...(secure && { ca: c.ca, cert: c.cert, key: c.key }) }),
  };
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).request(options, res => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', d => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${CALL_WAIT_MS / 1000} s`)));
    req.on('error', reject);
    req.end();
  });
}

/** Unpauses the container if it is still paused; tries again while the engine does not answer. */
async function act(why) {
  if (acting || released) return;
  acting = true;
  const id = encodeURIComponent(config.containerId);
  const started = Date.now();
  for (;;) {
    try {
      const look = await call('GET', `/containers/${id}/json`);
      if (look.status === 404) {
        log(`${why}: the container is gone, nothing to unpause`);
      } else if (look.status !== 200) {
        throw new Error(`the engine answered ${look.status} to the look at the container: ${look.body.trim()}`);
      } else if (!JSON.parse(look.body).State?.Paused) {
        log(`${why}: the container is not paused, left as it is`);
      } else {
        const done = await call('POST', `/containers/${id}/unpause`);
        if (done.status !== 204 && done.status !== 200 && done.status !== 404) {
          throw new Error(`the engine answered ${done.status} to the unpause: ${done.body.trim()}`);
        }
        log(`${why}: unpaused the container`);
      }
      break;
    } catch (e) {
      if (Date.now() - started > GIVE_UP_MS) {
        log(`${why}: could not unpause the container (${e.message}); by hand: docker unpause ${config.containerId}`);
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
  let nl;
  while ((nl = buffered.indexOf('\n')) >= 0) {
    const line = buffered.slice(0, nl).trim();
    buffered = buffered.slice(nl + 1);
    if (!config) {
      try {
        config = JSON.parse(line);
      } catch {
        process.exit(2);
      }
      // The backstop: past the limit and its margin, even a backend alive but stuck.
      setTimeout(() => act(`still paused ${Math.round(config.limitMs / 1000)} s after the capture began`), config.limitMs);
      process.stdout.write('armed\n');
    } else if (line === 'unpaused' && !acting) {
      released = true;
      process.exit(0);
    }
  }
});
// The backend's end of the pipe closed: it died, or let go without saying it had unpaused.
process.stdin.on('end', () => {
  if (!config) process.exit(2);
  act('the backend went away while the capture had the machine paused');
});
process.stdin.on('error', () => config && act('the backend went away while the capture had the machine paused'));
// stdout's reader may be gone (the backend died): never fail for it.
process.stdout.on('error', () => {});
