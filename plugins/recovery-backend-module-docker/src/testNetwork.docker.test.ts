import { DEMO_IMAGE, buildDemoImage, dockerFromHost } from '../../../demo/site';
import { createTestNetwork } from './testing/testNetwork';

/** What a test run killed before its afterAll left on an engine does not fail the next run. */

const primary = dockerFromHost(
  process.env.RECOVERY_PRIMARY_DOCKER_HOST ??
    'unix:///run/recovery-docker/primary.sock',
);
const SUBNET = '172.29.95.0/24';
const earlier = Date.now().toString(36);
const later = `${earlier}b`;
// The same test's name on another subnet: not in the way, so left alone.
const OTHER = `leftover-prod-other-${earlier}`;

afterAll(async () => {
  await primary
    .getContainer(`leftover-web-${earlier}`)
    .remove({ force: true })
    .catch(() => {});
  for (const name of [
    `leftover-prod-${earlier}`,
    `leftover-prod-${later}`,
    OTHER,
  ])
    await primary
      .getNetwork(name)
      .remove()
      .catch(() => {});
});

describe('createTestNetwork', () => {
  it("removes the network an earlier run of the same test left on its subnet, with the container on it, and creates this run's; one on another subnet is left alone", async () => {
    await buildDemoImage(primary);
    const options = (suffix: string) => ({
      Name: `leftover-prod-${suffix}`,
      Driver: 'bridge',
      IPAM: { Driver: 'default', Config: [{ Subnet: SUBNET }] },
    });
    await primary.createNetwork(options(earlier));
    await primary.createNetwork({
      Name: OTHER,
      IPAM: { Config: [{ Subnet: '172.29.94.0/24' }] },
    });
    const machine = await primary.createContainer({
      name: `leftover-web-${earlier}`,
      Image: DEMO_IMAGE,
      Cmd: ['sleep', '600'],
      HostConfig: { NetworkMode: `leftover-prod-${earlier}` },
      NetworkingConfig: {
        EndpointsConfig: {
          [`leftover-prod-${earlier}`]: {
            IPAMConfig: { IPv4Address: '172.29.95.11' },
          },
        },
      },
    });
    await machine.start();
    // What the next run met before: its own network refused on the subnet.
    await expect(primary.createNetwork(options(later))).rejects.toThrow(
      /Pool overlaps/,
    );

    const network = await createTestNetwork(primary, options(later), later);

    expect((await network.inspect()).IPAM).toMatchObject({
      Config: [{ Subnet: SUBNET }],
    });
    const names = (await primary.listNetworks()).map(n => n.Name);
    expect(names).toContain(`leftover-prod-${later}`);
    expect(names).not.toContain(`leftover-prod-${earlier}`);
    expect(names).toContain(OTHER);
    await expect(machine.inspect()).rejects.toMatchObject({ statusCode: 404 });
  });

  it('refuses a name that does not end with the suffix it is to recognise leftovers by', async () => {
    await expect(
      createTestNetwork(primary, { Name: 'leftover-prod' }, earlier),
    ).rejects.toThrow(
      `test network leftover-prod does not end with ${earlier}`,
    );
  });
});
