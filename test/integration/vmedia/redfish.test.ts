// `podboot nodes vmedia-boot` against the mock BMC (test/helpers/redfish-bmc.ts),
// and the same three steps done by two independent Redfish clients from
// Debian, python3-sushy (the client of OpenStack Ironic) and redfishtool
// (DMTF's): the BMC must be asked the same things by all three, so the mock
// is not merely agreeing with our own reading of the schema. Also: the
// password and the token never show in podboot's output, a wrong password is
// a clear failure, a mounted medium is ejected first, and a BMC entry with
// plainHttpMedia is handed an http:// URL.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { checkToken } from '../../../src/install/token.js';
import { PODBOOT, requireBuild } from '../../helpers/netns.js';
import { MockBmc, type RecordedRequest } from '../../helpers/redfish-bmc.js';

const A = '52:54:00:79:00:10';
const B = '52:54:00:79:00:11';
const PASSWORD = `pw-${randomBytes(6).toString('hex')}`;

let dir: string;
let state: string;
let secret: Buffer;
let bmc: MockBmc;
let bmcUrl: string;

const podYaml = (url: string, pwFile: string) => `apiVersion: podboot/v1
kind: Pod
metadata: { name: rack-r }
spec:
  listen: { address: 10.99.0.1 }
  relays: [10.20.0.1]
  subnets:
    - { cidr: 10.20.0.0/24, gateway: 10.20.0.1, pool: 10.20.0.100-10.20.0.199 }
  nodes:
    - { mac: "${A}", hostname: alpha, address: 10.20.0.10, bmc: { address: "${url}", username: admin, passwordFile: ${pwFile} } }
    - { mac: "${B}", hostname: bravo, address: 10.20.0.11, bmc: { address: "${url}", username: admin, passwordFile: ${pwFile}, plainHttpMedia: true } }
`;

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Asynchronously: the mock BMC answers from this very process, so a blocking spawn would wait on itself. */
function run(cmd: string, args: string[]): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', cwd: dir }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ status: typeof code === 'number' ? code : 1, stdout, stderr });
    });
  });
}

const podboot = (...args: string[]) => run(process.execPath, [PODBOOT, ...args]);

function vmediaBoot(server: string, pwFile = join(dir, 'bmc.password')) {
  writeFileSync(join(dir, 'pod.yaml'), podYaml(bmcUrl, pwFile));
  return podboot('nodes', 'vmedia-boot', '--pod', 'rack-r', server, '--state', state, '--pod-file', join(dir, 'pod.yaml'));
}

/** What a client asked the BMC to do, in a form two clients can be compared by. */
const asked = (r: RecordedRequest) => ({ method: r.method, path: r.path, body: r.body });

beforeAll(async () => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'vm-redfish-'));
  state = join(dir, 'state');
  // The pod's token secret, as a pod makes it at first start (no running pod needed to mint).
  mkdirSync(join(state, 'rack-r'), { recursive: true });
  secret = randomBytes(32);
  writeFileSync(join(state, 'rack-r', 'token.key'), secret, { mode: 0o600 });
  writeFileSync(join(dir, 'bmc.password'), `${PASSWORD}\n`, { mode: 0o600 });
});

