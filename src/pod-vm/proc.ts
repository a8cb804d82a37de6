// Resource use of one instance from /proc: parsing is pure (tested on
// captured text), reading is a thin wrapper. Linux only, like the appliance.
import { readdir, readFile } from 'node:fs/promises';

/** USER_HZ: 100 on every Linux ABI Node supports; /proc reports CPU time in these ticks. */
const TICKS_PER_SEC = 100;
const PAGE_BYTES = 4096;

export interface ProcStat {
  /** R, S, D, Z, T, … as the kernel reports it */
  state: string;
  cpuTicks: number;
  priority: number;
  nice: number;
  threads: number;
  /** clock ticks after boot */
  startTicks: number;
  rssBytes: number;
}

export interface ProcIo {
  readBytes: number;
  writeBytes: number;
  /** bytes passed to read()/write() including sockets and page cache hits */
  rchar: number;
  wchar: number;
}

export interface ProcSample {
  pid: number;
  /** Date.now() when read */
  at: number;
  stat: ProcStat;
  io?: ProcIo;
  fds?: number;
}

/** /proc/PID/stat: the command name is in parentheses and may itself contain spaces and ')'. */
export function parseStat(text: string): ProcStat | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  // Fields after the name, numbered as in proc(5) starting at field 3 (state).
  const f = text
    .slice(close + 2)
    .trim()
    .split(/\s+/);
  const n = (field: number) => Number(f[field - 3]);
  if (f.length < 22) return undefined;
  return {
    state: f[0]!,
    cpuTicks: n(14) + n(15),
    priority: n(18),
    nice: n(19),
    threads: n(20),
    startTicks: n(22),
    rssBytes: n(24) * PAGE_BYTES,
  };
}

export function parseIo(text: string): ProcIo {
  const get = (k: string) => Number(text.match(new RegExp(`^${k}:\\s*(\\d+)`, 'm'))?.[1] ?? 0);
  return { readBytes: get('read_bytes'), writeBytes: get('write_bytes'), rchar: get('rchar'), wchar: get('wchar') };
}

/** CPU use between two samples of the same process, in percent of one core. */
export function cpuPercent(prev: ProcSample | undefined, cur: ProcSample): number | undefined {
  if (!prev || prev.pid !== cur.pid || cur.at <= prev.at) return undefined;
  const cpuSec = (cur.stat.cpuTicks - prev.stat.cpuTicks) / TICKS_PER_SEC;
  return Math.max(0, (cpuSec / ((cur.at - prev.at) / 1000)) * 100);
}

export function cpuSeconds(stat: ProcStat): number {
  return stat.cpuTicks / TICKS_PER_SEC;
}

/** Reads one sample; undefined when the process is gone. io and fds need the same user or root. */
export async function sampleProcess(pid: number, now = Date.now()): Promise<ProcSample | undefined> {
  let stat: ProcStat | undefined;
  try {
    stat = parseStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
  if (!stat) return undefined;
  const sample: ProcSample = { pid, at: now, stat };
  try {
    sample.io = parseIo(await readFile(`/proc/${pid}/io`, 'utf8'));
  } catch {
    /* not permitted: leave it out rather than report zero */
  }
  try {
    sample.fds = (await readdir(`/proc/${pid}/fd`)).length;
  } catch {
    /* likewise */
  }
  return sample;
}
