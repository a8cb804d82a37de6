// Text tables for listings: a header row, columns padded to their widest
// cell, two spaces between, no trailing blanks (so `grep`/`awk` see clean
// fields). Machine readers use each listing's --json instead.

export function formatTable(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  return all
    .map(
      (r) =>
        header
          .map((_, c) => (r[c] ?? '').padEnd(widths[c]!))
          .join('  ')
          .trimEnd() + '\n',
    )
    .join('');
}