afterEach(async () => {
  await bmc?.stop();
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function freshBmc(): Promise<void> {
  bmc = new MockBmc({ username: 'admin', password: PASSWORD });
  bmcUrl = await bmc.start();
}

describe('Redfish virtual media boot', () => {
  let podbootAsked: ReturnType<typeof asked>[];
  let image: string;

  it('podboot mounts the server’s ISO URL in the CD slot, sets a one-time boot from Cd and powers the server on', async () => {
    await freshBmc();
    const r = await vmediaBoot('alpha');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`${A}: /redfish/v1/Managers/1/VirtualMedia/Cd1 holds https://10.99.0.1:443/vmedia/525400790010.iso; boot once from Cd; On sent to /redfish/v1/Systems/1`);
    podbootAsked = bmc.actions().map(asked);
    image = (podbootAsked[0]!.body as { Image: string }).Image;
    expect(podbootAsked).toEqual([
      { method: 'POST', path: '/redfish/v1/Managers/1/VirtualMedia/Cd1/Actions/VirtualMedia.InsertMedia', body: { Image: image } },
      { method: 'PATCH', path: '/redfish/v1/Systems/1', body: { Boot: { BootSourceOverrideTarget: 'Cd', BootSourceOverrideEnabled: 'Once' } } },
      { method: 'POST', path: '/redfish/v1/Systems/1/Actions/ComputerSystem.Reset', body: { ResetType: 'On' } },
    ]);
    // The USB slot was looked at and passed over: only the CD slot takes an ISO.
    expect(bmc.requests.some((q) => q.path.endsWith('/Usb1'))).toBe(true);
    expect(bmc.requests.every((q) => q.auth === 'basic')).toBe(true);
    // The token in the URL is an install token for this server, from the pod's secret, good for an hour at most.
    const token = decodeURIComponent(new URL(image).searchParams.get('token')!);
    const c = checkToken(secret, token, Math.floor(Date.now() / 1000));
    expect(c.ok && c.claims).toMatchObject({ scope: 'install', mac: A, attempt: 1 });
    expect(c.ok && c.claims.expires).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 3600);
    // Neither secret in what podboot prints or logs.
    for (const out of [r.stdout, r.stderr]) {
      expect(out).not.toContain(PASSWORD);
      expect(out).not.toContain(token.slice(-43));
    }
    expect(JSON.parse(r.stderr.trim().split('\n').pop()!)).toMatchObject({ pod: 'rack-r', node: A, msg: 'vmedia boot requested' });
    expect(bmc.state).toMatchObject({ power: 'On', inserted: true, image, override: { target: 'None' } });
  });

  it('python3-sushy (Ironic’s client) asks the mock BMC the same three things', async () => {
    await freshBmc();
    const script = `
import sushy, sys
from sushy import auth
s = sushy.Sushy(sys.argv[1] + '/redfish/v1', auth=auth.BasicAuth('admin', sys.argv[2]))
system = s.get_system('/redfish/v1/Systems/1')
manager = s.get_manager('/redfish/v1/Managers/1')
cd = manager.virtual_media.get_member('/redfish/v1/Managers/1/VirtualMedia/Cd1')
cd.insert_media(sys.argv[3])
system.set_system_boot_options(target=sushy.BOOT_SOURCE_TARGET_CD, enabled=sushy.BOOT_SOURCE_ENABLED_ONCE)
system.reset_system(sushy.RESET_ON)
print('ok')
`;
    const r = await run('/usr/bin/python3', ['-c', script, bmcUrl, PASSWORD, image]);
    expect(r.status, r.stderr).toBe(0);
    expect(bmc.actions().map(asked)).toEqual(podbootAsked);
  });

  it('redfishtool (DMTF’s client) asks the same', async () => {
    await freshBmc();
    const host = bmcUrl.replace('http://', '');
    const tool = async (...args: string[]) => {
      const r = await run('redfishtool', ['-r', host, '-u', 'admin', '-p', PASSWORD, '-S', 'Never', '-A', 'Basic', ...args]);
      expect(r.status, `${args.join(' ')}\n${r.stdout}${r.stderr}`).toBe(0);
    };
    // redfishtool has no virtual media subcommand: the action by its raw URI, as its manual shows for any action.
    await tool('raw', 'POST', '/redfish/v1/Managers/1/VirtualMedia/Cd1/Actions/VirtualMedia.InsertMedia', '-d', JSON.stringify({ Image: image }));
    await tool('Systems', '-I', '1', 'setBootOverride', 'Once', 'Cd');
    await tool('Systems', '-I', '1', 'reset', 'On');
    expect(bmc.actions().map(asked)).toEqual(podbootAsked);
  });

  it('a medium already in the slot is ejected first; plainHttpMedia hands the BMC an http:// URL', async () => {
    await freshBmc();
    bmc.state.inserted = true;
    bmc.state.image = 'http://elsewhere/old.iso';
    bmc.state.power = 'On';
    const r = await vmediaBoot(B);
    expect(r.status, r.stderr).toBe(0);
    const acts = bmc.actions().map(asked);
    expect(acts.map((a) => `${a.method} ${a.path.split('/').pop()}`)).toEqual(['POST VirtualMedia.EjectMedia', 'POST VirtualMedia.InsertMedia', 'PATCH 1', 'POST ComputerSystem.Reset']);
    expect((acts[1]!.body as { Image: string }).Image).toMatch(/^http:\/\/10\.99\.0\.1:80\/vmedia\/525400790011\.iso\?token=pb1\.install\.525400790011\./);
    expect(acts[3]!.body).toEqual({ ResetType: 'ForceRestart' });
  });

  it('a wrong password fails naming the BMC’s 401, without the password; a missing password file is named', async () => {
    await freshBmc();
    const wrong = join(dir, 'wrong.password');
    writeFileSync(wrong, 'not-the-password\n');
    const r = await vmediaBoot('alpha', wrong);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/podboot nodes vmedia-boot: BMC http:\/\/127\.0\.0\.1:\d+: GET \/redfish\/v1\/Systems: HTTP 401: authentication required/);
    expect(r.stderr).not.toContain('not-the-password');
    expect(bmc.actions()).toEqual([]);
    const missing = await vmediaBoot('alpha', join(dir, 'nope.password'));
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain(`bmc.passwordFile ${join(dir, 'nope.password')}: ENOENT`);
    expect(readFileSync(join(dir, 'bmc.password'), 'utf8')).toContain(PASSWORD);
  });
});
