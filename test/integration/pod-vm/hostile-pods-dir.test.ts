// The pods directory is hostile input (issue 12, must show 4): a FIFO, a
// symlink to /dev/zero, a symlink to a secret file and a 15 MB file dropped
// into the pods directory of a running `podboot serve`. Each is refused with
// its reason, once; a valid pod file added after them starts; serve stays
// small; nothing of the secret appears anywhere; SIGTERM still stops it; and
// `podboot validate` answers on each of them.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, PODBOOT, requireBuild, type Daemon } from '../../helpers/netns.js';

/** Appears only in the secret file: anywhere else, it leaked. */
const MARKER = 'HPD-MARKER-4b1d0c9e27f3';
const RSS_LIMIT_KB = 300 * 1024;

const podYaml = (name: string, i: number) => `apiVersion: podboot/v1
kind: Pod
metadata:
  name: ${name}
spec:
  listen: { address: 10.99.0.${i + 1} }
  relays: [10.${41 + i}.0.1]
  subnets:
    - { cidr: 10.${41 + i}.0.0/16, gateway: 10.${41 + i}.0.1, pool: 10.${41 + i}.1.0-10.${41 + i}.1.250 }
`;

async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs: number, detail: () => string = () => ''): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${detail().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** kB from a /proc/PID/status line such as "VmRSS:  81234 kB"; 0 once the process is gone. */
function procKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return Number(m?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** Every regular file under `dir` (sockets, FIFOs and links left alone). */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = lstatSync(path);
    if (st.isDirectory()) out.push(...filesUnder(path));
    else if (st.isFile()) out.push(path);
  }
  return out;
}

