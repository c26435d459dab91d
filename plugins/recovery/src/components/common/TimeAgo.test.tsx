import { act, render, screen } from '@testing-library/react';
import { TimeAgo } from './TimeAgo';

describe('TimeAgo', () => {
  afterEach(() => vi.useRealTimers());

  it('says the age again as time passes, with the instant in UTC on hover', () => {
    vi.useFakeTimers({ now: Date.parse('2026-12-01T10:00:00Z') });
    render(<TimeAgo iso="2026-12-01T09:59:58Z" />);
    const age = screen.getByText('just now');
    expect(age.tagName).toBe('TIME');
    expect(age).toHaveAttribute('dateTime', '2026-12-01T09:59:58Z');
    expect(age).toHaveAttribute('title', '2026-12-01 09:59:58 UTC');
    act(() => vi.advanceTimersByTime(2 * 60_000));
    expect(screen.getByText('2m 2s ago')).toBe(age);
  });

  it('does not pass a time dated hours ahead of the clock off as just now', () => {
    // A primary's clock set wrong dated its capture 3 hours ahead: no fresher than any other.
    vi.useFakeTimers({ now: Date.parse('2026-12-01T10:00:00Z') });
    render(<TimeAgo iso="2026-12-01T13:00:00Z" />);
    expect(screen.getByText('3h in the future')).toHaveAttribute(
      'title',
      '2026-12-01 13:00:00 UTC',
    );
  });

  it('shows a dash without a time', () => {
    render(<TimeAgo iso={undefined} />);
    expect(screen.getByText('—')).toBeInTheDocument();
  });
});
