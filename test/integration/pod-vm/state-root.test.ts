// Where state goes when --state is not given, and a state root the pods'
// own users cannot reach: refused at start with the directory to fix.
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultStateRoot } from '../../../src/config/state-root.js';
import { PODBOOT, requireBuild } from '../../helpers/netns.js';
import { runProcess } from '../../helpers/tftp-lab.js';

const tmp = mkdtempSync(join(tmpdir(), 'pbv-stateroot-'));
chmodSync(tmp, 0o711);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('the state root', () => {
  it('defaults to /var/lib/podboot as root, ./state for anyone else; PODBOOT_STATE wins', () => {
    expect(defaultStateRoot({}, 0)).toBe('/var/lib/podboot');
    expect(defaultStateRoot({}, 1000)).toBe('state');
    expect(defaultStateRoot({ PODBOOT_STATE: '/srv/pb' }, 0)).toBe('/srv/pb');
  });

  it('serve as root refuses a state root under a directory only its owner may enter, naming it, before any pod starts', async () => {
    requireBuild();
    const closed = join(tmp, 'closed');
    mkdirSync(closed);
    chmodSync(closed, 0o700);
    const r = await runProcess(process.execPath, [PODBOOT, 'serve', '--state', join(closed, 'state'), '--api', 'off'], 20_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`must pass through ${closed} (mode 0700)`);
    expect(r.stderr).toContain(`chmod o+x ${closed}`);
  });
});