describe('a hostile pods directory', () => {
  const lab = new Lab('hpd');
  const podsDir = join(lab.dir, 'pods');
  const stateDir = join(lab.dir, 'state');
  const secretFile = join(lab.dir, 'secret', 'shadow');
  let central: Daemon;
  let api: { url: string; ca: string; tokenFile: string };
  let peakSampledKb = 0;
  let sampler: NodeJS.Timeout | undefined;
  /** what the API answered, kept to search for the marker */
  const answers: string[] = [];

  const hostile = {
    fifo: join(podsDir, 'a-fifo.yaml'),
    zero: join(podsDir, 'b-zero.yaml'),
    secret: join(podsDir, 'c-secret.yaml'),
    big: join(podsDir, 'd-big.yaml'),
  };
  const reasons: Record<keyof typeof hostile, string> = {
    fifo: 'not a regular file: FIFO',
    zero: 'not a regular file: symlink to a character device',
    // Read (a regular file), then refused as not being a pod, without quoting a line of it.
    secret: 'apiVersion: required field is missing',
    big: 'larger than 1 MiB; pod files are limited to 1 MiB',
  };

  const authed = (path: string) => {
    const token = readFileSync(api.tokenFile, 'utf8').trim();
    const out = lab.exec('c', 'curl', ['-s', '--max-time', '10', '--cacert', api.ca, '-H', `Authorization: Bearer ${token}`, `${api.url}${path}`], { allowFail: true });
    answers.push(out);
    return out;
  };
  const alive = () => central.proc.exitCode === null && central.proc.signalCode === null;
  const refusedLines = (file: string) =>
    central
      .log()
      .split('\n')
      .filter((l) => l.includes('"msg":"pod file refused"') && l.includes(`"file":"${file}"`));

  beforeAll(async () => {
    requireBuild();
    lab.addNs('c');
    // Pods run as their own users: they must be able to reach their state directories.
    chmodSync(lab.dir, 0o711);
    for (let i = 0; i < 2; i++) lab.ip('c', 'addr', 'add', `10.99.0.${i + 1}/32`, 'dev', 'lo');
    mkdirSync(podsDir);
    mkdirSync(join(lab.dir, 'secret'));
    writeFileSync(join(podsDir, 'rack-a.yaml'), podYaml('rack-a', 0));
    writeFileSync(secretFile, [`root:$6$Zq8x$${MARKER}-root:19800:0:99999:7:::`, 'daemon:*:19800:0:99999:7:::', `operator:$y$j9T$${MARKER}-operator:19800:0:99999:7:::`, ''].join('\n'), {
      mode: 0o600,
    });
    central = lab.spawn('c', process.execPath, [PODBOOT, 'serve', '--pods', podsDir, '--state', stateDir, '--api', '127.0.0.1:0'], 'central');
    await central.waitFor(/"msg":"central node serving"/, 60_000);
    api = JSON.parse(readFileSync(join(stateDir, 'central', 'api.json'), 'utf8'));
    // `ip netns exec` execs serve itself: this pid is the node process.
    expect(readFileSync(`/proc/${central.proc.pid}/comm`, 'utf8').trim()).toBe('node');
    sampler = setInterval(() => (peakSampledKb = Math.max(peakSampledKb, procKb(central.proc.pid!, 'VmRSS'))), 100);
  }, 90_000);

  afterAll(async () => {
    if (sampler) clearInterval(sampler);
    await lab.cleanup();
  });

  it('refuses a FIFO, a /dev/zero symlink, a secret symlink and a 15 MB file, each with its reason; a later pod starts', async () => {
    execFileSync('mkfifo', [hostile.fifo]);
    symlinkSync('/dev/zero', hostile.zero);
    symlinkSync(secretFile, hostile.secret);
    // A valid pod padded with comments to 15 MB: refused for its size alone.
    const padding = `# ${'x'.repeat(97)}\n`.repeat((15 * 1024 * 1024) / 100);
    writeFileSync(hostile.big, podYaml('rack-big', 1) + padding);

    for (const [k, file] of Object.entries(hostile) as [keyof typeof hostile, string][]) {
      await until(
        `${k} refused in the log`,
        () => !alive() || refusedLines(file).length > 0,
        15_000,
        () => central.log(),
      );
      expect(alive(), central.log().slice(-3000)).toBe(true);
      expect(refusedLines(file)[0]).toContain(reasons[k]);
    }

    // Added after them: the supervisor is not wedged, and applies it.
    const valid = join(podsDir, 'rack-b.yaml');
    writeFileSync(valid, podYaml('rack-b', 1), { mode: 0o600 });
    chmodSync(valid, 0o600);
    await until(
      'rack-b starting within 5 s',
      () => /"pod":"rack-b"[^\n]*"msg":"pod instance starting"/.test(central.log()),
      5000,
      () => central.log(),
    );
    // Its running copy is no more readable than the operator's 0600 file: nothing for others,
    // no group write (the group, when set, is the pod's own: it reads its copy through it).
    const copy = statSync(join(stateDir, 'rack-b', 'pod.yaml'));
    expect(copy.mode & 0o027, (copy.mode & 0o777).toString(8)).toBe(0);
    if (copy.mode & 0o040) expect(copy.gid).not.toBe(0);
  }, 60_000);

  it('answers the API with each refusal and its reason', () => {
    const pods = JSON.parse(authed('/api/v1/pods')) as { refused: { file: string; problems: { message: string }[] }[] };
    for (const [k, file] of Object.entries(hostile) as [keyof typeof hostile, string][]) {
      const r = pods.refused.find((x) => x.file === file);
      expect(r, `${k} in /api/v1/pods`).toBeDefined();
      expect(r!.problems.map((p) => p.message).join('\n')).toContain(reasons[k].replace(/^apiVersion: /, ''));
    }
    const events = (JSON.parse(authed('/api/v1/events')) as { events: { kind: string; file?: string; message: string }[] }).events;
    for (const [k, file] of Object.entries(hostile) as [keyof typeof hostile, string][]) {
      const refused = events.filter((e) => e.kind === 'refused' && e.file === file);
      expect(refused, `${k} in /api/v1/events`).toHaveLength(1);
      expect(refused[0]!.message).toContain(reasons[k]);
    }
  });

  it('logs each refusal once, not at every rescan', async () => {
    // serve rescans every 5 s: two rescans later, still one line per file.
    await new Promise((r) => setTimeout(r, 11_000));
    expect(alive()).toBe(true);
    for (const file of Object.values(hostile)) expect(refusedLines(file), file).toHaveLength(1);
  }, 20_000);

  it('stays under 300 MB resident', () => {
    const peak = Math.max(peakSampledKb, procKb(central.proc.pid!, 'VmHWM'));
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThan(RSS_LIMIT_KB);
  });

  it('`podboot validate` answers on each within 2 s, non-zero, with the reason and nothing of the secret', () => {
    for (const [k, file] of Object.entries(hostile) as [keyof typeof hostile, string][]) {
      const r = spawnSync(process.execPath, [PODBOOT, 'validate', file], { encoding: 'utf8', timeout: 2000, killSignal: 'SIGKILL' });
      expect(r.error, `${k}: validate did not return within 2 s`).toBeUndefined();
      expect(r.status, `${k}: ${r.stdout}${r.stderr}`).toBe(1);
      expect(r.stdout).toContain(`${file}:1:1: `);
      expect(r.stdout).toContain(reasons[k]);
      expect(r.stdout + r.stderr).not.toContain(MARKER);
    }
  });

  it('stops on SIGTERM within 5 s', async () => {
    const exited = new Promise<void>((resolve) => central.proc.once('exit', () => resolve()));
    const t0 = Date.now();
    central.proc.kill('SIGTERM');
    await Promise.race([exited, new Promise((_, reject) => setTimeout(() => reject(new Error(`serve still running 5 s after SIGTERM\n${central.log().slice(-3000)}`)), 5000))]);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(central.log()).toMatch(/"msg":"central node stopped"/);
  }, 10_000);

  it('nothing of the secret file appears anywhere: output, API answers, the state directory', () => {
    expect(readFileSync(secretFile, 'utf8')).toContain(MARKER);
    expect(central.log()).not.toContain(MARKER);
    expect(answers.length).toBeGreaterThanOrEqual(2);
    for (const a of answers) expect(a).not.toContain(MARKER);
    const leaked = filesUnder(stateDir).filter((f) => readFileSync(f).includes(MARKER));
    expect(leaked).toEqual([]);
    // And nothing else the test wrote (labs logs) outside the secret itself.
    const others = filesUnder(lab.dir).filter((f) => f !== secretFile && readFileSync(f).includes(MARKER));
    expect(others).toEqual([]);
  });
});
