import { formatAgo, formatTime } from './format';

/**
 * An age as the views say it, `2h ago`, in a `<time>` element that carries the instant and
 * shows it in UTC on hover: `2024-05-01 08:00:01 UTC`.
 */
export const TimeAgo = ({ iso }: { iso: string | undefined }) =>
  iso ? (
    <time dateTime={iso} title={formatTime(iso)}>
      {formatAgo(iso)}
    </time>
  ) : (
    <>—</>
  );
