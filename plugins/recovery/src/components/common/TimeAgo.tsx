import { useEffect, useState } from 'react';
import { formatAgo, formatTime } from '../../utils/format';

/** How often an age on the page is said again: a page left open does not keep saying "just now". */
const AGE_REFRESH_MS = 30_000;

/**
 * An age as the views say it, `2h ago`, in a `<time>` element that carries the instant and
 * shows it in UTC on hover: `2024-05-01 08:00:01 UTC`.
 */
export const TimeAgo = ({ iso }: { iso: string | undefined }) => {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!iso) return undefined;
    const timer = setInterval(() => setNow(Date.now()), AGE_REFRESH_MS);
    return () => clearInterval(timer);
  }, [iso]);
  return iso ? (
    <time dateTime={iso} title={formatTime(iso)}>
      {formatAgo(iso, now)}
    </time>
  ) : (
    <>—</>
  );
};
