import { main } from './main';

main(process.argv.slice(2)).then(
  status => {
    process.exitCode = status;
  },
  error => {
    process.stderr.write(`recovery: ${error?.stack ?? error}\n`);
    process.exitCode = 1;
  },
);
