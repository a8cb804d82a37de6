// What a scan of the pods directory asks the supervisor to do. Pure: the
// supervisor reads the files and applies the actions. The rule that matters:
// a problem in a new or changed file only refuses that change; a pod that is
// running keeps running on the configuration it was started with.
import { createHash } from 'node:crypto';
import { crossPodProblems, type LocatedPod } from '../config/cross-pod.js';
import { parsePod } from '../config/pod-file.js';
import type { ConfigProblem } from '../config/types.js';

export interface ScannedFile {
  file: string;
  /** sha256 of the bytes; '' when the file could not be read */
  hash: string;
  text?: string;
  /** permission bits of the file read; its running copy keeps them or fewer */
  mode?: number;
  readProblem?: ConfigProblem;
}

/** What the supervisor has made of one file so far. */
export interface AppliedEntry {
  file: string;
  /** the version a pod runs from */
  running?: { hash: string; located: LocatedPod };
  /** a later version that was refused (not reported again until it changes) */
  refusedHash?: string;
}

export type PlanAction =
  | { kind: 'start'; file: string; hash: string; text: string; mode?: number; located: LocatedPod }
  | { kind: 'reload'; file: string; hash: string; text: string; mode?: number; located: LocatedPod; previous: string }
  | { kind: 'stop'; file: string; name: string }
  | { kind: 'forget'; file: string }
  | { kind: 'refuse'; file: string; hash: string; problems: ConfigProblem[]; running?: string };

export function hashText(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function planScan(applied: ReadonlyMap<string, AppliedEntry>, scanned: readonly ScannedFile[]): PlanAction[] {
  const actions: PlanAction[] = [];
  const byFile = new Map(scanned.map((s) => [s.file, s]));
  for (const [file, entry] of applied) {
    if (byFile.has(file)) continue;
    actions.push(entry.running ? { kind: 'stop', file, name: entry.running.located.pod.name } : { kind: 'forget', file });
  }
  // Pods that keep running as they are: unchanged files, and changed files whose change gets refused.
  const kept = new Map<string, LocatedPod>();
  const candidates: ScannedFile[] = [];
  for (const s of scanned) {
    const entry = applied.get(s.file);
    if (entry?.running?.hash === s.hash) kept.set(s.file, entry.running.located);
    else if (entry?.refusedHash === s.hash) {
      if (entry.running) kept.set(s.file, entry.running.located);
    } else candidates.push(s);
  }
  const parsed: { s: ScannedFile & { text: string }; located: LocatedPod }[] = [];
  for (const s of candidates) {
    const running = applied.get(s.file)?.running;
    const refuse = (problems: ConfigProblem[]) => {
      if (running) kept.set(s.file, running.located);
      actions.push({ kind: 'refuse', file: s.file, hash: s.hash, problems, running: running?.located.pod.name });
    };
    if (s.readProblem || s.text === undefined) {
      refuse([s.readProblem ?? { file: s.file, line: 1, col: 1, path: '(file)', message: 'cannot read' }]);
      continue;
    }
    const p = parsePod(s.text, s.file);
    if (!p.pod) refuse(p.problems);
    else parsed.push({ s: { ...s, text: s.text }, located: { pod: p.pod, file: s.file, locate: p.locate } });
  }
  // Candidates are checked against what keeps running first, so a conflict
  // is always charged to the newcomer, whatever the file names sort as.
  for (const { s, located } of parsed) {
    const others = [...kept.values()];
    const problems = crossPodProblems([...others, located]).filter((p) => p.file === s.file);
    const running = applied.get(s.file)?.running;
    if (problems.length) {
      if (running) kept.set(s.file, running.located);
      actions.push({ kind: 'refuse', file: s.file, hash: s.hash, problems, running: running?.located.pod.name });
      continue;
    }
    kept.set(s.file, located);
    if (running) actions.push({ kind: 'reload', file: s.file, hash: s.hash, text: s.text, mode: s.mode, located, previous: running.located.pod.name });
    else actions.push({ kind: 'start', file: s.file, hash: s.hash, text: s.text, mode: s.mode, located });
  }
  return actions;
}
