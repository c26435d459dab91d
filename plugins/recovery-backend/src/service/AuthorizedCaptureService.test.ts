import type { PermissionsService } from '@backstage/backend-plugin-api';
import {
  mockCredentials,
  mockServices,
  TestDatabases,
} from '@backstage/backend-test-utils';
import { AuthorizeResult } from '@backstage/plugin-permission-common';
import type { MachineLocator } from '@backstage-recovery/plugin-recovery-node';
import { CaptureStore } from '../database/CaptureStore';
import { migrate } from '../database/migrations';
import { FakeCaptureSource } from '../testing/FakeCaptureSource';
import { AuthorizedCaptureService } from './AuthorizedCaptureService';
import { CaptureService, type CaptureRequestEnd } from './CaptureService';
import type { PlanService } from './PlanService';
import { ProviderRegistry } from './ProviderRegistry';
import { RecoveryAuthorizer } from './RecoveryAuthorizer';

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });
const WEB = 'component:default/web';
const WEB_01 = 'resource:default/web-01';
const VAULT_01 = 'resource:default/vault-01';
const ALICE = mockCredentials.user('user:default/alice');

const locator = (machineRef: string): MachineLocator => ({
  machineRef,
  engine: 'primary',
  container: machineRef.split('/')[1],
});

/**
 * web's boot plan as the catalog answers it: web-01 at the first read, then vault-01 too (added
 * to the catalog meanwhile); `reads` counts the reads.
 */
function changingPlan() {
  let reads = 0;
  const plans = {
    get reads() {
      return reads;
    },
    plan: async () => {
      const machines = ++reads === 1 ? [WEB_01] : [WEB_01, VAULT_01];
      return {
        graph: {
          machines: new Map(machines.map(m => [m, { locator: locator(m) }])),
          problems: [],
        },
        plan: { waves: [machines] },
      } as unknown as Awaited<ReturnType<PlanService['plan']>>;
    },
  };
  return plans;
}

describe.each(databases.eachSupportedId())(
  'AuthorizedCaptureService on %p',
  databaseId => {
    /** Alice may capture web and web-01, not vault-01 (another team's); she sees every entity. */
    async function setUp() {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const source = new FakeCaptureSource();
      const providers = new ProviderRegistry();
      providers.addCaptureSource(source);
      const plans = changingPlan();
      const captures = new CaptureService(
        new CaptureStore(knex),
        providers,
        plans as unknown as PlanService,
        mockServices.logger.mock(),
        3,
        mockServices.auditor.mock(),
      );
      const permissions = {
        authorize: async (requests: Array<{ resourceRef?: string }>) =>
          requests.map(r => ({
            result:
              r.resourceRef === VAULT_01
                ? AuthorizeResult.DENY
                : AuthorizeResult.ALLOW,
          })),
      } as unknown as PermissionsService;
      const authorized = new AuthorizedCaptureService(
        captures,
        new RecoveryAuthorizer(permissions),
        {
          requireVisible: async ref => ref,
          visibleTo: async refs => refs,
          seenAndWithheld: async refs => ({ seen: refs, withheld: [] }),
        },
        plans,
      );
      return { source, plans, captures, authorized };
    }

    it('captures the machines it authorized, reading the plan once, not one added to the plan since', async () => {
      const { source, plans, authorized } = await setUp();
      const taken = await authorized.capture(ALICE, WEB);
      expect(taken.map(c => c.machineRef)).toEqual([WEB_01]);
      expect(source.captured).toEqual(['web-01']);
      expect(plans.reads).toBe(1);
    });

    it('takes a capture request of the machines it authorized, reading the plan once', async () => {
      const { source, plans, captures, authorized } = await setUp();
      const ends: CaptureRequestEnd[] = [];
      const { requestId, machineRefs } = await authorized.requestCapture(
        ALICE,
        WEB,
        undefined,
        async end => {
          ends.push(end);
        },
      );
      expect(machineRefs).toEqual([WEB_01]);
      await vi.waitFor(() => expect(ends).toHaveLength(1));
      expect(await captures.captureRequest(requestId)).toMatchObject({
        status: 'succeeded',
        captures: [{ machineRef: WEB_01 }],
      });
      expect(source.captured).toEqual(['web-01']);
      expect(plans.reads).toBe(1);
    });
  },
);
