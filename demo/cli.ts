/*
 * Demo site CLI. From the repository root:
 *   node -r @backstage/cli/config/nodeTransform.cjs demo/cli.ts up|down|status|image
 * Engine: $RECOVERY_PRIMARY_DOCKER_HOST (default unix:///run/recovery-docker/primary.sock).
 *   up [--order a,b,c] [--no-wait] [--deadline SECONDS] [--recreate]
 *   down [--all]      (--all also removes the demo-prod network and the image)
 */
import {
  buildDemoImage,
  demoSiteStatus,
  dockerFromHost,
  startDemoSite,
  stopDemoSite,
} from './site';

async function main() {
  const [command, ...args] = process.argv.slice(2);
  const flag = (name: string) => args.includes(name);
  const value = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const host =
    process.env.RECOVERY_PRIMARY_DOCKER_HOST ??
    'unix:///run/recovery-docker/primary.sock';
  const docker = dockerFromHost(host);
  try {
    await docker.ping();
  } catch (e) {
    throw new Error(
      `primary engine ${host} is not reachable (scripts/docker-engines.sh start): ${(e as Error).message}`,
    );
  }
  switch (command) {
    case 'up': {
      const t0 = Date.now();
      await startDemoSite(docker, {
        order: value('--order')?.split(','),
        waitForServices: !flag('--no-wait'),
        dependencyDeadlineSeconds: value('--deadline')
          ? Number(value('--deadline'))
          : undefined,
        recreate: flag('--recreate'),
        log: line => console.log(line),
      });
      console.log(`demo site up on ${host} in ${Date.now() - t0} ms`);
      break;
    }
    case 'down':
      for (const r of await stopDemoSite(docker, { all: flag('--all') }))
        console.log(`removed ${r}`);
      break;
    case 'image':
      console.log(await buildDemoImage(docker, { force: true }));
      break;
    case 'status':
      for (const m of await demoSiteStatus(docker)) {
        console.log(
          `${m.name} ${m.ipv4} ${m.exists ? (m.running ? 'running' : 'stopped') : 'absent'}${m.health ? ` (${m.health})` : ''}`,
        );
        for (const s of m.services)
          console.log(`  ${s.name}: ${s.line ?? s.state}`);
      }
      break;
    default:
      console.error('usage: demo/cli.ts up|down|status|image');
      process.exitCode = 2;
  }
}

main().catch(e => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
