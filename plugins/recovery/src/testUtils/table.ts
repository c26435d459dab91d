import { screen, within } from '@testing-library/react';

/** The column header titled `title`. */
export function columnHeader(title: string): HTMLElement {
  const header = screen
    .getAllByRole('columnheader')
    .find(h => h.textContent === title);
  if (!header) throw new Error(`No column ${title}`);
  return header;
}

/**
 * The header's sort button (material-table's TableSortLabel), null where it offers no sorting;
 * the header itself is a button too, a drag handle.
 */
export function sortButton(header: HTMLElement): HTMLElement | null {
  return header.querySelector<HTMLElement>('[class*="MuiTableSortLabel-root"]');
}

/** The text of column `index` in each row of the table `header` heads. */
export function columnTexts(header: HTMLElement, index: number): string[] {
  const rows = within(header.closest('table')!).getAllByRole('row').slice(1);
  return rows.map(r => within(r).getAllByRole('cell')[index].textContent ?? '');
}
