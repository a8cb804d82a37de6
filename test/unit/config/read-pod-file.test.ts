// The pods directory is hostile input (issue 12): only regular files are
// read, at most 1 MiB of them, and a refusal names the problem, never the bytes.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPodFile, loadPodText } from '../../../src/config/load.js';
import { copyMode, MAX_POD_FILE_BYTES, PodFileRefused, readPodFile, readPodFileSync, type PodFileContent } from '../../../src/config/read-pod-file.js';
import { formatProblem } from '../../../src/config/types.js';
import { yamlErrorMessage } from '../../../src/config/yaml-errors.js';

const MARKER = 'HPD-SECRET-7f3a9c1e-do-not-echo';
const POD = `apiVersion: podboot/v1
kind: Pod
metadata: { name: rack-r }
spec:
  listen: { address: 10.99.0.1 }
  relays: [10.20.0.1]
  subnets: [{ cidr: 10.20.0.0/24 }]
`;

/** A read that never settles fails the test instead of hanging it. */
function bounded<T>(p: Promise<T>, ms = 2000): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms))]);
}

async function refusal(read: () => Promise<PodFileContent>): Promise<PodFileRefused> {
  const err = await bounded(read()).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PodFileRefused);
  return err as PodFileRefused;
}

describe('reading a pod file from a hostile directory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hpd-read-'));
  const at = (name: string) => join(dir, name);
  let server: Server;

  beforeAll(async () => {
    execFileSync('mkfifo', [at('fifo.yaml')]);
    symlinkSync('/dev/zero', at('zero.yaml'));
    symlinkSync(at('fifo.yaml'), at('to-fifo.yaml'));
    mkdirSync(at('dir.yaml'));
    writeFileSync(at('big.yaml'), Buffer.alloc(MAX_POD_FILE_BYTES + 1, 0x20));
    writeFileSync(at('cap.yaml'), Buffer.alloc(MAX_POD_FILE_BYTES, 0x20));
    writeFileSync(at('pod.yaml'), POD, { mode: 0o600 });
    chmodSync(at('pod.yaml'), 0o600);
    symlinkSync(at('pod.yaml'), at('link.yaml'));
    symlinkSync(at('nowhere'), at('dangling.yaml'));
    writeFileSync(at('nul.yaml'), Buffer.from(`apiVersion: podboot/v1\n\0${MARKER}\n`));
    writeFileSync(at('latin1.yaml'), Buffer.from(`kind: Pod\nname: caf\xe9 ${MARKER}\n`, 'latin1'));
    server = createServer();
    await new Promise<void>((resolve) => server.listen(at('sock.yaml'), resolve));
  });
  afterAll(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  // The same rules for the supervisor (async) and for validate / pod run (sync).
  const readers = [
    ['async', (f: string) => readPodFile(f)],
    ['sync', (f: string) => new Promise<PodFileContent>((resolve) => resolve(readPodFileSync(f)))],
  ] as const;

  describe.each(readers)('%s', (_, read) => {
    it.each([
      ['fifo.yaml', 'not a regular file: FIFO'],
      ['zero.yaml', 'not a regular file: symlink to a character device'],
      ['to-fifo.yaml', 'not a regular file: symlink to a FIFO'],
      ['sock.yaml', 'not a regular file: socket'],
      ['dir.yaml', 'not a regular file: directory'],
      ['big.yaml', 'larger than 1 MiB; pod files are limited to 1 MiB'],
      ['dangling.yaml', 'no such file (or a symlink to nothing)'],
      ['nul.yaml', 'not text: contains NUL bytes'],
      ['latin1.yaml', 'not UTF-8 text'],
    ])('%s is refused: %s', async (name, reason) => {
      const err = await refusal(() => read(at(name)));
      expect(err.reason).toBe(reason);
      expect(err.file).toBe(at(name));
      expect(err.message).not.toContain(MARKER);
    });

    it('reads a regular file, with its mode', async () => {
      const r = await bounded(read(at('pod.yaml')));
      expect(r.text).toBe(POD);
      expect(r.mode & 0o777).toBe(0o600);
    });

    it("follows a symlink to a regular file (the target's mode counts)", async () => {
      const r = await bounded(read(at('link.yaml')));
      expect(r.text).toBe(POD);
      expect(r.mode & 0o777).toBe(0o600);
    });

    it('reads a file of exactly the cap', async () => {
      expect((await bounded(read(at('cap.yaml')))).bytes.length).toBe(MAX_POD_FILE_BYTES);
    });
  });

  it('enforces the cap while reading, whatever the size said', async () => {
    // A smaller cap than the file: refused after cap+1 bytes, not by trusting st_size alone.
    const err = await refusal(() => readPodFile(at('pod.yaml'), 16));
    expect(err.kind).toBe('too-large');
  });

  it('validate-style loading names the reason and never the content', () => {
    for (const name of ['fifo.yaml', 'zero.yaml', 'nul.yaml', 'latin1.yaml']) {
      const problems = loadPodFile(at(name)).problems.map(formatProblem);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(new RegExp(`^${at(name)}:1:1: \\(file\\): (not a regular file|not text|not UTF-8)`));
      expect(problems[0]).not.toContain(MARKER);
    }
  });
});

