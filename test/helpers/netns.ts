// Network namespaces, veths and daemons for integration tests. Everything a
// Lab creates is named with its own prefix and removed by cleanup(), even
// after a failed test, so runs never leak into each other or the host.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, createWriteStream, mkdtempSync, rmSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Daemon {
  proc: ChildProcess;
  logFile: string;
  log(): string;
  /** resolves when `pattern` appears in the log, rejects after timeoutMs or if the process exits */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function run(cmd: string, args: string[], opts: { allowFail?: boolean } = {}): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    if (opts.allowFail) return '';
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
  }
}

export class Lab {
  readonly dir: string;
  private readonly namespaces: string[] = [];
  private readonly daemons: Daemon[] = [];

  constructor(readonly prefix: string) {
    this.dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
    // Supervised pods run as their own unprivileged users: they must be able to pass through to their state.
    chmodSync(this.dir, 0o711);
  }

  ns(name: string): string {
    return `${this.prefix}-${name}`;
  }

  addNs(name: string): string {
    const ns = this.ns(name);
    run('ip', ['netns', 'del', ns], { allowFail: true });
    run('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    this.ip(name, 'link', 'set', 'lo', 'up');
    return ns;
  }

  /** `ip -n <ns> ...` */
  ip(name: string, ...args: string[]): string {
    return run('ip', ['-n', this.ns(name), ...args]);
  }

  exec(name: string, cmd: string, args: string[], opts: { allowFail?: boolean } = {}): string {
    return run('ip', ['netns', 'exec', this.ns(name), cmd, ...args], opts);
  }

  /** A veth pair between two namespaces, addressed and up. */
  veth(a: { ns: string; ifname: string; addr?: string }, b: { ns: string; ifname: string; addr?: string }): void {
    run('ip', ['-n', this.ns(a.ns), 'link', 'add', a.ifname, 'type', 'veth', 'peer', 'name', b.ifname, 'netns', this.ns(b.ns)]);
    for (const end of [a, b]) {
      if (end.addr) this.ip(end.ns, 'addr', 'add', end.addr, 'dev', end.ifname);
      this.ip(end.ns, 'link', 'set', end.ifname, 'up');
    }
  }

  spawn(name: string | undefined, cmd: string, args: string[], label: string, env: NodeJS.ProcessEnv = {}): Daemon {
    const logFile = join(this.dir, `${label}.log`);
    const out = createWriteStream(logFile);
    const argv = name ? ['netns', 'exec', this.ns(name), cmd, ...args] : [cmd, ...args];
    const proc = spawn(name ? 'ip' : argv.shift()!, name ? argv : argv, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    proc.stdout!.pipe(out, { end: false });
    proc.stderr!.pipe(out, { end: false });
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    const read = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
    const d: Daemon = {
      proc,
      logFile,
      log: read,
      waitFor: (pattern, timeoutMs = 15_000) =>
        new Promise((resolve, reject) => {
          const deadline = Date.now() + timeoutMs;
          let gone = false;
          void exited.then(() => (gone = true));
          const poll = () => {
            const text = read();
            const m = text.match(pattern);
            if (m) return resolve(m[0]);
            if (gone) return reject(new Error(`${label} exited before ${pattern}; log:\n${text.slice(-3000)}`));
            if (Date.now() > deadline) return reject(new Error(`${label}: no ${pattern} within ${timeoutMs} ms; log:\n${text.slice(-3000)}`));
            setTimeout(poll, 50);
          };
          poll();
        }),
      stop: async (signal = 'SIGTERM') => {
        if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
        proc.kill(signal);
        const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
        const code = await exited;
        clearTimeout(t);
        return code;
      },
    };
    this.daemons.push(d);
    return d;
  }

  async cleanup(): Promise<void> {
    for (const d of this.daemons.reverse()) await d.stop().catch(() => undefined);
    // Daemons started with `ip netns exec` may leave children; kill whatever still lives in our namespaces.
    for (const ns of this.namespaces) {
      const pids = run('ip', ['netns', 'pids', ns], { allowFail: true }).split('\n').filter(Boolean);
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
      run('ip', ['netns', 'del', ns], { allowFail: true });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export const PODBOOT = new URL('../../dist/src/cli/main.js', import.meta.url).pathname;

/** The built CLI must exist: `npm test` builds first; a bare `vitest run` of one file needs `npm run build`. */
export function requireBuild(): void {
  if (!existsSync(PODBOOT)) throw new Error(`${PODBOOT} missing: run npm run build first`);
}
