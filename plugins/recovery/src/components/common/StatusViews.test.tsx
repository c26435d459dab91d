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
        <Status kind="warning">20h old, near RPO 1d</Status>
      </>,
    );
    for (const words of [
      'Not recoverable',
      'Failed',
      'Interrupted',
      'Not started',
      '20h old, near RPO 1d',
    ]) {
      const status = screen.getByText(words);
      expect(isInaccessible(status)).toBe(false);
      // The words name it, not a "Status error" label over them.
      expect(status).not.toHaveAttribute('aria-label');
    }
  });
});