describe('problems in a file that is not a pod never quote it', () => {
  const shadow = [`root:$6$abcdefgh$${MARKER}:19000:0:99999:7:::`, 'daemon:*:19000:0:99999:7:::', `alice:$y$j9T$${MARKER}:19000:0:99999:7:::`].join('\n');

  it.each([
    ['shadow(5) lines', shadow],
    ['a secret as YAML', `password: ${MARKER}\n${MARKER}: x\nkind: ${MARKER}\n`],
    ['a scalar document', `${MARKER}\n`],
    ['a Kubernetes secret', `apiVersion: v1\nkind: Secret\ndata:\n  token: ${MARKER}\n`],
    ['an unknown tag', `!${MARKER} x: 1\n`],
    ['a bad escape', `a: "\\q${MARKER}"\n`],
    ['a block scalar header', `a: |${MARKER}\n  x\n`],
    ['an undefined alias', `a: *${MARKER}\n`],
    ['broken flow', `a: [${MARKER}\nb: {x: ${MARKER}\n`],
    ['a stray token', `a: b\n${MARKER}\n  - ? ${MARKER}\n`],
  ])('%s: refused with located problems, no marker', (_, text) => {
    const r = loadPodText(text, 'secret.yaml');
    expect(r.pod).toBeUndefined();
    expect(r.problems.length).toBeGreaterThan(0);
    const out = r.problems.map(formatProblem).join('\n');
    expect(out).not.toContain(MARKER);
    expect(out).not.toContain('19000');
    for (const p of r.problems) expect(p.line).toBeGreaterThanOrEqual(1);
  });

  it('says what a non-pod file is missing, located', () => {
    expect(loadPodText(shadow, 'f.yaml').problems.map(formatProblem)).toEqual(['f.yaml:1:1: apiVersion: required field is missing', 'f.yaml:1:1: kind: required field is missing']);
    expect(loadPodText('apiVersion: v1\nkind: Secret\n', 'f.yaml').problems.map(formatProblem)).toEqual(['f.yaml:1:13: apiVersion: expected podboot/v1', 'f.yaml:2:7: kind: expected Pod']);
  });

  it("keeps the parser's messages made of its own words", () => {
    expect(yamlErrorMessage({ code: 'BAD_INDENT', message: 'Flow sequence in block collection must be sufficiently indented and end with a ]\n\nx' })).toBe(
      'Flow sequence in block collection must be sufficiently indented and end with a ]',
    );
    expect(yamlErrorMessage({ code: 'UNEXPECTED_TOKEN', message: 'Unexpected scalar at node end' })).toBe('Unexpected scalar at node end');
    expect(yamlErrorMessage({ code: 'UNEXPECTED_TOKEN', message: `Unexpected ${MARKER} in flow map` })).toBe('unexpected text here');
    expect(yamlErrorMessage({ code: 'TAG_RESOLVE_FAILED', message: `Unresolved tag: !${MARKER}` })).toBe('unsupported YAML tag');
  });
});

describe('copies of pod files', () => {
  it.each([
    [0o600, 0o600],
    [0o644, 0o644],
    [0o640, 0o640],
    [0o400, 0o400],
    [0o666, 0o644],
    [0o777, 0o644],
    [0o4755, 0o644],
  ])('source %o → copy %o: never more, never group/other-writable or executable', (source, copy) => {
    expect(copyMode(source)).toBe(copy);
  });
});
