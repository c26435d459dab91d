import { setFlagsFromString } from 'v8';
import { main } from './main';

// A map's `/regex/` keys are the user's own: a nested repetition such as /^(a+)+$/ backtracks for
// hours on some names. Past a backtracking budget V8 then finishes the match in linear time (a
// pattern without flags i, u or d, counted repetitions, back-references or lookarounds); the flag
// acts on regexes compiled after it.
setFlagsFromString(
  '--enable-experimental-regexp-engine-on-excessive-backtracks',
);

// A reader that stops early (`| head`) closes the pipe: what is left of the output has nowhere to
// go, and that is no failure. The process ends at once, silently, with the status the run set (0
// if it is still running). Any other write error on stdout is said on stderr, status 1. Errors on
// stderr itself cannot be reported anywhere: they are ignored, so they end nothing.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit();
  process.stderr.write(`recovery: cannot write the output: ${error.message}\n`);
  process.exit(1);
});
process.stderr.on('error', () => {});

main(process.argv.slice(2)).then(
  status => {
    process.exitCode = status;
  },
  error => {
    // main says its own errors; one escaping it is a bug, no failed recovery (1).
    process.stderr.write(
      `recovery: internal error: ${error?.stack ?? error}\n`,
    );
    process.exitCode = 3;
  },
);
