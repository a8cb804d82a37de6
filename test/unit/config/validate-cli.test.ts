// `podboot validate` run for real: the built CLI in a child process.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPodPaths } from '../../../src/config/load.js';
import { FIXTURES, lines, ROOT } from './fixtures.js';

const CLI = join(ROOT, 'dist/src/cli/main.js');

/** .ts files under `dir` whose compiled .js in dist/ is missing or older. */
function staleSources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .filter((f) => {
      const js = join(ROOT, 'dist', dir, f.replace(/\.ts$/, '.js'));
      return !existsSync(js) || statSync(js).mtimeMs < statSync(join(ROOT, dir, f)).mtimeMs;
    });
}

const stale = () => [...staleSources('src/config'), ...staleSources('src/cli'), ...staleSources('src/net')];

function validate(args: string[], cwd = FIXTURES) {
  const r = spawnSync(process.execPath, [CLI, 'validate', ...args], { cwd, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('podboot validate', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'podboot-validate-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  beforeAll(() => {
    if (stale().length === 0) return;
    try {
      execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'pipe' });
    } catch (err) {
      // tsc still emits when another module has a type error; what matters is that ours are fresh.
      if (stale().length) throw new Error(`build failed: ${String((err as { stdout?: Buffer }).stdout ?? err)}`);
    }
  });

  it('exits 0 and prints "ok: N pods" when every pod is valid', () => {
    expect(validate([join(ROOT, 'examples/pods'), join(ROOT, 'examples/default-pod.yaml')])).toEqual({ status: 0, stdout: 'ok: 4 pods\n', stderr: '' });
    expect(validate(['valid/full.yaml'])).toEqual({ status: 0, stdout: 'ok: 1 pod\n', stderr: '' });
  });

  it('exits 1 with one file:line:col line per problem on stdout', () => {
    expect(validate(['bad/relays.yaml'])).toEqual({
      status: 1,
      stderr: '',
      stdout: [
        "bad/relays.yaml:7:23: spec.relays[1]: relay 10.40.0.1 is in none of the pod's subnets",
        'bad/relays.yaml:7:34: spec.relays[2]: duplicate relay 10.20.0.1 (also spec.relays[0])',
        'bad/relays.yaml:7:45: spec.relays[3]: relay 10.20.0.150 is inside the pool of 10.20.0.0/24',
        '',
      ].join('\n'),
    });
  });

  it('prints every problem of every path and between the pods of all paths, in one run', () => {
    const args = ['bad/pools.yaml', 'valid/minimal.yaml', 'valid/full.yaml', 'dir-conflicts'];
    const r = validate(args);
    expect(r.status).toBe(1);
    // The same lines as the loader's (its own tests check them one by one), in the same order.
    const expected = lines(loadPodPaths(args.map((a) => join(FIXTURES, a))).problems);
    expect(r.stdout).toBe(expected.map((l) => `${l}\n`).join(''));
    // bad/pools.yaml's 7 problems of its own, and its name, sockets and subnets still collide with the others'.
    expect(expected.filter((l) => l.startsWith('bad/pools.yaml:'))).toHaveLength(7);
    expect(expected).toContain('valid/minimal.yaml:8:13: spec.subnets[0].cidr: 10.20.0.0/24 overlaps 10.20.0.0/24 of pod rack-a (bad/pools.yaml:9:13)');
    expect(expected).toContain('dir-conflicts/10-rack-a.yaml:4:9: metadata.name: pod name rack-a is also used by bad/pools.yaml:4:9');
    // Between paths: full.yaml listens elsewhere, but its first subnet is minimal.yaml's.
    expect(expected).toContain('valid/full.yaml:15:13: spec.subnets[0].cidr: 10.20.0.0/24 overlaps 10.20.0.0/24 of pod rack-min (valid/minimal.yaml:8:13)');
    expect(expected).toContain('dir-conflicts/10-rack-a.yaml:10:13: spec.subnets[0].cidr: 10.20.0.0/24 overlaps 10.20.0.0/24 of pod rack-full (valid/full.yaml:15:13)');
  });

  it('exits 1 for a directory with no pod files', () => {
    const empty = join(tmp, 'empty');
    mkdirSync(empty);
    expect(validate([empty])).toEqual({ status: 1, stdout: `${empty}:1:1: (dir): no pod files (*.yaml, *.yml) in this directory\n`, stderr: '' });
  });

  it('exits 2 for wrong usage: no path, a path that does not exist, an unknown option', () => {
    for (const [args, message] of [
      [[], 'give at least one pod file or directory'],
      [['valid/full.yaml', 'nope.yaml'], 'nope.yaml: no such file or directory'],
      [['--strict', 'valid/full.yaml'], 'unknown option --strict'],
    ] as const) {
      const r = validate([...args]);
      expect(r.status).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(`podboot validate: ${message}`);
      expect(r.stderr).toContain('usage: podboot validate <file|dir>...');
    }
  });

  it('--json prints the problems as one JSON object: file, line, column, field, message', () => {
    const r = validate(['--json', 'bad/relays.yaml', 'valid/full.yaml']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('');
    const report = JSON.parse(r.stdout);
    expect(report.ok).toBe(false);
    expect(report.pods).toBe(1);
    // relays.yaml's own three, then full.yaml's subnet, which relays.yaml's pod also has.
    expect(report.problems).toHaveLength(4);
    expect(report.problems[0]).toEqual({
      file: 'bad/relays.yaml',
      line: 7,
      column: 23,
      field: 'spec.relays[1]',
      message: "relay 10.40.0.1 is in none of the pod's subnets",
    });
    expect(report.problems[3]).toEqual({
      file: 'valid/full.yaml',
      line: 15,
      column: 13,
      field: 'spec.subnets[0].cidr',
      message: '10.20.0.0/24 overlaps 10.20.0.0/24 of pod rack-a (bad/relays.yaml:9:15)',
    });
    expect(JSON.parse(validate(['valid/full.yaml', '--json']).stdout)).toEqual({ ok: true, pods: 1, problems: [] });
    expect(validate(['valid/full.yaml', '--json']).status).toBe(0);
  });

  it('--json holds problems within and between files of one run (the cross-files corpus)', () => {
    const r = validate(['--json', 'cross-files']);
    expect(r.status).toBe(1);
    const report = JSON.parse(r.stdout) as { ok: boolean; pods: number; problems: { file: string; line: number; column: number; field: string; message: string }[] };
    expect(report.pods).toBe(2);
    expect(report.problems).toEqual(
      loadPodPaths([join(FIXTURES, 'cross-files')]).problems.map((p) => ({
        file: p.file.replace(FIXTURES, ''),
        line: p.line,
        column: p.col,
        field: p.path,
        message: p.message.split(FIXTURES).join(''),
      })),
    );
    // One of each kind, from the same file: its own unreadable port, a server another pod has too.
    expect(report.problems).toContainEqual({ file: 'cross-files/20-rack-b.yaml', line: 9, column: 73, field: 'spec.listen.httpPort', message: 'expected an integer, found "eighty"' });
    expect(report.problems).toContainEqual({
      file: 'cross-files/20-rack-b.yaml',
      line: 17,
      column: 14,
      field: 'spec.nodes[0].mac',
      message: 'server 52:54:00:00:0a:02 is also a server of pod rack-a (cross-files/10-rack-a.yaml:14:14)',
    });
  });

  it('--schema prints the JSON Schema checked in as docs/pod.schema.json', () => {
    const r = validate(['--schema']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(JSON.parse(readFileSync(join(ROOT, 'docs/pod.schema.json'), 'utf8')));
    expect(validate(['--schema', 'valid/full.yaml']).status).toBe(2);
  });

  it('prints its usage for --help and exits 0', () => {
    const r = validate(['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^usage: podboot validate <file\|dir>\.\.\./);
  });
});
