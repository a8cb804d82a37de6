import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { commands } from '../../../src/cli/registry.js';
import { PODBOOT, requireBuild } from '../../helpers/netns.js';

describe('the CLI routing table', () => {
  it('every entry loads a command with a summary, a usage and a run', async () => {
    const names = new Set<string>();
    for (const entry of commands) {
      const name = entry.name.join(' ');
      expect(names.has(name), `${name} twice`).toBe(false);
      names.add(name);
      const cmd = await entry.load();
      expect(cmd.summary, name).toMatch(/\S/);
      expect(cmd.usage, name).toMatch(new RegExp(`^usage: podboot ${name.replace(/[-]/g, '\\-')}\\b`));
      expect(typeof cmd.run, name).toBe('function');
    }
  });

  it('podboot --version prints the version of package.json and exits 0', () => {
    requireBuild();
    const { version } = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = spawnSync(process.execPath, [PODBOOT, flag], { encoding: 'utf8' });
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(`podboot ${version}\n`);
    }
  });

  it('podboot --help lists every command with its summary; an unknown one exits 2', async () => {
    requireBuild();
    const help = spawnSync(process.execPath, [PODBOOT, '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    for (const entry of commands) expect(help.stdout).toContain(`  ${entry.name.join(' ')} `);
    expect(help.stdout).toContain((await commands.find((c) => c.name.join(' ') === 'pod run')!.load()).summary);
    const bad = spawnSync(process.execPath, [PODBOOT, 'pods', 'frobnicate'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^podboot: unknown command 'pods frobnicate'/);
  });

  it('running one command loads only its own modules', () => {
    requireBuild();
    // A module resolve hook that lists every podboot module the process loads.
    const dir = mkdtempSync(join(tmpdir(), 'pb-cli-'));
    try {
      writeFileSync(
        join(dir, 'hooks.mjs'),
        `import { writeSync } from 'node:fs';\nexport async function resolve(s, c, next) { const r = await next(s, c); if (r.url.includes('/dist/src/')) writeSync(2, 'loaded ' + r.url + '\\n'); return r; }\n`,
      );
      writeFileSync(join(dir, 'register.mjs'), `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)});\n`);
      const loaded = (args: string[]) => {
        const r = spawnSync(process.execPath, ['--import', pathToFileURL(join(dir, 'register.mjs')).href, PODBOOT, ...args], { encoding: 'utf8' });
        return r.stderr
          .split('\n')
          .filter((l) => l.startsWith('loaded '))
          .map((l) => l.replace(/^loaded .*\/dist\/src\//, ''));
      };
      const validate = loaded(['validate', 'examples/default-pod.yaml']);
      expect(validate).toContain('cli/commands/validate.js');
      expect(validate.filter((m) => /^(lab|images|pod-vm|api|tftp|http-boot)\/|cli\/commands\/(?!validate)/.test(m))).toEqual([]);
      // A group's own help loads that group's commands, no other.
      const group = loaded(['pods']);
      expect(group).toContain('cli/commands/pods.js');
      expect(group.filter((m) => /^(lab|images|pod-vm|tftp|http-boot)\/|cli\/commands\/(?!pods)/.test(m))).toEqual([]);
      // Help for everything loads every command.
      expect(loaded(['--help'])).toEqual(expect.arrayContaining(['cli/commands/lab.js', 'cli/commands/serve.js', 'cli/commands/pod-run.js']));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
