import { Command, Option } from 'commander';
import { EVENT_FORMATS } from '@backstage-recovery/plugin-recovery-node';
import {
  type AnalyzeCliOptions,
  escapeInvisible,
  formatSummary,
  runAnalysis,
} from '../analysis';
import { type CliContext, onceEach } from '../cli';

export function addAnalyzeCommand(program: Command, ctx: CliContext): void {
  const command = program
    .command('analyze')
    .description(
      'Learn initialization dependencies and a machine boot order from exported logs',
    )
    .argument(
      '<files...>',
      'log files (jsonl, journald json, docker events json); - for standard input',
    )
    .option(
      '--threshold <n>',
      'score a dependency must reach, in (0, 1]',
      '0.7',
    )
    .option(
      '--at <time>',
      'point in time of interest (ISO 8601 with a zone, or epoch ms); default: the latest event',
    )
    .option(
      '--half-life <duration>',
      'how far from the point in time of interest an initialization weighs half, as a duration such as 90d, 12h or 1d12h; longer than 0s (default 90d)',
    )
    .option(
      '--map <file>',
      'JSON name map {"services": {"<name or /regex/>": "<service>"}}',
    )
    .addOption(
      new Option('--format <format>', 'force the input format').choices(
        EVENT_FORMATS,
      ),
    )
    .option('--json', 'print one JSON document')
    .option('--lenient', 'skip and count malformed lines instead of failing')
    .option(
      '--kernel-shape <shape>',
      'shape of the kernel around its peak: piecewise (default), gamma[:k] (k > 1, default 3) or lognormal[:sigma] (default 0.8); a larger k or smaller sigma is narrower',
    )
    .option(
      '--boot-durations <file>',
      'JSON {"<machine>": seconds} of each machine\'s boot: prints the critical path of the waves (in --json: criticalPath)',
    )
    .option(
      '--kernel-peak <delay>',
      "delay after a dependency at which a dependent's start counts most, in minutes or as a duration such as 5s or 1m30s (default 10, moved to the delay the boots show when many dependencies score under the threshold there; a minute or less, e.g. 5s, analyses a site that boots in seconds)",
    )
    .exitOverride();
  onceEach(command).action((files: string[], opts: AnalyzeCliOptions) =>
    analyze(ctx, files, opts),
  );
}

/** `recovery analyze FILE...`: the analysis of the files, as a summary or one JSON document. */
export async function analyze(
  ctx: CliContext,
  files: string[],
  opts: AnalyzeCliOptions,
): Promise<void> {
  const { io } = ctx;
  // Progress goes to a terminal only, never into a pipe or a captured stream. Each redraw clears
  // to the line end (a shorter file name leaves no tail); the line ends before any message.
  let drawn = false;
  const onProgress = io.stderrIsTTY
    ? (file: string, lines: number) => {
        io.stderr(
          `\rrecovery: ${file}: ${lines.toLocaleString('en-US')} lines read\x1b[K`,
        );
        drawn = true;
      }
    : undefined;
  const { result, read } = await runAnalysis(files, {
    ...opts,
    onProgress,
  }).finally(() => {
    if (drawn) io.stderr('\n');
  });
  if (opts.json) {
    const {
      services,
      dependencies,
      serviceOrder,
      machineOrder,
      waves,
      machineDependencies,
      rebootsFollowed,
      cycles,
      machineCycles,
      criticalPath,
      correlation,
      warnings,
      skipped,
      at,
    } = result;
    io.stdout(
      `${JSON.stringify({ services, dependencies, serviceOrder, machineOrder, waves, machineDependencies, rebootsFollowed, cycles, machineCycles, criticalPath, correlation, warnings, skipped, at: new Date(at).toISOString() })}\n`,
    );
    // Also where a person sees them: `--json` output goes to a file or a pipe more often than not.
    for (const w of warnings)
      io.stderr(`recovery: warning: ${escapeInvisible(w)}\n`);
  } else {
    io.stdout(formatSummary(result, read));
  }
}
