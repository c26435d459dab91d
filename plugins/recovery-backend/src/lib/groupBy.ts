/** `items` in groups of the same key, each group in the items' order, the groups in the order each key first came. */
export function groupBy<T>(
  items: Iterable<T>,
  key: (item: T) => string,
): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}
