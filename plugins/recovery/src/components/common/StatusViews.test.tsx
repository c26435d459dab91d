import { isInaccessible, screen } from '@testing-library/react';
import { renderInTestApp } from '@backstage/test-utils';
import {
  PhaseView,
  ReadinessStatusView,
  RunStatusView,
  Status,
} from './StatusViews';

describe('status views', () => {
  it('leave their words to screen readers, which Backstage status components hide', async () => {
    await renderInTestApp(
      <>
        <ReadinessStatusView status="not-recoverable" />
        <RunStatusView status="failed" />
        <RunStatusView status="interrupted" />
        <PhaseView phase="skipped" />
        <PhaseView phase="interrupted" />
        <Status kind="warning">20h old, near RPO 1d</Status>
      </>,
    );
    for (const status of [
      'Not recoverable',
      'Failed',
      'Not started',
      '20h old, near RPO 1d',
    ]
      .map(words => screen.getByText(words))
      // A run interrupted and a machine interrupted.
      .concat(screen.getAllByText('Interrupted'))) {
      expect(isInaccessible(status)).toBe(false);
      // The words name it, not a "Status error" label over them.
      expect(status).not.toHaveAttribute('aria-label');
    }
  });

  it('shows a machine interrupted as its run, grey, not as a failed one', async () => {
    await renderInTestApp(
      <>
        <RunStatusView status="interrupted" />
        <PhaseView phase="interrupted" />
        <PhaseView phase="failed" />
      </>,
    );
    const [run, machine] = screen.getAllByText('Interrupted');
    for (const status of [run, machine]) {
      expect(
        status.querySelector('[data-testid="status-aborted"]'),
      ).not.toBeNull();
    }
    expect(
      screen.getByText('Failed').querySelector('[data-testid="status-error"]'),
    ).not.toBeNull();
  });
});
