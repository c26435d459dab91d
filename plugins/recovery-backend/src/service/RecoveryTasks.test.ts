import type {
  BackstageCredentials,
  PermissionsService,
} from '@backstage/backend-plugin-api';
import { mockCredentials } from '@backstage/backend-test-utils';
import { NotFoundError } from '@backstage/errors';
import { AuthorizeResult } from '@backstage/plugin-permission-common';
import type {
  Capture,
  RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import type { RunRequest } from '../run/AuthorizedRunService';
import { recordingAuditor } from '../testing/auditor';
import { AuthorizedAnalysisService } from './AuthorizedAnalysisService';
import { AuthorizedCaptureService } from './AuthorizedCaptureService';
import { RecoveryAuthorizer } from './RecoveryAuthorizer';
import { RecoveryTasks } from './RecoveryTasks';

const WEB_01 = 'resource:default/web-01';
const VAULT_01 = 'resource:default/vault-01';
const WEB = 'component:default/web';
const SHOP = 'system:default/shop';
const VAULT = 'system:default/vault';
const PLUGIN = mockCredentials.service('plugin:recovery');
const notAsked = async (): Promise<never> => {
  throw new Error('not asked');
};

/** The tasks over fakes: the catalog hides the vault's entities, the policy allows `allowed`. */
function tasks(allowed: string[]) {
  const auditor = recordingAuditor();
  const events = auditor.events;
  const permissions = {
    authorize: async (
      requests: Array<{ permission: { name: string }; resourceRef?: string }>,
    ) =>
      requests.map(r => ({
        result: allowed.includes(`${r.permission.name}@${r.resourceRef}`)
          ? AuthorizeResult.ALLOW
          : AuthorizeResult.DENY,
      })),
  } as unknown as PermissionsService;
  const seen = (ref: string) => ![VAULT, VAULT_01].includes(ref);
  const graphs = {
    visibleTo: async (refs: string[]) => refs.filter(seen),
    // Every ref held: those not seen are withheld.
    seenAndWithheld: async (refs: string[]) => ({
      seen: refs.filter(seen),
      withheld: refs.filter(ref => !seen(ref)),
    }),
    requireVisible: async (ref: string) => {
      if (!seen(ref)) throw new NotFoundError(`No entity ${ref}`);
      return ref;
    },
  };
  const captured: string[] = [];
  const capture = (machineRef: string): Capture =>
    ({ id: `c-${machineRef}`, machineRef }) as Capture;
  const started: RunRequest[] = [];
  const readAs: BackstageCredentials[] = [];
  const authorizer = new RecoveryAuthorizer(permissions);
  // The route's services, as the plugin builds them for both.
  const api = new RecoveryTasks({
    auth: { getOwnServiceCredentials: async () => PLUGIN },
    auditor,
    captures: new AuthorizedCaptureService(
      {
        captureEntity: async (entityRef: string, machineRef?: string) => {
          captured.push(`${entityRef} ${machineRef}`);
          return [capture(machineRef ?? entityRef)];
        },
        requestCapture: async () => {
          throw new Error('the tasks capture while they wait');
        },
        captureRequest: async () => undefined,
        listCaptures: async (machineRef: string, limit: number) =>
          [capture(machineRef), capture('older')].slice(0, limit),
        countCaptures: async () => 2,
      },
      authorizer,
      graphs,
      // Each machine a task captures is its own plan, on the primary engine.
      {
        plan: async (entityRef: string) =>
          ({
            graph: {
              machines: new Map([
                [entityRef, { locator: { machineRef: entityRef } }],
              ]),
              problems: [],
            },
            plan: { waves: [[entityRef]] },
          }) as never,
      },
    ),
    runs: {
      start: async (_credentials, request) => {
        started.push(request);
        return {
          id: 'run-1',
          entityRef: request.entityRef,
          mode: request.mode,
          hypervisorHost: 'lab',
          plan: { machines: [{ machineRef: WEB_01 }] },
        } as unknown as RecoveryRun;
      },
      get: async () => {
        throw new Error('not asked');
      },
    },
    analyses: new AuthorizedAnalysisService(
      {
        analyzeSystem: notAsked,
        latestFor: notAsked,
        asSeenBy: notAsked,
        sweep: async (_credentials, permitted) => ({
          analysed: await permitted([SHOP, VAULT]),
          skipped: [],
          failed: [],
          hidden: 0,
        }),
      },
      authorizer,
      graphs,
    ),
    readiness: {
      visibleReadiness: async (credentials, options) => {
        readAs.push(credentials);
        expect(options).toEqual({ includePlan: true });
        return [];
      },
    },
    nightlyChecks: { record: async () => {} },
  });
  return { api, events, captured, started, readAs };
}

describe('RecoveryTasks', () => {
  it('captures a machine it may see and capture, recording what it took as the route does', async () => {
    const { api, events, captured } = tasks([
      `recovery.capture.create@${WEB_01}`,
    ]);
    expect(await api.capture(WEB_01)).toEqual([
      { id: `c-${WEB_01}`, machineRef: WEB_01 },
    ]);
    expect(captured).toEqual([`${WEB_01} ${WEB_01}`]);
    expect(events).toEqual([
      {
        eventId: 'capture-create',
        severityLevel: 'medium',
        request: undefined,
        meta: { entityRef: WEB_01, machineRef: WEB_01 },
        ends: [
          {
            status: 'succeeded',
            meta: {
              entityRef: WEB_01,
              machineRef: WEB_01,
              captures: [{ captureId: `c-${WEB_01}`, machineRef: WEB_01 }],
            },
          },
        ],
      },
    ]);
  });

  it('refuses a capture without the grant (403) and of a machine the catalog hides (404), each on record', async () => {
    const { api, events, captured } = tasks([]);
    await expect(api.capture(WEB_01)).rejects.toMatchObject({
      statusCode: 403,
      message: `Missing permission recovery.capture.create on ${WEB_01}`,
    });
    await expect(api.capture(VAULT_01)).rejects.toMatchObject({
      statusCode: 404,
    });
    await expect(api.latestCapture(VAULT_01)).rejects.toMatchObject({
      statusCode: 404,
    });
    expect(captured).toEqual([]);
    expect(events.map(e => [e.eventId, e.ends])).toEqual([
      [
        'capture-create',
        [
          {
            status: 'failed',
            error: `Missing permission recovery.capture.create on ${WEB_01}`,
          },
        ],
      ],
      [
        'capture-create',
        [{ status: 'failed', error: `No entity ${VAULT_01}` }],
      ],
    ]);
  });

  it("reads a machine's latest capture", async () => {
    const { api } = tasks([]);
    expect(await api.latestCapture(WEB_01)).toEqual({
      id: `c-${WEB_01}`,
      machineRef: WEB_01,
    });
  });

  it('starts a test recovery, recording the run as the route does', async () => {
    const { api, events, started } = tasks([]);
    await api.startRun(WEB);
    expect(started).toEqual([
      {
        entityRef: WEB,
        mode: 'test',
        options: {},
        acceptMissingDependencies: false,
        acceptCycles: false,
      },
    ]);
    expect(events).toEqual([
      {
        eventId: 'run-start',
        severityLevel: 'medium',
        request: undefined,
        meta: { entityRef: WEB, mode: 'test' },
        ends: [
          {
            status: 'succeeded',
            meta: {
              runId: 'run-1',
              entityRef: WEB,
              mode: 'test',
              hypervisorHost: 'lab',
              recoveryPoint: undefined,
              machineRefs: [WEB_01],
            },
          },
        ],
      },
    ]);
  });

  it('sweeps only the systems it may analyse, and reads the readiness of all it may see, as the plugin', async () => {
    const { api, events, readAs } = tasks([`recovery.analysis.create@${SHOP}`]);
    expect(await api.analyzeSystems()).toEqual({
      analysed: [SHOP],
      skipped: [],
      failed: [],
    });
    expect(events).toEqual([
      {
        eventId: 'analysis-create',
        severityLevel: 'medium',
        request: undefined,
        meta: {},
        ends: [
          {
            status: 'succeeded',
            meta: { sweep: true, analysed: [SHOP], skipped: [], failed: [] },
          },
        ],
      },
    ]);
    expect(await api.listReadiness()).toEqual([]);
    expect(readAs).toEqual([PLUGIN]);
  });
});
