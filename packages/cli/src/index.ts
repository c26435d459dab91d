import { setFlagsFromString } from 'v8';
import { main } from './main';

// A map's `/regex/` keys are the user's own: a nested repetition such as /^(a+)+$/ backtracks for
// hours on some names. Past a backtracking budget V8 then finishes the match in linear time (a
// pattern without flags i, u or d, counted repetitions, back-references or lookarounds); the flag
// acts on regexes compiled after it.
setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');

main(process.argv.slice(2)).then(
  status => {
    process.exitCode = status;
  },
  error => {
    process.stderr.write(`recovery: ${error?.stack ?? error}\n`);
    process.exitCode = 1;
  },
);
