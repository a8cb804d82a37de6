// Output arrives as chunks at byte offsets, so an agent that lost an answer
// can send the same chunk again: what is already stored is accepted and not
// written twice; a chunk past the end (bytes missing before it) is refused
// with the length the pod has, so the agent resends from there.

export type ChunkPlan =
  /** write `take` bytes of the chunk, from its byte `skip`, at the stored length */
  | { kind: 'append'; skip: number; take: number; length: number }
  /** every byte of it is stored already */
  | { kind: 'duplicate'; length: number }
  /** it starts past the end: bytes before it are missing */
  | { kind: 'gap'; length: number }
  /** the stream would grow past its cap */
  | { kind: 'too-large'; length: number };

export function planChunk(stored: number, offset: number, size: number, cap: number): ChunkPlan {
  if (offset > stored) return { kind: 'gap', length: stored };
  const end = offset + size;
  if (end <= stored) return { kind: 'duplicate', length: stored };
  if (end > cap) return { kind: 'too-large', length: stored };
  const skip = stored - offset;
  return { kind: 'append', skip, take: size - skip, length: end };
}

/**
 * The whole lines of `data` (bytes from a line start), and how many bytes they
 * took; a last line without its newline waits for more unless `final`, or
 * unless it is already `maxLine` long (a line nobody ends is still checked).
 */
export function splitLines(data: Buffer, final: boolean, maxLine: number): { lines: string[]; consumed: number } {
  const lines: string[] = [];
  let start = 0;
  while (start < data.length) {
    const nl = data.indexOf(0x0a, start);
    const limit = start + maxLine;
    if (nl !== -1 && nl < limit) {
      lines.push(lineText(data.subarray(start, nl)));
      start = nl + 1;
    } else if (data.length >= limit) {
      lines.push(lineText(data.subarray(start, limit)));
      start = limit;
    } else if (final) {
      lines.push(lineText(data.subarray(start)));
      start = data.length;
    } else break;
  }
  return { lines, consumed: start };
}

function lineText(b: Buffer): string {
  const s = b.toString('utf8');
  return s.endsWith('\r') ? s.slice(0, -1) : s;
}
