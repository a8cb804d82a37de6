// Pod files on disk → validated PodConfig: one file, a directory of them, or
// the paths given to `podboot validate`; and the default pod in the package.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { crossFileProblems, type FileFacts } from './cross-pod.js';
import { parsePod } from './pod-file.js';
import { PodFileRefused, readPodFileSync } from './read-pod-file.js';
import { packageRoot } from '../package-root.js';
import type { ConfigProblem, PodConfig } from './types.js';

export interface LoadResult {
  pod?: PodConfig;
  problems: ConfigProblem[];
}

export interface LoadManyResult {
  pods: PodConfig[];
  problems: ConfigProblem[];
}

export function loadPodText(text: string, file: string): LoadResult {
  const { pod, problems } = parsePod(text, file);
  return pod ? { pod, problems } : { problems };
}

export function loadPodFile(path: string): LoadResult {
  const parsed = readPod(path);
  if ('problem' in parsed) return { problems: [parsed.problem] };
  return parsed.pod ? { pod: parsed.pod, problems: parsed.problems } : { problems: parsed.problems };
}

/** Every pod file in `dir`, with the checks between pods. An empty directory is no problem here. */
export function loadPodDir(dir: string): LoadManyResult {
  const files = podFilesIn(dir);
  if ('problem' in files) return { pods: [], problems: [files.problem] };
  return loadFiles(files.files, []);
}

/**
 * Files and directories named by an operator (`podboot validate a.yaml pods/`):
 * every pod in them, checked against each other as if they ran on one central
 * node. A named directory without pod files is a problem.
 */
export function loadPodPaths(paths: readonly string[]): LoadManyResult {
  const files: string[] = [];
  const problems: ConfigProblem[] = [];
  for (const path of paths) {
    if (!isDirectory(path)) {
      files.push(path);
      continue;
    }
    const found = podFilesIn(path);
    if ('problem' in found) problems.push(found.problem);
    else if (found.files.length === 0) problems.push(fileProblem(path, '(dir)', 'no pod files (*.yaml, *.yml) in this directory'));
    else files.push(...found.files);
  }
  return loadFiles(files, problems);
}

/** The embedded example pod (examples/default-pod.yaml), found from dist/ or from src/. */
export function defaultPodPath(): string {
  return join(packageRoot(), 'examples', 'default-pod.yaml');
}

/**
 * Every file's own problems and the problems between files, in one run: a
 * file with problems of its own still takes part in the checks between
 * files with every field that could be read (src/config/cross-pod.ts).
 */
function loadFiles(files: readonly string[], problems: ConfigProblem[]): LoadManyResult {
  const pods: PodConfig[] = [];
  const facts: FileFacts[] = [];
  for (const file of files) {
    const parsed = readPod(file);
    if ('problem' in parsed) {
      problems.push(parsed.problem);
      continue;
    }
    problems.push(...parsed.problems);
    if (parsed.pod) pods.push(parsed.pod);
    facts.push({ facts: parsed.facts, file, locate: parsed.locate });
  }
  problems.push(...crossFileProblems(facts));
  // In file order, then by position, as an editor's problem list would show them.
  const rank = new Map(files.map((f, i) => [f, i]));
  problems.sort((a, b) => (rank.get(a.file) ?? -1) - (rank.get(b.file) ?? -1) || a.line - b.line || a.col - b.col);
  return { pods, problems };
}

function readPod(path: string): ReturnType<typeof parsePod> | { problem: ConfigProblem } {
  let text: string;
  try {
    text = readPodFileSync(path).text;
  } catch (err) {
    if (err instanceof PodFileRefused) return { problem: fileProblem(path, '(file)', err.reason) };
    throw err;
  }
  return parsePod(text, path);
}

/** *.yaml and *.yml in `dir`, sorted; dotfiles (editor locks and backups) are skipped. */
function podFilesIn(dir: string): { files: string[] } | { problem: ConfigProblem } {
  try {
    const names = readdirSync(dir).filter((n) => !n.startsWith('.') && /\.ya?ml$/.test(n));
    return { files: names.sort().map((n) => join(dir, n)) };
  } catch (err) {
    return { problem: fileProblem(dir, '(dir)', `cannot read: ${(err as Error).message}`) };
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function fileProblem(file: string, path: string, message: string): ConfigProblem {
  return { file, line: 1, col: 1, path, message };
}
