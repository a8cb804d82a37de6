// `podboot lab down`: removes what `lab up` and `lab boot` made, from the
// state file and, for what a crash kept out of it, from the lab's namespace
// prefix (derived from DIR) and `ip netns pids`. Safe to run any number of
// times; it only ever touches pids it recorded (start time checked) and
// processes inside its own namespaces.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { labPrefix } from './plan.js';
import { listNamespaces, nsPids, readState, run, signal, stopProcesses, type LabState } from './sys.js';
import { LAB_ENTRIES } from './up.js';
import { setTimeout as sleep } from 'node:timers/promises';

export interface DownReport {
  processes: number;
  namespaces: string[];
  files: string[];
}

export async function labDown(dirArg: string): Promise<DownReport> {
  const dir = resolve(dirArg);
  let state: LabState | undefined;
  try {
    state = readState(dir);
  } catch {
    state = undefined; // a torn state file: fall back to the prefix
  }
  const prefix = state?.prefix ?? labPrefix(dir);
  const report: DownReport = { processes: 0, namespaces: [], files: [] };

  // VMs first (they hold taps), then the central node (SIGTERM lets the supervisor stop its pods), then the rest.
  const recorded = state?.processes ?? [];
  const order = (w: string) => (w.startsWith('qemu-') ? 0 : w === 'central' ? 1 : 2);
  for (const rank of [0, 1, 2]) {
    const group = recorded.filter((p) => order(p.what) === rank);
    report.processes += group.length;
    await stopProcesses(group, rank === 1 ? 8000 : 3000);
  }

  // Whatever still lives in our namespaces (children, daemons a crash kept out of the record) is killed; then the namespaces go.
  const namespaces = [...new Set([...(state?.namespaces ?? []), ...listNamespaces().filter((n) => n.startsWith(`${prefix}-`))])];
  for (const ns of namespaces) {
    if (!listNamespaces().includes(ns)) continue;
    // bounded: a few rounds of SIGKILL for processes forking while we kill
    for (let round = 0; round < 5; round++) {
      const pids = nsPids(ns);
      if (!pids.length) break;
      for (const pid of pids) signal(pid, 'SIGKILL');
      await sleep(200);
    }
    run('ip', ['netns', 'del', ns], { allowFail: true });
    report.namespaces.push(ns);
  }

  // Files: the whole DIR when the lab created it, else only the entries a lab makes.
  if (existsSync(dir)) {
    if (state?.createdDir) {
      rmSync(dir, { recursive: true, force: true });
      report.files.push(dir);
    } else {
      for (const e of state?.files ?? LAB_ENTRIES) {
        const p = join(dir, e);
        if (existsSync(p)) {
          rmSync(p, { recursive: true, force: true });
          report.files.push(p);
        }
      }
      if (!state && report.files.length && readdirSync(dir).length === 0) rmSync(dir, { recursive: true, force: true });
    }
  }
  return report;
}
