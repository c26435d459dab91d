import { useState } from 'react';
import { act, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import {
  ANNOTATION_CONTAINER,
  ANNOTATION_ENGINE,
  JOB_MACHINE_NOTE,
  MISSING_DEPENDENCIES_ERROR_NAME,
  Readiness,
  RecoveryApi,
} from '@backstage-recovery/plugin-recovery-common';
import { EntityRecoveryCard } from './EntityRecoveryCard';
import {
  conflictError,
  DB,
  fakeRecoveryApi,
  makeReadiness,
  makeRun,
  plan,
  WEB,
} from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';

function renderCard(options: { api: Partial<RecoveryApi> }) {
  return renderWithApis(<EntityRecoveryCard pollIntervalMs={10} />, options);
}

/** Presses "Run test recovery" once the card enables it; returns the button. */
async function pressRunTestRecovery(): Promise<HTMLElement> {
  const button = await screen.findByRole('button', {
    name: /run test recovery/i,
  });
  await waitFor(() => expect(button).toBeEnabled());
  await userEvent.click(button);
  return button;
}
describe('EntityRecoveryCard', () => {
  it('shows progress while readiness loads', async () => {
    const api = fakeRecoveryApi({ getReadiness: () => new Promise(() => {}) });
    await renderCard({ api });
    expect(screen.getByText('Recovery readiness')).toBeInTheDocument();
    // Backstage's Progress shows after a delay; the first render of the file is slow under load.
    // Found by role: its hidden placeholder has the same test id, and is replaced once it shows.
    expect(
      await screen.findByRole(
        'progressbar',
        { name: 'Loading' },
        { timeout: 5_000 },
      ),
    ).toBeInTheDocument();
    expect(api.getReadiness).toHaveBeenCalledWith('component:default/web');
    expect(
      screen.queryByRole('button', { name: /run test recovery/i }),
    ).toBeNull();
  });

  it('shows status, reasons, capture ages vs RPO, last run and boot plan position', async () => {
    const readiness = makeReadiness({
      status: 'at-risk',
      reasons: ['Capture of web-1 is 30h old, over the 24h RPO'],
      lastRun: makeRun('succeeded'),
    });
    const api = fakeRecoveryApi({ getReadiness: async () => readiness });
    await renderCard({ api });

    expect(await screen.findByText('At risk')).toBeInTheDocument();
    expect(
      screen.getByText('Capture of web-1 is 30h old, over the 24h RPO'),
    ).toBeInTheDocument();
    expect(screen.getByText(/RPO 1d · RTO 15m/)).toBeInTheDocument();

    const captures = screen.getByRole('table', { name: 'Captures' });
    // Cells named by their verdict: read out to screen readers too. The age is said once, in
    // the row's "Last capture".
    const [dbRow, webRow] = within(captures).getAllByRole('row').slice(1);
    expect(
      within(dbRow).getByRole('cell', { name: 'within RPO 1d' }),
    ).toBeInTheDocument();
    expect(
      within(webRow).getByRole('cell', { name: 'over RPO 1d' }),
    ).toBeInTheDocument();
    expect(within(webRow).getByText('1d 6h ago')).toBeInTheDocument();
    expect(within(captures).queryByText(/ old/)).toBeNull();
    // Each capture's age, with the instant it was taken in UTC on hover.
    const dbCapture = readiness.captures[0].latest!.createdAt;
    const age = within(captures).getByText('2h ago');
    expect(age.tagName).toBe('TIME');
    expect(age).toHaveAttribute('dateTime', dbCapture);
    expect(age).toHaveAttribute(
      'title',
      `${dbCapture.slice(0, 10)} ${dbCapture.slice(11, 19)} UTC`,
    );
    // How long each capture paused production; unknown for one stored before it was recorded.
    // Written as the RTO is, to the millisecond, not `420 ms`.
    expect(within(captures).getByText('0.42s')).toBeInTheDocument();
    expect(within(captures).getByText('—')).toBeInTheDocument();

    expect(screen.getByTestId('last-run')).toHaveTextContent(
      /Succeeded.*measured RTO 4m 12s vs objective 15m/,
    );

    const position = screen.getByTestId('plan-position');
    expect(position).toHaveTextContent('Boots in wave 2 of 2, after db.');
    const waves = screen.getByRole('group', { name: 'Boot waves' });
    expect(within(waves).getByText('Wave 1')).toBeInTheDocument();
    expect(within(waves).getByText('db')).toBeInTheDocument();
    // The entity's own machine is told apart in words too, not only by its colour.
    expect(
      within(waves).getByText("(this entity's machine)").parentElement,
    ).toHaveTextContent("web-1 (this entity's machine)");
    expect(within(waves).getAllByText(/this entity's machine/)).toHaveLength(1);

    expect(
      screen.getByRole('button', { name: /run test recovery/i }),
    ).toBeEnabled();
    expect(screen.getByRole('button', { name: /capture now/i })).toBeEnabled();
    expect(screen.queryByText(/You are not allowed/)).toBeNull();
  });

  it('marks a one-shot job among the boot waves, what it means on hover', async () => {
    const readiness = makeReadiness({
      plan: {
        ...plan,
        machines: plan.machines.map(m =>
          m.machineRef === DB ? { ...m, job: true } : m,
        ),
      },
    });
    await renderCard({
      api: fakeRecoveryApi({ getReadiness: async () => readiness }),
    });
    const waves = await screen.findByRole('group', { name: 'Boot waves' });
    const job = within(waves)
      .getByText(/db · job/)
      .closest('[title]');
    expect(job).toHaveAttribute('title', `${DB} (${JOB_MACHINE_NOTE})`);
    expect(within(waves).queryAllByText(/· job/)).toHaveLength(1);
  });

  it.each([
    [
      'a system, its machines waiting only for each other',
      { wave: 1, machines: [DB, WEB], waitsFor: [] },
      plan,
      'Its 2 machines boot in waves 1 to 2 of 2, waiting for no machine outside it.',
    ],
    [
      'a machine in wave 1',
      { wave: 0, machines: [DB], waitsFor: [] },
      plan,
      'Boots in wave 1 of 2, waiting for no other machine.',
    ],
    [
      'a machine past wave 1 that waits for none',
      { wave: 1, machines: [WEB], waitsFor: [] },
      {
        ...plan,
        machines: plan.machines.map(m => ({ ...m, waitsFor: [] })),
      },
      'Boots in wave 2 of 2; it waits for no other machine.',
    ],
  ])(
    'says where %s boots without contradicting itself',
    async (_, position, bootPlan, text) => {
      const api = fakeRecoveryApi({
        getReadiness: async () => makeReadiness({ position, plan: bootPlan }),
      });
      await renderCard({ api });
      expect(await screen.findByTestId('plan-position')).toHaveTextContent(
        text,
      );
    },
  );

  it('explains how to annotate when the entity has no machines', async () => {
    const api = fakeRecoveryApi({
      getReadiness: async () =>
        makeReadiness({
          status: 'unknown',
          reasons: ['No machines found for this entity'],
          plan: { entityRef: 'component:default/web', waves: [], machines: [] },
          position: undefined,
          captures: [],
        }),
    });
    await renderCard({ api });

    const box = await screen.findByLabelText('No machines');
    expect(box).toHaveTextContent("No machines in this component's boot plan");
    expect(box).toHaveTextContent(ANNOTATION_ENGINE);
    expect(box).toHaveTextContent(ANNOTATION_CONTAINER);
    expect(box).toHaveTextContent('spec.dependsOn');
    expect(box).toHaveTextContent('spec.type: machine');
    expect(screen.getByText('Unknown')).toBeInTheDocument();
    expect(screen.queryByRole('table', { name: 'Captures' })).toBeNull();
    expect(
      screen.getByRole('button', { name: /run test recovery/i }),
    ).toBeDisabled();
    expect(screen.getByRole('button', { name: /capture now/i })).toBeDisabled();
  });

  it('when no plan can be made, says why and still shows the captures, not how to add machines', async () => {
    const cycle =
      'Dependency cycle: component:default/web → component:default/api → component:default/web';
    const api = fakeRecoveryApi({
      getReadiness: async () =>
        makeReadiness({
          status: 'not-recoverable',
          reasons: [cycle],
          plan: undefined,
          position: undefined,
        }),
    });
    await renderCard({ api });

    expect(await screen.findByText(cycle)).toBeInTheDocument();
    expect(screen.queryByLabelText('No machines')).toBeNull();
    expect(screen.getByRole('table', { name: 'Captures' })).toBeInTheDocument();
    expect(
      screen.getByRole('button', { name: /run test recovery/i }),
    ).toBeDisabled();
  });

  it("tells a System's owner to make services parts of it, not to list machines in its dependsOn", async () => {
    const api = fakeRecoveryApi({
      getReadiness: async () =>
        makeReadiness({
          entityRef: 'system:default/shop',
          status: 'unknown',
          plan: { entityRef: 'system:default/shop', waves: [], machines: [] },
          position: undefined,
          captures: [],
        }),
    });
    await renderWithApis(<EntityRecoveryCard pollIntervalMs={10} />, {
      api,
      entity: {
        apiVersion: 'backstage.io/v1alpha1',
        kind: 'System',
        metadata: { name: 'shop', namespace: 'default' },
        spec: { owner: 'team-a' },
      },
    });

    const box = await screen.findByLabelText('No machines');
    expect(box).toHaveTextContent("No machines in this system's boot plan");
    expect(box).toHaveTextContent('spec.system');
    expect(box).toHaveTextContent(/system: shop/);
    expect(box).toHaveTextContent(ANNOTATION_ENGINE);
    // The planner never follows a System's own dependsOn.
    expect(box).not.toHaveTextContent(/this entity's spec\.dependsOn/);
    expect(box).not.toHaveTextContent(/# this system/);
  });

  it('shows declared vs observed dependencies when no plan can be made', async () => {
    const cycle =
      'Dependency cycle: component:default/web → component:default/api → component:default/web';
    const api = fakeRecoveryApi({
      getReadiness: async () =>
        makeReadiness({
          status: 'not-recoverable',
          reasons: [cycle],
          plan: undefined,
          position: undefined,
          disagreements: {
            inferredNotDeclared: [],
            declaredNotObserved: [
              {
                service: 'component:default/web',
                dependsOn: 'component:default/api',
              },
            ],
          },
        }),
    });
    await renderCard({ api });
    await screen.findByText(cycle);
    const section = screen.getByRole('region', {
      name: 'Declared vs observed dependencies',
    });
    expect(section).toHaveTextContent('web depends on api');
  });

  it('shows declared vs observed dependencies when the plan has no machines', async () => {
    const api = fakeRecoveryApi({
      getReadiness: async () =>
        makeReadiness({
          status: 'unknown',
          plan: { entityRef: 'component:default/web', waves: [], machines: [] },
          position: undefined,
          captures: [],
          disagreements: {
            inferredNotDeclared: [
              {
                service: 'component:default/web',
                dependsOn: 'component:default/db',
                score: 0.9,
              },
            ],
            declaredNotObserved: [],
          },
        }),
    });
    await renderCard({ api });
    await screen.findByLabelText('No machines');
    expect(
      screen.getByRole('region', { name: 'Declared vs observed dependencies' }),
    ).toHaveTextContent('web waits for db (score 0.90)');
  });

  it('reports where declared and observed dependencies disagree', async () => {
    const api = fakeRecoveryApi({
      getReadiness: async () =>
        makeReadiness({
          plan: {
            ...makeReadiness().plan!,
            inferred: [
              {
                service: 'component:default/web',
                dependsOn: 'component:default/db',
                score: 0.86,
              },
            ],
            inferredMachineWaits: [
              {
                machine: 'resource:default/web-01',
                waitsFor: 'resource:default/data-01',
                followed: 3,
                chances: 4,
              },
            ],
            analysis: {
              id: 'a1',
              createdAt: new Date().toISOString(),
              warnings: [
                '1 dependency has fewer than 5 samples (low confidence): web → db (3)',
              ],
            },
          },
          disagreements: {
            inferredNotDeclared: [
              {
                service: 'component:default/web',
                dependsOn: 'component:default/db',
                score: 0.86,
              },
            ],
            declaredNotObserved: [
              {
                service: 'component:default/web',
                dependsOn: 'component:default/cache',
              },
            ],
          },
        }),
    });
    await renderCard({ api });
    const section = await screen.findByRole('region', {
      name: 'Declared vs observed dependencies',
    });
    expect(section).toHaveTextContent(
      'Observed in boot history but not declared in spec.dependsOn',
    );
    expect(section).toHaveTextContent('web waits for db (score 0.86)');
    expect(section).toHaveTextContent(
      'Declared but never observed in boot history',
    );
    expect(section).toHaveTextContent('web depends on cache');
    // The list itself is a named group inside the card's section.
    expect(
      within(section).getByRole('group', {
        name: 'Declared vs observed dependencies',
      }),
    ).toHaveTextContent('web waits for db (score 0.86)');
    expect(
      screen.getByText(
        /The order also follows 1 dependency observed in boot history and 1 machine wait seen in reboots \(analysis of/,
      ),
    ).toHaveTextContent(/\(analysis of just now\)\.$/);
    expect(screen.getByText('just now')).toHaveAttribute(
      'title',
      expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/),
    );
    expect(
      screen.getByRole('list', { name: 'Analysis warnings' }),
    ).toHaveTextContent(
      '1 dependency has fewer than 5 samples (low confidence): web → db (3)',
    );
  });

  it('lists the learned dependencies of the boot plan with their score and boots, marking those of low confidence', async () => {
    const learned = {
      service: 'component:default/web',
      dependsOn: 'component:default/db',
      score: 0.82,
      samples: 1,
      confidence: 'low' as const,
    };
    const api = fakeRecoveryApi({
      getReadiness: async () =>
        makeReadiness({
          plan: {
            ...makeReadiness().plan!,
            inferred: [
              learned,
              {
                service: 'component:default/db',
                dependsOn: 'component:default/dns',
                score: 0.95,
                samples: 12,
                confidence: 'high',
              },
            ],
          },
          disagreements: {
            inferredNotDeclared: [learned],
            declaredNotObserved: [],
          },
        }),
    });
    await renderCard({ api });
    const list = await screen.findByRole('list', {
      name: 'Learned dependencies',
    });
    const [low, high] = within(list).getAllByRole('listitem');
    expect(low).toHaveTextContent(
      'web waits for db (score 0.82, 1 boot) low confidence',
    );
    expect(high).toHaveTextContent('db waits for dns (score 0.95, 12 boots)');
    expect(high).not.toHaveTextContent('low confidence');
    // The disagreement says the same evidence.
    expect(
      screen.getByRole('group', { name: 'Declared vs observed dependencies' }),
    ).toHaveTextContent('web waits for db (score 0.82, 1 boot) low confidence');
  });

  it('lists entity problems naming the annotation at fault', async () => {
    const api = fakeRecoveryApi({
      getReadiness: async () =>
        makeReadiness({
          status: 'not-recoverable',
          reasons: ['Machine web-1 cannot be captured'],
          problems: [
            {
              entityRef: WEB,
              annotation: ANNOTATION_CONTAINER,
              message: 'Machine web-1 has no container annotation',
            },
            {
              entityRef: 'component:default/web',
              annotation: 'recovery.backstage-recovery.io/rpo',
              message: 'RPO "soon" is not a duration such as 24h',
            },
          ],
        }),
    });
    await renderCard({ api });

    const problems = await screen.findByLabelText('Configuration problems');
    expect(problems).toHaveTextContent('2 configuration problems');
    expect(problems).toHaveTextContent(
      'Machine web-1 has no container annotation',
    );
    expect(problems).toHaveTextContent(
      `(resource:web-1, ${ANNOTATION_CONTAINER})`,
    );
    expect(problems).toHaveTextContent(
      'RPO "soon" is not a duration such as 24h',
    );
    expect(problems).toHaveTextContent('recovery.backstage-recovery.io/rpo');
    expect(screen.getByText('Not recoverable')).toBeInTheDocument();
  });

  it('after a reload, follows the run in progress live: one machine ready with timings, one restoring', async () => {
    // As the backend answers: readiness carries the last finished run, GET /runs the active one.
    const running = makeRun('running');
    const api = fakeRecoveryApi({
      getReadiness: async () =>
        makeReadiness({ lastRun: makeRun('succeeded', { id: 'run-0' }) }),
      listRuns: async () => [running],
      getRun: async () => running,
    });
    await renderCard({ api });

    const section = await screen.findByLabelText('Test recovery in progress');
    expect(api.listRuns).toHaveBeenCalledWith({ active: true });
    expect(section).toHaveTextContent('in progress on recovery-1');
    // Web's own run: no notice of a busy host.
    expect(section).not.toHaveTextContent(/is busy with/);
    expect(section).toHaveTextContent('wave 2 of 2');
    expect(section).toHaveTextContent('1 of 2 machines ready');

    const dbRow = within(section).getByTestId('run-machine-db');
    expect(dbRow).toHaveTextContent('Ready');
    // As the RTO is written (`12s`, not `12.0s`).
    expect(dbRow).toHaveTextContent('12s'); // restore 1s → 13s
    expect(dbRow).toHaveTextContent('1s after restore'); // start 13s → 14s
    expect(dbRow).toHaveTextContent('6s'); // boot 14s → 20s
    expect(dbRow).toHaveTextContent('19s in all'); // total 1s → 20s
    const webRow = within(section).getByTestId('run-machine-web-1');
    expect(webRow).toHaveTextContent('Restoring');
    expect(webRow).toHaveTextContent('…');

    // Times of day in UTC, saying so: the run's start above gives the date.
    expect(dbRow).toHaveTextContent('from 10:00:01 UTC');
    expect(dbRow).toHaveTextContent('started 10:00:14 UTC');
    expect(within(dbRow).getAllByRole('cell')[4]).toHaveTextContent(
      /^10:00:20 UTC/,
    );

    const timeline = within(section).getByRole('table', { name: 'Timeline' });
    expect(
      within(timeline).getByText('Restoring capture cap-web'),
    ).toBeInTheDocument();
    expect(
      within(timeline).getByText('Probe tcp:5432 passed'),
    ).toBeInTheDocument();
    expect(
      within(timeline)
        .getAllByRole('row')
        .slice(1)
        .map(row => within(row).getAllByRole('cell')[0].textContent),
    ).toEqual(['10:00:00 UTC', '10:00:01 UTC', '10:00:20 UTC', '10:00:21 UTC']);

    await waitFor(() => expect(api.getRun).toHaveBeenCalledWith('run-1'));
    expect(
      screen.getByRole('button', { name: /test recovery running/i }),
    ).toBeDisabled();
    // The previous, finished run stays summarised beside the live one.
    expect(screen.getByTestId('last-run')).toHaveTextContent(/Succeeded/);
  });

  it('follows a failover of the entity in progress, keeping test recoveries off', async () => {
    const failover = makeRun('running', { mode: 'failover' });
    const api = fakeRecoveryApi({
      listRuns: async () => [failover],
      getRun: async () => failover,
    });
    await renderCard({ api });

    expect(
      await screen.findByLabelText('Failover in progress'),
    ).toHaveTextContent('1 of 2 machines ready');
    expect(
      screen.getByRole('button', { name: 'Failover running…' }),
    ).toBeDisabled();
  });

  it('warns when it cannot check for a run in progress, and still allows starting one', async () => {
    const api = fakeRecoveryApi({
      listRuns: async () => {
        throw new Error('Service Unavailable');
      },
    });
    await renderCard({ api });

    expect(
      await screen.findByText(
        /Could not check for a recovery run in progress: Service Unavailable/,
      ),
    ).toBeInTheDocument();
    expect(
      screen.getByRole('button', { name: /run test recovery/i }),
    ).toBeEnabled();
    expect(api.getRun).not.toHaveBeenCalled();
  });

  it('times a run to the second, and a machine in columns that add up to its whole', async () => {
    const run = makeRun('succeeded');
    const quick = {
      ...run.machines[0],
      restoreStartedAt: '2024-05-01T10:00:01.000Z',
      restoredAt: '2024-05-01T10:00:01.400Z',
      startedAt: '2024-05-01T10:00:01.900Z',
      readyAt: '2024-05-01T10:00:06.200Z',
      finishedAt: '2024-05-01T10:00:06.200Z',
    };
    const api = fakeRecoveryApi({
      listRuns: async () => [makeRun('running')],
      getRun: async () => ({ ...run, machines: [quick, run.machines[1]] }),
    });
    await renderCard({ api });
    await screen.findByText('Recovery succeeded');

    // In UTC, saying so, whatever the browser's zone.
    const header = screen.getByText(/^test run/);
    expect(header).toHaveTextContent(
      /^test run run-1 · .*started 2024-05-01 10:00:01 UTC · finished 2024-05-01 10:00:46 UTC$/,
    );
    // Its id opens its page.
    expect(within(header).getByRole('link', { name: 'run-1' })).toHaveAttribute(
      'href',
      '/recovery/runs/run-1',
    );
    // Restore 0.4s + start 0.5s + boot 4.3s: 5.2s in all, not "0s", "4s" and "5s in all".
    const cells = within(screen.getByTestId('run-machine-db')).getAllByRole(
      'cell',
    );
    expect(cells[2]).toHaveTextContent(/^0\.4sfrom /);
    expect(cells[3]).toHaveTextContent(/^4\.3sstarted .*0\.5s after restore$/);
    expect(cells[4]).toHaveTextContent(/5\.2s in all$/);
  });

  it('fits the machines table in a narrow card: headers wrap, values do not, and it scrolls past that', async () => {
    const api = fakeRecoveryApi({
      listRuns: async () => [makeRun('running')],
      getRun: async () => makeRun('succeeded'),
    });
    await renderCard({ api });
    await screen.findByText('Recovery succeeded');

    const table = screen.getByRole('table', { name: 'Machines' });
    for (const header of within(table).getAllByRole('columnheader')) {
      expect(getComputedStyle(header).whiteSpace).not.toBe('nowrap');
    }
    const readyAt = within(screen.getByTestId('run-machine-db')).getAllByRole(
      'cell',
    )[4];
    expect(getComputedStyle(readyAt).whiteSpace).not.toBe('nowrap');
    expect(getComputedStyle(readyAt.firstElementChild!).whiteSpace).toBe(
      'nowrap',
    );
    expect(getComputedStyle(table.parentElement!).overflowX).toBe('auto');
  });

  it('keeps a long machine name inside a narrow card: captures and the boot plan cut it short', async () => {
    const long =
      'resource:default/payments-ledger-postgres-primary-eu-west-1-az-b-replica-01';
    const base = makeReadiness();
    const api = fakeRecoveryApi({
      getReadiness: async () =>
        makeReadiness({
          plan: {
            ...plan,
            waves: [[DB, long], [WEB]],
            machines: [
              ...plan.machines,
              {
                machineRef: long,
                wave: 0,
                services: [],
                waitsFor: [],
                probes: [],
              },
            ],
          },
          captures: [...base.captures, { machineRef: long }],
        }),
      getRun: async () =>
        makeRun('failed', {
          steps: [
            {
              at: '2024-05-01T10:00:02Z',
              level: 'error',
              message: `${long} failed: image sha256:${'ab'.repeat(32)} not found`,
            },
          ],
        }),
      listRuns: async () => [makeRun('running')],
    });
    await renderCard({ api });

    const captures = await screen.findByRole('table', { name: 'Captures' });
    // Cut short, its full ref on hover, rather than broken mid-word.
    const name = within(captures).getByRole('link', {
      name: /payments-ledger/,
    }).parentElement!;
    expect(getComputedStyle(name)).toMatchObject({
      maxWidth: '14em',
      overflow: 'hidden',
      textOverflow: 'ellipsis',
    });
    expect(getComputedStyle(name.closest('td')!).whiteSpace).toBe('nowrap');
    const chip = within(
      screen.getByRole('group', { name: 'Boot waves' }),
    ).getByTitle(long);
    expect(getComputedStyle(chip).maxWidth).toBe('100%');
    // Once the run it follows has ended with that step.
    const step = (await screen.findByText(/image sha256/, {
      selector: 'td',
    })) as HTMLElement;
    expect(step.closest('table')).toHaveAccessibleName('Timeline');
    expect(getComputedStyle(step).overflowWrap).toBe('anywhere');
  });

  it('does not pass a capture dated ahead of the clock off as fresh and within the RPO', async () => {
    const base = makeReadiness();
    const db = base.captures[0];
    const reason = `Last capture of ${DB} is dated 3h ahead of the backend's clock: one of their clocks is wrong, so its age against the RPO cannot be told`;
    const api = fakeRecoveryApi({
      // As the backend answers it: the age as none yet, and why.
      getReadiness: async () =>
        makeReadiness({
          status: 'at-risk',
          reasons: [reason],
          captures: [
            {
              ...db,
              ageSeconds: 0,
              latest: {
                ...db.latest!,
                createdAt: new Date(Date.now() + 3 * 3600_000).toISOString(),
              },
            },
            base.captures[1],
          ],
        }),
      listRuns: async () => [],
    });
    await renderCard({ api });

    const captures = await screen.findByRole('table', { name: 'Captures' });
    const row = within(captures).getAllByRole('row')[1];
    expect(row).toHaveTextContent(
      /^db3h in the futuredated ahead of the clock0.42s$/,
    );
    expect(row).not.toHaveTextContent(/within RPO/);
  });

  it('shows a succeeded run with its measured RTO against the objective', async () => {
    const api = fakeRecoveryApi({
      listRuns: async () => [makeRun('running')],
      getRun: async () => makeRun('succeeded'),
    });
    await renderCard({ api });

    const outcome = await screen.findByText('Recovery succeeded');
    const alert = outcome.closest('[role="alert"]') as HTMLElement;
    expect(alert).toHaveTextContent(
      '2 machines recovered; measured RTO 4m 12s (objective 15m).',
    );
    expect(screen.getByText('Test lab torn down')).toBeInTheDocument();
  });

  it('does not say a measured RTO over the objective as the objective itself', async () => {
    const run = makeRun('succeeded', { rtoSeconds: 900.4 });
    const api = fakeRecoveryApi({
      getReadiness: async () =>
        makeReadiness({ status: 'at-risk', lastRun: run }),
      listRuns: async () => [],
    });
    await renderCard({ api });
    expect(await screen.findByTestId('last-run')).toHaveTextContent(
      /measured RTO 15m 0.4s vs objective 15m \(exceeded\)/,
    );
  });

  it('shows a failed run naming the machine, the probe and why, with its log tail', async () => {
    const api = fakeRecoveryApi({
      getReadiness: async () => makeReadiness({ status: 'not-recoverable' }),
      listRuns: async () => [makeRun('running')],
      getRun: async () => makeRun('failed'),
    });
    await renderCard({ api });

    const outcome = await screen.findByText('Recovery failed');
    const alert = outcome.closest('[role="alert"]') as HTMLElement;
    expect(alert).toHaveTextContent(
      'Machine web-1 failed probe http:80/healthz: no answer within 60s',
    );
    expect(alert).not.toHaveTextContent(`${WEB} failed`);
    expect(within(alert).getByLabelText('Log tail')).toHaveTextContent(
      'nginx: [emerg] host not found in upstream "db:5432"',
    );
    // The machine's failure and the run's, in the same words: one line of the timeline.
    const timeline = screen.getByRole('table', { name: 'Timeline' });
    expect(
      within(timeline).getAllByText(`${WEB} failed: no answer within 60s`),
    ).toHaveLength(1);
    // "Error": the icon's title, which marks the step to a screen reader.
    expect(within(timeline).getAllByRole('row').at(-1)).toHaveTextContent(
      `web-1Error${WEB} failed: no answer within 60s`,
    );
  });

  it('names the machine and the probe once when the failure already says them', async () => {
    const reason =
      'probe http:80/healthz did not pass within 60 s: connection refused';
    const failed = makeRun('failed');
    const run = {
      ...failed,
      error: { ...failed.error!, message: `${WEB} failed: ${reason}` },
      machines: failed.machines.map(m =>
        m.machineRef === WEB ? { ...m, message: reason } : m,
      ),
    };
    const api = fakeRecoveryApi({
      getReadiness: async () =>
        makeReadiness({ status: 'not-recoverable', lastRun: run }),
      listRuns: async () => [makeRun('running')],
      getRun: async () => run,
    });
    await renderCard({ api });

    const outcome = await screen.findByText('Recovery failed');
    expect(outcome.closest('[role="alert"]')).toHaveTextContent(
      `Recovery failedMachine web-1 failed: ${reason}`,
    );
    expect(screen.getByTestId('last-run')).toHaveTextContent(
      new RegExp(`ago — Machine web-1 failed: ${reason} · View run$`),
    );
  });

  it("names the run of another entity that covered this one's machines", async () => {
    const siteRun = makeRun('succeeded', {
      id: 'run-9',
      entityRef: 'system:default/demo-site',
    });
    const api = fakeRecoveryApi({
      getReadiness: async () => makeReadiness({ lastRun: siteRun }),
    });
    await renderCard({ api });
    const lastRun = await screen.findByTestId('last-run');
    expect(lastRun).toHaveTextContent(
      /measured RTO 4m 12s vs objective 15m \(in the test recovery of demo-site, which booted and probed all of its machines\) · View run$/,
    );
  });

  it('calls a last run that was a failover a failover, not a test recovery', async () => {
    const failover = makeRun('succeeded', {
      id: 'run-9',
      mode: 'failover',
      entityRef: 'system:default/demo-site',
    });
    const api = fakeRecoveryApi({
      getReadiness: async () => makeReadiness({ lastRun: failover }),
    });
    await renderCard({ api });
    const section = await screen.findByRole('region', {
      name: 'Last failover',
    });
    expect(within(section).getByTestId('last-run')).toHaveTextContent(
      /measured RTO 4m 12s vs objective 15m \(in the failover of demo-site, which booted and probed all of its machines\) · View run$/,
    );
    expect(
      screen.queryByRole('region', { name: 'Last test recovery' }),
    ).toBeNull();
    expect(section).not.toHaveTextContent(/test recovery/);
  });

  it('shows a last run of an entity the catalog hides only as readiness gives it: outcome and the machine, no entity', async () => {
    // What the backend sends in place of a run the caller may not see (HiddenRun).
    const hidden = {
      mode: 'test' as const,
      status: 'failed' as const,
      createdAt: new Date(Date.now() - 3_600_000).toISOString(),
      finishedAt: new Date(Date.now() - 3_000_000).toISOString(),
      error: {
        machineRef: 'resource:default/web-1',
        message:
          'resource:default/web-1 failed (in a run of an entity the catalog does not show you: its details are left out)',
      },
    };
    const api = fakeRecoveryApi({
      getReadiness: async () =>
        makeReadiness({ status: 'not-recoverable', lastRun: hidden }),
    });
    await renderCard({ api });
    const lastRun = await screen.findByTestId('last-run');
    expect(lastRun).toHaveTextContent(
      /ago — resource:default\/web-1 failed \(in a run of an entity the catalog does not show you: its details are left out\) \(in the test recovery of an entity the catalog does not show you\)$/,
    );
  });

  it('does not say a failed run of a containing system booted all of its machines', async () => {
    const siteRun = makeRun('failed', {
      id: 'run-9',
      entityRef: 'system:default/demo-site',
    });
    const api = fakeRecoveryApi({
      getReadiness: async () =>
        makeReadiness({ status: 'not-recoverable', lastRun: siteRun }),
    });
    await renderCard({ api });
    const lastRun = await screen.findByTestId('last-run');
    expect(lastRun).toHaveTextContent(
      /Machine web-1 failed probe http:80\/healthz: no answer within 60s \(in the test recovery of demo-site\) · View run$/,
    );
    expect(lastRun).not.toHaveTextContent(/booted/);
  });

  it('says no finished run covers the plan, not that none was ever run, when there is no last run', async () => {
    const api = fakeRecoveryApi({
      getReadiness: async () =>
        makeReadiness({ status: 'unknown', lastRun: undefined }),
    });
    await renderCard({ api });
    const section = await screen.findByRole('region', {
      name: 'Last test recovery',
    });
    // Readiness leaves the last run out both when none was run and when none counts for
    // this plan (all interrupted, or the plan gained a machine since).
    expect(section).toHaveTextContent(
      'No finished test recovery covers the current boot plan',
    );
    expect(section).not.toHaveTextContent(/has been run yet/);
  });

  it('blames no machine for an interrupted run', async () => {
    const interrupted = 'Interrupted: the backend is shutting down';
    const run = makeRun('failed', {
      status: 'interrupted',
      error: { message: interrupted },
      machines: [
        {
          machineRef: DB,
          wave: 0,
          phase: 'interrupted',
          restoreStartedAt: '2024-05-01T10:00:01Z',
          finishedAt: '2024-05-01T10:00:05Z',
          message: interrupted,
        },
        { machineRef: WEB, wave: 1, phase: 'skipped' },
      ],
    });
    const api = fakeRecoveryApi({
      listRuns: async () => [makeRun('running')],
      getRun: async () => run,
    });
    await renderCard({ api });

    // Interrupted, not failed: it says nothing of the entity's recoverability.
    const outcome = await screen.findByText('Test recovery interrupted');
    expect(outcome.closest('[role="alert"]')).toHaveTextContent(
      'Test recovery interruptedThe backend is shutting down. An interrupted run does not count for readiness',
    );
    expect(outcome.closest('[role="alert"]')).not.toHaveTextContent(/Machine/);
    expect(screen.getByTestId('run-machine-db')).toHaveTextContent(
      'Interrupted',
    );
    expect(screen.getByTestId('run-machine-web-1')).toHaveTextContent(
      'Not started',
    );
  });

  it('says the run it followed was preempted by a failover, and follows that failover', async () => {
    const message =
      'Interrupted: preempted by failover run-7 of system:default/site';
    const preempted = makeRun('failed', {
      status: 'interrupted',
      error: { message },
    });
    const failover = makeRun('running', {
      id: 'run-7',
      mode: 'failover',
      entityRef: 'system:default/site',
    });
    let checks = 0;
    const api = fakeRecoveryApi({
      // web's own run on load; the failover once that run has ended.
      listRuns: async () =>
        ++checks === 1 ? [makeRun('running')] : [failover],
      getRun: async id => (id === 'run-7' ? failover : preempted),
    });
    await renderCard({ api });

    expect(
      await screen.findByLabelText('Failover of system:site in progress'),
    ).toBeInTheDocument();
    const note = screen.getByText(/was interrupted/).closest('[role="alert"]');
    expect(note).toHaveTextContent(
      'The test recovery started 2024-05-01 10:00:01 UTC was interrupted: Preempted by failover run-7 of system:default/site. It does not count for readiness',
    );
    expect(
      screen.getByRole('button', { name: /failover running/i }),
    ).toBeDisabled();
    // Not promised a test recovery once it ends: what a failover boots stays on the host.
    const busy = screen
      .getByText(/is busy with a failover of system:site/)
      .closest('[role="alert"]');
    expect(busy).toHaveTextContent(
      'A failover keeps the machines it boots on the host',
    );
    expect(busy).not.toHaveTextContent(
      'A test recovery can start once it has finished',
    );

    await userEvent.click(
      within(note as HTMLElement).getByRole('button', { name: 'Close' }),
    );
    expect(screen.queryByText(/was interrupted/)).toBeNull();
  });

  it('shows a machine a failed run never started as not started, not waiting', async () => {
    const run = makeRun('failed', {
      error: {
        machineRef: DB,
        message: `${DB} failed: stopped with exit code 1`,
      },
      machines: [
        {
          machineRef: DB,
          wave: 0,
          phase: 'failed',
          restoreStartedAt: '2024-05-01T10:00:01Z',
          restoredAt: '2024-05-01T10:00:13Z',
          startedAt: '2024-05-01T10:00:14Z',
          finishedAt: '2024-05-01T10:00:20Z',
          message: 'stopped with exit code 1',
        },
        { machineRef: WEB, wave: 1, phase: 'skipped' },
      ],
    });
    const api = fakeRecoveryApi({
      listRuns: async () => [makeRun('running')],
      getRun: async () => run,
    });
    await renderCard({ api });

    await screen.findByText('Recovery failed');
    const webRow = screen.getByTestId('run-machine-web-1');
    expect(webRow).toHaveTextContent('Not started');
    expect(webRow).not.toHaveTextContent('Waiting');
    expect(screen.getByTestId('run-machine-db')).toHaveTextContent('Failed');
  });

  it('summarises a failed last run without a live run', async () => {
    const api = fakeRecoveryApi({
      getReadiness: async () =>
        makeReadiness({
          status: 'not-recoverable',
          lastRun: makeRun('failed'),
        }),
      // The entity's newest run is that finished one: nothing to follow.
      listRuns: async () => [makeRun('failed')],
    });
    await renderCard({ api });
    expect(await screen.findByTestId('last-run')).toHaveTextContent(
      /Failed.*Machine web-1 failed probe http:80\/healthz: no answer within 60s/,
    );
    await waitFor(() => expect(api.listRuns).toHaveBeenCalledTimes(1));
    expect(
      screen.getByRole('button', { name: /run test recovery/i }),
    ).toBeEnabled();
    expect(screen.queryByRole('region', { name: /^Test recovery/ })).toBeNull();
    expect(api.getRun).not.toHaveBeenCalled();
  });

  it('starts a test recovery and polls it until it is done', async () => {
    const sequence = [
      makeRun('running'),
      makeRun('running'),
      makeRun('succeeded'),
    ];
    let calls = 0;
    const api = fakeRecoveryApi({
      startRun: async () => makeRun('pending'),
      getRun: async () => sequence[Math.min(calls++, sequence.length - 1)],
    });
    await renderCard({ api });

    await pressRunTestRecovery();

    expect(api.startRun).toHaveBeenCalledWith({
      entityRef: 'component:default/web',
      mode: 'test',
    });
    expect(await screen.findByText('Recovery succeeded')).toBeInTheDocument();
    expect(api.getRun).toHaveBeenCalledTimes(3);
    expect(api.getRun).toHaveBeenCalledWith('run-1');
    // Readiness is reloaded once the run is over, and polling stops.
    await waitFor(() => expect(api.getReadiness).toHaveBeenCalledTimes(2));
    await new Promise(r => setTimeout(r, 50));
    expect(api.getRun).toHaveBeenCalledTimes(3);
    expect(
      screen.getByRole('button', { name: /run test recovery/i }),
    ).toBeEnabled();
  });

  it('keeps polling a run it lost contact with, backing off, until the run answers', async () => {
    // Fake time: the backoff would otherwise take seconds of real time.
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      let calls = 0;
      const api = fakeRecoveryApi({
        startRun: async () => makeRun('pending'),
        getRun: async () => {
          calls += 1;
          if (calls <= 40) throw new Error('connection reset');
          return makeRun('succeeded');
        },
      });
      await renderCard({ api });
      await pressRunTestRecovery();
      expect(
        await screen.findByText(
          'Lost contact with the run: connection reset. Retrying…',
        ),
      ).toBeInTheDocument();

      // Backing off: polls every 100 ms (the shortest interval taken) would make ~30 calls in
      // 3 s; it makes far fewer.
      await act(() => vi.advanceTimersByTimeAsync(3000));
      expect(calls).toBeLessThan(10);

      // Past the 30 failures it used to give up after, it still gets through (40 failures,
      // backing off to 3 s apart: under 2 minutes).
      await act(() => vi.advanceTimersByTimeAsync(120_000));
      expect(await screen.findByText('Recovery succeeded')).toBeInTheDocument();
      expect(api.getRun).toHaveBeenCalledTimes(41);
      expect(screen.queryByText(/Lost contact with the run/)).toBeNull();
    } finally {
      vi.useRealTimers();
    }
  });

  it('sends another poll when one is left unanswered, rather than reading "in progress" for good', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      // A poll whose connection dropped (a VPN, a laptop's sleep) is never answered nor refused.
      let calls = 0;
      const api = fakeRecoveryApi({
        listRuns: async () => [makeRun('running')],
        getRun: async () => {
          calls += 1;
          return calls === 1
            ? new Promise<never>(() => {})
            : makeRun('succeeded');
        },
      });
      await renderCard({ api });
      await screen.findByText(/Test recovery in progress on/);

      // Polled every 100 ms (the shortest interval taken), a poll left 30 intervals unanswered
      // counts as failed, and the next one is sent.
      await act(() => vi.advanceTimersByTimeAsync(3100));
      expect(
        screen.getByText(
          'Lost contact with the run: No answer from the backend within 3s. Retrying…',
        ),
      ).toBeInTheDocument();
      await act(() => vi.advanceTimersByTimeAsync(200));
      expect(await screen.findByText('Recovery succeeded')).toBeInTheDocument();
      expect(api.getRun).toHaveBeenCalledTimes(2);
      expect(screen.queryByText(/Lost contact with the run/)).toBeNull();
    } finally {
      vi.useRealTimers();
    }
  });

  it('keeps the finished run and the readiness on screen when the reload after it fails, with a Retry', async () => {
    let readinessLoads = 0;
    const api = fakeRecoveryApi({
      getReadiness: async () => {
        readinessLoads += 1;
        if (readinessLoads === 2) throw new Error('Bad Gateway');
        return makeReadiness({
          status: readinessLoads === 1 ? 'at-risk' : 'not-recoverable',
        });
      },
      startRun: async () => makeRun('pending'),
      getRun: async () => makeRun('failed'),
    });
    await renderCard({ api });
    await pressRunTestRecovery();

    // The reload once the run has failed does not get through.
    const warning = await screen.findByText(
      /Could not reload readiness: Bad Gateway/,
    );
    const alert = warning.closest('[role="alert"]') as HTMLElement;
    expect(alert).toHaveTextContent('Showing what was last loaded.');
    // The run's outcome, probe and log tail, the readiness and the actions are all still there.
    expect(screen.getByText('Recovery failed')).toBeInTheDocument();
    expect(screen.getByLabelText('Log tail')).toHaveTextContent(
      'host not found in upstream',
    );
    expect(screen.getByText('At risk')).toBeInTheDocument();
    expect(
      screen.getByRole('button', { name: /run test recovery/i }),
    ).toBeEnabled();
    expect(screen.getByRole('button', { name: /capture now/i })).toBeEnabled();

    await userEvent.click(
      within(alert).getByRole('button', { name: 'Retry loading readiness' }),
    );
    expect(await screen.findByText('Not recoverable')).toBeInTheDocument();
    expect(screen.queryByText(/Could not reload readiness/)).toBeNull();
    expect(screen.getByText('Recovery failed')).toBeInTheDocument();
    expect(api.getReadiness).toHaveBeenCalledTimes(3);
  });

  it('offers a Retry when readiness cannot be loaded at all', async () => {
    let readinessLoads = 0;
    const api = fakeRecoveryApi({
      getReadiness: async () => {
        readinessLoads += 1;
        if (readinessLoads === 1) throw new Error('Service Unavailable');
        return makeReadiness();
      },
    });
    await renderCard({ api });
    expect(
      await screen.findByText('Could not load readiness: Service Unavailable'),
    ).toBeInTheDocument();
    expect(
      screen.queryByRole('button', { name: /run test recovery/i }),
    ).toBeNull();

    await userEvent.click(
      screen.getByRole('button', { name: 'Retry loading readiness' }),
    );
    expect(await screen.findByText('Ready')).toBeInTheDocument();
    expect(screen.queryByTestId('load-error')).toBeNull();
    expect(
      screen.getByRole('button', { name: /run test recovery/i }),
    ).toBeInTheDocument();
  });

  it('follows the run of a containing system that the host is busy with when a start is refused', async () => {
    // The nightly check of the site holds the host; the card's check on load saw only web's runs.
    const siteRun = (stage: 'running' | 'succeeded') =>
      makeRun(stage, {
        id: 'run-9',
        entityRef: 'system:default/demo-site',
        trigger: 'schedule',
      });
    let polls = 0;
    const api = fakeRecoveryApi({
      startRun: async () => {
        throw await conflictError(
          "Hypervisor host 'recovery-1' is busy with run run-9 of system:default/demo-site",
          { runId: 'run-9', entityRef: 'system:default/demo-site' },
        );
      },
      getRun: async () =>
        ++polls < 3 ? siteRun('running') : siteRun('succeeded'),
    });
    await renderCard({ api });
    await pressRunTestRecovery();

    const section = await screen.findByLabelText(
      'Test recovery of system:demo-site in progress',
    );
    expect(api.getRun).toHaveBeenCalledWith('run-9');
    expect(section).toHaveTextContent(
      'Hypervisor host recovery-1 is busy with a test recovery of system:demo-site (started 2024-05-01 10:00:01 UTC): following it here.',
    );
    expect(section).toHaveTextContent('1 of 2 machines ready');
    expect(
      screen.getByRole('button', { name: /test recovery running/i }),
    ).toBeDisabled();
    expect(screen.queryByText(/Could not start the test recovery/)).toBeNull();

    // Once the site's run is over, its result stays (not held to web's RTO) and web can start.
    const done = await screen.findByLabelText(
      'Test recovery of system:demo-site',
    );
    expect(done).toHaveTextContent(
      '2 machines recovered; measured RTO 4m 12s.',
    );
    expect(done).not.toHaveTextContent(/is busy with/);
    expect(
      screen.getByRole('button', { name: /run test recovery/i }),
    ).toBeEnabled();
    expect(api.getRun).toHaveBeenCalledTimes(3);
  });

  it('reports a conflict it cannot read a run from, and follows the entity run it finds in progress', async () => {
    let checks = 0;
    const api = fakeRecoveryApi({
      startRun: async () => {
        throw await conflictError('Hypervisor host recovery-1 is occupied');
      },
      // Nothing in progress on load; a run of web by the time the start is refused.
      listRuns: async () =>
        ++checks === 1 ? [] : [makeRun('running', { id: 'run-5' })],
      getRun: async () => makeRun('running', { id: 'run-5' }),
    });
    await renderCard({ api });
    await pressRunTestRecovery();

    const section = await screen.findByLabelText('Test recovery in progress');
    expect(section).toHaveTextContent(
      /Hypervisor host recovery-1 is busy with a test recovery of web \(started .*\): following it here\./,
    );
    expect(api.listRuns).toHaveBeenCalledTimes(2);
    await waitFor(() => expect(api.getRun).toHaveBeenCalledWith('run-5'));
  });

  it('on load, notices a run of another entity holding the host, follows it, and offers a run once it ends', async () => {
    // The nightly check of the site runs while someone opens web's page.
    const siteRun = (stage: 'running' | 'succeeded') =>
      makeRun(stage, {
        id: 'run-9',
        entityRef: 'system:default/demo-site',
        trigger: 'schedule',
      });
    let polls = 0;
    let checks = 0;
    const api = fakeRecoveryApi({
      listRuns: async () => (++checks === 1 ? [siteRun('running')] : []),
      getRun: async () =>
        ++polls < 3 ? siteRun('running') : siteRun('succeeded'),
    });
    await renderCard({ api });

    const section = await screen.findByLabelText(
      'Test recovery of system:demo-site in progress',
    );
    expect(api.listRuns).toHaveBeenCalledWith({ active: true });
    expect(section).toHaveTextContent(
      'Hypervisor host recovery-1 is busy with a test recovery of system:demo-site (started 2024-05-01 10:00:01 UTC): following it here.',
    );
    expect(
      screen.getByRole('button', { name: /test recovery running/i }),
    ).toBeDisabled();
    expect(api.startRun).not.toHaveBeenCalled();

    // Once it ends, the card asks again; nothing else holds the host, so web can start.
    await screen.findByLabelText('Test recovery of system:demo-site');
    await waitFor(() => expect(api.listRuns).toHaveBeenCalledTimes(2));
    await waitFor(() =>
      expect(
        screen.getByRole('button', { name: /run test recovery/i }),
      ).toBeEnabled(),
    );
    expect(screen.queryByText(/is busy with/)).toBeNull();
  });

  it('checks again for a run in progress on Retry after the check failed, and follows the one it finds', async () => {
    // The backend was briefly unreachable as the page loaded; meanwhile the site's nightly check holds the host.
    const siteRun = makeRun('running', {
      id: 'run-9',
      entityRef: 'system:default/demo-site',
      trigger: 'schedule',
    });
    let checks = 0;
    const api = fakeRecoveryApi({
      listRuns: async () => {
        checks += 1;
        if (checks === 1) throw new Error('Service Unavailable');
        return [siteRun];
      },
      getRun: async () => siteRun,
    });
    await renderCard({ api });

    const warning = await screen.findByText(
      /Could not check for a recovery run in progress/,
    );
    const alert = warning.closest('[role="alert"]') as HTMLElement;
    await userEvent.click(
      within(alert).getByRole('button', {
        name: 'Retry checking for a run in progress',
      }),
    );

    const section = await screen.findByLabelText(
      'Test recovery of system:demo-site in progress',
    );
    expect(section).toHaveTextContent(
      /is busy with a test recovery of system:demo-site/,
    );
    expect(
      screen.queryByText(/Could not check for a recovery run in progress/),
    ).toBeNull();
    expect(
      screen.getByRole('button', { name: /test recovery running/i }),
    ).toBeDisabled();
    expect(api.listRuns).toHaveBeenCalledTimes(2);
  });

  it('says which load each Retry retries when the readiness reload and the run check both fail', async () => {
    let readinessLoads = 0;
    const api = fakeRecoveryApi({
      getReadiness: async () => {
        readinessLoads += 1;
        if (readinessLoads > 1) throw new Error('Bad Gateway');
        return makeReadiness();
      },
      listRuns: async () => {
        throw new Error('Service Unavailable');
      },
    });
    await renderCard({ api });
    await screen.findByText(/Could not check for a recovery run in progress/);
    // The capture reloads the readiness, which fails: two warnings, each with its own Retry.
    await userEvent.click(
      await screen.findByRole('button', { name: /capture now/i }),
    );
    await screen.findByText(/Could not reload readiness: Bad Gateway/);
    const names = screen
      .getAllByRole('button', { name: /^Retry/ })
      .map(b => b.textContent);
    expect(names.sort()).toEqual([
      'Retry checking for a run in progress',
      'Retry loading readiness',
    ]);
  });

  it("gives its headings the levels under the entity page's h1, none skipped", async () => {
    // subtitle2 made each section an h6 under a card title that was no heading at all.
    const own = makeRun('running', { id: 'run-7' });
    const api = fakeRecoveryApi({
      listRuns: async () => [own],
      getRun: async () => own,
    });
    await renderCard({ api });
    await screen.findByLabelText('Test recovery in progress');
    const headings = screen
      .getAllByRole('heading')
      .map(h => `${h.tagName} ${h.textContent}`);
    expect(headings).toEqual([
      'H2 Recovery readiness',
      'H3 Captures',
      'H3 Last test recovery',
      'H3 Boot plan',
      'H3 Test recovery in progress',
      'H4 Machines',
      'H4 Timeline',
    ]);
  });

  it("follows the entity's own active run before a newer one of another entity", async () => {
    const own = makeRun('running', { id: 'run-7' });
    const site = makeRun('running', {
      id: 'run-9',
      entityRef: 'system:default/demo-site',
    });
    const api = fakeRecoveryApi({
      // Newest first: the site's run, then web's own (the host of an older configuration).
      listRuns: async () => [site, own],
      getRun: async () => own,
    });
    await renderCard({ api });
    expect(
      await screen.findByLabelText('Test recovery in progress'),
    ).not.toHaveTextContent(/is busy with/);
    await waitFor(() => expect(api.getRun).toHaveBeenCalledWith('run-7'));
    expect(api.getRun).not.toHaveBeenCalledWith('run-9');
  });

  it('after its own run ends, notices a run of another entity admitted meanwhile', async () => {
    let checks = 0;
    const siteRun = makeRun('pending', {
      id: 'run-9',
      entityRef: 'system:default/demo-site',
      trigger: 'schedule',
    });
    const api = fakeRecoveryApi({
      listRuns: async () => (++checks === 1 ? [] : [siteRun]),
      startRun: async () => makeRun('pending'),
      getRun: async runId =>
        runId === 'run-1' ? makeRun('succeeded') : siteRun,
    });
    await renderCard({ api });
    await pressRunTestRecovery();

    const section = await screen.findByLabelText(
      'Test recovery of system:demo-site in progress',
    );
    expect(section).toHaveTextContent(
      /Hypervisor host recovery-1 is busy with a test recovery of system:demo-site \(started .*\)/,
    );
    expect(api.listRuns).toHaveBeenCalledTimes(2);
    expect(
      screen.getByRole('button', { name: /test recovery running/i }),
    ).toBeDisabled();
    // Web's own run ended: readiness shows it, the live section follows the site's.
    await waitFor(() => expect(api.getRun).toHaveBeenCalledWith('run-9'));
  });

  it('says how many earlier steps of a long run it leaves out of the timeline', async () => {
    const run = makeRun('running');
    const long = {
      ...run,
      steps: Array.from({ length: 20 }, (_, i) => ({
        at: run.createdAt,
        level: 'info' as const,
        message: `Step ${i + 1}`,
      })),
    };
    const api = fakeRecoveryApi({
      listRuns: async () => [long],
      getRun: async () => long,
    });
    await renderCard({ api });

    const section = await screen.findByRole('region', {
      name: 'Test recovery in progress',
    });
    // The card shows the last 12 steps.
    expect(section).toHaveTextContent('8 earlier steps not shown.');
    const timeline = within(section).getByRole('table', { name: 'Timeline' });
    expect(within(timeline).queryByText('Step 8')).toBeNull();
    expect(within(timeline).getByText('Step 9')).toBeInTheDocument();
    await userEvent.click(
      within(section).getByRole('button', { name: 'Show all 20 steps' }),
    );
    expect(within(timeline).getByText('Step 1')).toBeInTheDocument();
    expect(section).not.toHaveTextContent(/not shown/);
  });

  it('shows a warning step of the timeline as a warning', async () => {
    const run = makeRun('running');
    const warned = {
      ...run,
      steps: [
        ...run.steps,
        {
          at: run.steps[0].at,
          machineRef: DB,
          level: 'warning' as const,
          message:
            "Adapted, without production's addresses: network prod: production subnet 172.29.10.0/24 is in use",
        },
      ],
    };
    const api = fakeRecoveryApi({
      listRuns: async () => [warned],
      getRun: async () => warned,
    });
    await renderCard({ api });

    const timeline = await screen.findByRole('table', { name: 'Timeline' });
    const warningRow = within(timeline)
      .getByText(/Adapted, without production's addresses/)
      .closest('tr') as HTMLElement;
    expect(
      within(warningRow).getByRole('img', { name: 'Warning' }),
    ).toBeInTheDocument();
    // Only the warning is marked: an info step has no icon.
    const infoRow = within(timeline)
      .getByText('Run admitted')
      .closest('tr') as HTMLElement;
    expect(within(infoRow).queryByRole('img')).toBeNull();
  });

  it('reports a conflict as it came when no run in progress can be found', async () => {
    const api = fakeRecoveryApi({
      startRun: async () => {
        throw await conflictError(
          "Hypervisor host 'recovery-1' is busy with run run-9 of system:default/demo-site",
          { runId: 'run-9', entityRef: 'system:default/demo-site' },
        );
      },
      // It finished in the meantime.
      getRun: async () => makeRun('succeeded', { id: 'run-9' }),
    });
    await renderCard({ api });
    await pressRunTestRecovery();
    expect(
      await screen.findByText(
        "Could not start the test recovery: Hypervisor host 'recovery-1' is busy with run run-9 of system:default/demo-site",
      ),
    ).toBeInTheDocument();
    expect(api.getRun).toHaveBeenCalledWith('run-9');
    expect(screen.queryByRole('region', { name: /^Test recovery/ })).toBeNull();
    expect(
      screen.getByRole('button', { name: /run test recovery/i }),
    ).toBeEnabled();
  });

  it('reports a machine never captured without looking for a run', async () => {
    const api = fakeRecoveryApi({
      startRun: async () => {
        throw await conflictError(
          'No capture of resource:default/web-1 yet: capture first (POST /captures)',
          { name: 'ConflictError' },
        );
      },
    });
    await renderCard({ api });
    await pressRunTestRecovery();
    expect(
      await screen.findByText(
        'Could not start the test recovery: No capture of resource:default/web-1 yet: capture first (POST /captures)',
      ),
    ).toBeInTheDocument();
    expect(api.listRuns).toHaveBeenCalledTimes(1); // the check on load only
    expect(api.getRun).not.toHaveBeenCalled();
  });

  it('shows a refusal beside a kept failover in full, breaking its long label rather than overflowing the card', async () => {
    const message =
      "component:default/web cannot be test-recovered on recovery-1 now: failover run-7 of system:default/site (succeeded at 2024-05-01T09:00:00.000Z) keeps 3 machines and 1 network there, serving production with production's subnet 10.0.0.0/24; this test recovery's isolated lab cannot have those subnets beside them, so it would not emulate production. Once production no longer needs them, release failover run-7 (recovery release run-7, or POST /runs/run-7/release), or else remove what it kept there by hand (everything labelled recovery.backstage-recovery.io/run-id=run-7), and start the run again; or recover onto another hypervisor host";
    const api = fakeRecoveryApi({
      startRun: async () => {
        throw await conflictError(message, { name: 'ConflictError' });
      },
    });
    await renderCard({ api });
    await pressRunTestRecovery();
    const text = await screen.findByText(
      `Could not start the test recovery: ${message}`,
    );
    // Not a busy host: nothing to follow, and the button stays for a retry once it is released.
    expect(api.getRun).not.toHaveBeenCalled();
    expect(
      screen.getByRole('button', { name: /run test recovery/i }),
    ).toBeEnabled();
    expect(text).toHaveClass('MuiAlert-message');
    expect(getComputedStyle(text).overflowWrap).toBe('anywhere');
    expect(getComputedStyle(text).minWidth).toBe('0');
  });

  it('reports a refused start', async () => {
    const api = fakeRecoveryApi({
      startRun: async () => {
        throw new Error('Hypervisor host recovery-1 is busy with run run-0');
      },
    });
    await renderCard({ api });
    await pressRunTestRecovery();
    expect(
      await screen.findByText(
        'Could not start the test recovery: Hypervisor host recovery-1 is busy with run run-0',
      ),
    ).toBeInTheDocument();
  });

  it('tells onReadinessChange of each readiness once, however often the page around it renders', async () => {
    const told: Readiness[] = [];
    // A page that passes a new callback on each render, as an inline arrow does.
    const Page = () => {
      const [, setRenders] = useState(0);
      return (
        <>
          <button onClick={() => setRenders(n => n + 1)}>
            Render the page again
          </button>
          <EntityRecoveryCard
            pollIntervalMs={10}
            onReadinessChange={r => told.push(r)}
          />
        </>
      );
    };
    const api = fakeRecoveryApi();
    await renderWithApis(<Page />, { api });
    await waitFor(() => expect(told).toHaveLength(1));

    const again = screen.getByRole('button', { name: 'Render the page again' });
    await userEvent.click(again);
    await userEvent.click(again);
    expect(told).toHaveLength(1);

    // A reload is another readiness: one as each of the 2 machines is captured.
    await userEvent.click(
      await screen.findByRole('button', { name: /capture now/i }),
    );
    await waitFor(() => expect(api.getReadiness).toHaveBeenCalledTimes(3));
    await waitFor(() => expect(told).toHaveLength(3));
  });

  it("captures now a machine at a time in the plan's order, showing which and how far along, and reloads readiness", async () => {
    let release!: () => void;
    const held = new Promise<void>(ok => (release = ok));
    const api = fakeRecoveryApi();
    const answer = api.captureNow.getMockImplementation()!;
    api.captureNow.mockImplementation(async (entityRef, machineRef) => {
      if (machineRef === DB) await held;
      return answer(entityRef, machineRef);
    });
    await renderCard({ api });
    const button = await screen.findByRole('button', { name: /capture now/i });
    await waitFor(() => expect(button).toBeEnabled());
    await userEvent.click(button);
    expect(
      await screen.findByRole('button', { name: 'Capturing db (1 of 2)…' }),
    ).toBeDisabled();
    release();
    expect(await screen.findByText('Captured 2 machines.')).toBeInTheDocument();
    // Each with a signal (the card stops its polling once it unmounts), and hearing its progress.
    const polled = {
      signal: expect.any(AbortSignal),
      onProgress: expect.any(Function),
    };
    expect(api.captureNow.mock.calls).toEqual([
      ['component:default/web', DB, polled],
      ['component:default/web', WEB, polled],
    ]);
    // Reloaded as each machine was captured: its "Last capture" moves on then.
    await waitFor(() => expect(api.getReadiness).toHaveBeenCalledTimes(3));
    expect(screen.getByRole('button', { name: /capture now/i })).toBeEnabled();
  });

  it('captures the machines of an entity whose plan a dependency cycle stops, and runs nothing', async () => {
    const reason =
      'Dependency cycle: component:default/web -> component:default/db -> component:default/web';
    const api = fakeRecoveryApi({
      getReadiness: async () =>
        makeReadiness({
          status: 'not-recoverable',
          reasons: [reason],
          plan: undefined,
          position: undefined,
        }),
      // As the backend answers while the cycle stands.
      getBootPlan: async () => {
        throw new Error(reason);
      },
    });
    await renderCard({ api });
    const button = await screen.findByRole('button', { name: /capture now/i });
    await waitFor(() => expect(button).toBeEnabled());
    expect(
      screen.getByRole('button', { name: /run test recovery/i }),
    ).toBeDisabled();

    await userEvent.click(button);
    expect(await screen.findByText('Captured 2 machines.')).toBeInTheDocument();
    // Each with a signal (the card stops its polling once it unmounts), and hearing its progress.
    const polled = {
      signal: expect.any(AbortSignal),
      onProgress: expect.any(Function),
    };
    expect(api.captureNow.mock.calls).toEqual([
      ['component:default/web', DB, polled],
      ['component:default/web', WEB, polled],
    ]);
    expect(api.getBootPlan).not.toHaveBeenCalled();
    await waitFor(() => expect(api.getReadiness).toHaveBeenCalledTimes(3));
  });

  it('says which machine a capture failed on and that those before it are kept, and reloads readiness', async () => {
    const api = fakeRecoveryApi();
    const answer = api.captureNow.getMockImplementation()!;
    api.captureNow.mockImplementation(async (entityRef, machineRef) => {
      if (machineRef === WEB)
        throw new Error(
          'capture of resource:default/web-1 failed: no container "web-1" on engine primary',
        );
      return answer(entityRef, machineRef);
    });
    await renderCard({ api });
    const button = await screen.findByRole('button', { name: /capture now/i });
    await waitFor(() => expect(button).toBeEnabled());
    await userEvent.click(button);
    expect(
      await screen.findByText(
        'Capture failed: capture of resource:default/web-1 failed: no container "web-1" on engine primary. Captured, and kept: db.',
      ),
    ).toBeInTheDocument();
    await waitFor(() => expect(api.getReadiness).toHaveBeenCalledTimes(2));
  });

  it('says each machine not captured in one message, naming those kept once, where several failed', async () => {
    const FILES = 'resource:default/files-1';
    const api = fakeRecoveryApi({
      getBootPlan: async () => ({
        ...plan,
        waves: [[DB], [WEB], [FILES]],
        problems: [],
      }),
    });
    const answer = api.captureNow.getMockImplementation()!;
    api.captureNow.mockImplementation(async (entityRef, machineRef) => {
      if (machineRef === DB) return answer(entityRef, machineRef);
      // As the client throws the backend's answer: its words in the body.
      const message = `capture of ${machineRef} failed; caused by EngineFailedError: engine primary answered HTTP 500`;
      throw Object.assign(new Error('Request failed with 502 Bad Gateway'), {
        statusCode: 502,
        body: { error: { name: 'EngineFailedError', message } },
      });
    });
    await renderCard({ api });
    const button = await screen.findByRole('button', { name: /capture now/i });
    await waitFor(() => expect(button).toBeEnabled());
    await userEvent.click(button);
    const alert = await screen.findByText(
      /^Capture failed: 2 machines not captured/,
    );
    // The kept machine named once, by the failure's own message: not again after it.
    expect(alert.textContent).toBe(
      'Capture failed: 2 machines not captured: ' +
        `capture of ${WEB} failed; caused by EngineFailedError: engine primary answered HTTP 500; ` +
        `capture of ${FILES} failed; caused by EngineFailedError: engine primary answered HTTP 500 (captured, and kept: ${DB})`,
    );
    await waitFor(() => expect(api.getReadiness).toHaveBeenCalledTimes(2));
  });

  it("says in the backend's words what a refused run would go without where the refusal lists nothing", async () => {
    const api = fakeRecoveryApi();
    api.startRun.mockImplementation(async () => {
      throw await conflictError('ledger is not in the catalog.', {
        name: MISSING_DEPENDENCIES_ERROR_NAME,
      });
    });
    await renderCard({ api });
    const start = await screen.findByRole('button', {
      name: 'Run test recovery',
    });
    await waitFor(() => expect(start).toBeEnabled());
    await userEvent.click(start);
    expect(
      await screen.findByText(
        /The catalog declares dependencies the boot plan cannot include/,
      ),
    ).toHaveTextContent(
      'The catalog declares dependencies the boot plan cannot include: ledger is not in the catalog. A test recovery',
    );
  });

  it('names the dependencies a refused run would go without, and runs without them when asked', async () => {
    const problem =
      'component:default/web dependsOn component:default/ledger, which is not in the catalog: a recovery plan cannot include it';
    const api = fakeRecoveryApi();
    api.startRun.mockImplementation(async request => {
      if (request.acceptMissingDependencies) return makeRun('pending');
      throw await conflictError(
        `component:default/web cannot be recovered as the catalog declares it: ${problem}. Fix the catalog`,
        {
          name: MISSING_DEPENDENCIES_ERROR_NAME,
          missing: [problem],
        },
      );
    });
    await renderCard({ api });
    const start = await screen.findByRole('button', {
      name: 'Run test recovery',
    });
    await waitFor(() => expect(start).toBeEnabled());
    await userEvent.click(start);
    const warning = await screen.findByText(
      /The catalog declares dependencies the boot plan cannot include/,
    );
    expect(warning).toHaveTextContent(problem);
    expect(screen.queryByText(/Could not start the test recovery/)).toBeNull();
    await userEvent.click(
      within(warning.closest('[role="alert"]') as HTMLElement).getByRole(
        'button',
        { name: 'Run without them' },
      ),
    );
    await waitFor(() =>
      expect(api.startRun).toHaveBeenLastCalledWith({
        entityRef: 'component:default/web',
        mode: 'test',
        acceptMissingDependencies: true,
      }),
    );
    await waitFor(() =>
      expect(
        screen.queryByText(/The catalog declares dependencies/),
      ).toBeNull(),
    );
    expect(api.startRun.mock.calls[0]).toEqual([
      { entityRef: 'component:default/web', mode: 'test' },
    ]);
  });
});

describe('EntityRecoveryCard, a request left unanswered', () => {
  // A request whose connection dropped (a VPN, a laptop's sleep) is never answered nor refused.
  const unanswered = () => new Promise<never>(() => {});

  beforeEach(() => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('says a readiness load left unanswered for a minute failed, and loads it again on Retry', async () => {
    const user = userEvent.setup({ advanceTimers: vi.advanceTimersByTime });
    let loads = 0;
    const api = fakeRecoveryApi({
      getReadiness: async () => {
        loads += 1;
        return loads === 1
          ? unanswered()
          : makeReadiness({ status: 'at-risk' });
      },
    });
    await renderCard({ api });
    await act(() => vi.advanceTimersByTimeAsync(60_000));
    expect(
      screen.getByText(
        'Could not load readiness: No answer from the backend within 1m',
      ),
    ).toBeInTheDocument();

    await user.click(
      screen.getByRole('button', { name: 'Retry loading readiness' }),
    );
    expect(await screen.findByText('At risk')).toBeInTheDocument();
    expect(screen.queryByText(/No answer from the backend/)).toBeNull();
    expect(loads).toBe(2);
  });

  it('says a check for a run in progress left unanswered failed, and lets a run start, rather than keep it off for good', async () => {
    const user = userEvent.setup({ advanceTimers: vi.advanceTimersByTime });
    let checks = 0;
    const api = fakeRecoveryApi({
      listRuns: async () => {
        checks += 1;
        return checks === 1 ? unanswered() : [];
      },
    });
    await renderCard({ api });
    const button = await screen.findByRole('button', {
      name: /run test recovery/i,
    });
    // Until the check ends, a run may hold the host: starting one would be refused.
    expect(button).toBeDisabled();

    await act(() => vi.advanceTimersByTimeAsync(60_000));
    const warning = screen.getByText(
      'Could not check for a recovery run in progress: No answer from the backend within 1m',
    );
    expect(button).toBeEnabled();

    const alert = warning.closest('[role="alert"]') as HTMLElement;
    await user.click(
      within(alert).getByRole('button', {
        name: 'Retry checking for a run in progress',
      }),
    );
    await waitFor(() =>
      expect(
        screen.queryByText(/Could not check for a recovery run in progress/),
      ).toBeNull(),
    );
    expect(checks).toBe(2);
    expect(button).toBeEnabled();
  });

  it('reports a refused start when the run it names does not answer, rather than read "running" for good', async () => {
    const user = userEvent.setup({ advanceTimers: vi.advanceTimersByTime });
    const api = fakeRecoveryApi({
      startRun: async () => {
        throw await conflictError(
          "Hypervisor host 'recovery-1' is busy with run run-9 of system:default/demo-site",
          { runId: 'run-9', entityRef: 'system:default/demo-site' },
        );
      },
      getRun: async () => unanswered(),
    });
    await renderCard({ api });
    const button = await screen.findByRole('button', {
      name: /run test recovery/i,
    });
    await waitFor(() => expect(button).toBeEnabled());
    await user.click(button);
    await waitFor(() => expect(api.getRun).toHaveBeenCalledWith('run-9'));
    expect(button).toHaveTextContent('Test recovery running…');

    await act(() => vi.advanceTimersByTimeAsync(60_000));
    expect(
      screen.getByText(
        "Could not start the test recovery: Hypervisor host 'recovery-1' is busy with run run-9 of system:default/demo-site",
      ),
    ).toBeInTheDocument();
    expect(button).toHaveTextContent('Run test recovery');
    expect(button).toBeEnabled();
  });
});
