// A command group typed alone prints its own subcommands (issue 20), and a
// mistyped command is answered with the one it most likely meant.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { didYouMean, groupNames } from '../../../src/cli/help.js';
import { commands } from '../../../src/cli/registry.js';
import { PODBOOT, requireBuild } from '../../helpers/netns.js';

const podboot = (...args: string[]) => spawnSync(process.execPath, [PODBOOT, ...args], { encoding: 'utf8' });

describe('command groups and typos', () => {
  it('every group alone prints its subcommands with their summaries on stdout and exits 2; with --help, 0', async () => {
    requireBuild();
    expect(groupNames()).toEqual(expect.arrayContaining(['pod', 'pods', 'nodes', 'dhcp', 'tftp', 'ca', 'images', 'lab']));
    for (const group of groupNames()) {
      const alone = podboot(group);
      expect(alone.status, group).toBe(2);
      expect(alone.stdout, group).toMatch(new RegExp(`^usage: podboot ${group} <subcommand>`));
      expect(alone.stdout, group).not.toContain('unknown command');
      for (const entry of commands.filter((c) => c.name[0] === group && c.name.length > 1)) {
        expect(alone.stdout, group).toContain(`  ${entry.name.join(' ')} `);
        expect(alone.stdout, group).toContain((await entry.load()).summary);
      }
      // Only this group: not the overview of every command.
      expect(alone.stdout, group).not.toContain('podboot: bare-metal provisioning appliance');
      const help = podboot(group, '--help');
      expect(help.status, group).toBe(0);
      expect(help.stdout).toBe(alone.stdout);
    }
  });

  it('an unknown subcommand of a group names it and shows that group, not the overview', () => {
    requireBuild();
    const r = podboot('pods', 'lst');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^podboot: unknown command 'pods lst'; did you mean pods list\?\n/);
    expect(r.stderr).toContain('  pods rolling-restart ');
    expect(r.stderr).not.toContain('  lab up ');
    const wrongGroup = podboot('pod', 'list');
    expect(wrongGroup.stderr).toMatch(/^podboot: unknown command 'pod list'; did you mean pods list\?/);
    const unknown = podboot('frobnicate');
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toBe("podboot: unknown command 'frobnicate'\n\npodboot --help lists every command.\n");
  });

  it('suggests the closest command or group, and nothing when nothing is close', () => {
    expect(didYouMean(['pods', 'lst'])).toBe('pods list');
    expect(didYouMean(['pod', 'list', '--json'])).toBe('pods list');
    expect(didYouMean(['nodes', 'shwo', 'x'])).toBe('nodes show');
    expect(didYouMean(['nods'])).toBe('nodes');
    expect(didYouMean(['sreve', '--pods', 'd'])).toBe('serve');
    expect(didYouMean(['event'])).toBe('events');
    expect(didYouMean(['pods', 'frobnicate'])).toBeUndefined();
    expect(didYouMean(['frobnicate'])).toBeUndefined();
  });
});
