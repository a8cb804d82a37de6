// `podboot serve --image-check-interval`: the central node checks its pods'
// cached image copies on a schedule. A real serve (its pod as its own
// unprivileged user, as in production), a copy onboarded from a real
// catalog, one byte flipped: the next scheduled run moves it aside and
// places it again (owned by the pod's user), the pod's database gets the
// event, and the API's /metrics counts the repair.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../../src/catalog/catalog.js';
import { openPodState } from '../../../src/store/pod-state.js';
import { admitSigned } from '../../helpers/catalog.js';
import { captureLogger } from '../../helpers/logs.js';
import { Lab, PODBOOT, requireBuild, type Daemon } from '../../helpers/netns.js';

const BASE = 30_000 + (process.pid % 4_000) * 4;
const POD = `apiVersion: podboot/v1
kind: Pod
metadata: { name: rack-v }
spec:
  listen: { address: 127.0.0.1, dhcpPort: ${BASE}, tftpPort: ${BASE + 1}, httpPort: ${BASE + 2}, httpsPort: ${BASE + 3} }
  relays: [127.81.0.1]
  subnets:
    - { cidr: 127.81.0.0/24, gateway: 127.81.0.1, pool: 127.81.0.100-127.81.0.199 }
  stage2: { image: lab-os, version: "3.1" }
`;

describe('podboot serve checks the cached image copies on a schedule', () => {
  const lab = new Lab('pc-serve');
  const state = join(lab.dir, 'state');
  const catalogDir = join(lab.dir, 'catalog');
  const ca = join(lab.dir, 'ca');
  const copy = () => join(state, 'rack-v', 'images', 'lab-os@3.1', 'image');
  let central: Daemon;
  let imageSha: string;

  const podboot = (...args: string[]) => {
    const r = spawnSync(process.execPath, [PODBOOT, ...args], { cwd: lab.dir, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, `${args.join(' ')}\n${r.stdout}${r.stderr}`).toBe(0);
    return r.stdout;
  };

  beforeAll(async () => {
    requireBuild();
    podboot('ca', 'init', '--out', ca, '--org', 'Serve Check Test');
    podboot('ca', 'issue-signer', 'ci', '--ca', ca);
    const image = randomBytes(1 << 20);
    imageSha = createHash('sha256').update(image).digest('hex');
    writeFileSync(join(lab.dir, 'lab-os.img'), image);
    podboot('sign', 'lab-os.img', '--cert', `${ca}/signers/ci.chain.pem`, '--key', `${ca}/signers/ci.key`, '--name', 'lab-os', '--version', '3.1', '--pods', 'rack-v');
    const { log } = captureLogger({ component: 'catalog' });
    const catalog = await Catalog.open(catalogDir, log);
    try {
      await admitSigned(catalog, join(lab.dir, 'lab-os.img'), readFileSync(join(ca, 'root.pem')));
    } finally {
      catalog.close();
    }
    const pods = join(lab.dir, 'pods');
    mkdirSync(pods);
    writeFileSync(join(pods, 'rack-v.yaml'), POD);
    podboot('images', 'onboard', '--pods', pods, '--ca', join(ca, 'root.pem'), '--catalog', catalogDir, '--state', state);
    central = lab.spawn(
      undefined,
      process.execPath,
      [PODBOOT, 'serve', '--pods', pods, '--state', state, '--ca', ca, '--api', '127.0.0.1:0', '--no-limits', '--catalog', catalogDir, '--image-check-interval', '2s'],
      'central',
    );
    await central.waitFor(/pod instance ready/, 60_000);
  });

  afterAll(async () => {
    await lab.cleanup();
  });

  it('repairs a flipped byte at its next run: aside, placed again for the pod user, an event, a metric', async () => {
    const fd = openSync(copy(), 'r+');
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, 4321);
    b[0]! ^= 0x01;
    writeSync(fd, b, 0, 1, 4321);
    closeSync(fd);

    const line = await central.waitFor(/\{[^\n]*"msg":"cached image copy placed again from the catalog"[^\n]*/, 15_000);
    expect(JSON.parse(line)).toMatchObject({ node: 'central', component: 'image-check', pod: 'rack-v', image: 'lab-os@3.1', sha256: imageSha });
    expect(createHash('sha256').update(readFileSync(copy())).digest('hex')).toBe(imageSha);
    expect(readdirSync(join(state, 'rack-v', 'images', '.quarantine'))).toEqual([expect.stringMatching(/^lab-os@3\.1\.\d{4}-\d\d-\d\dT[\d-]+Z$/)]);
    // The pod reads its copy as its own user: the new copy is handed to it like the rest of its state.
    const podUid = statSync(join(state, 'rack-v')).uid;
    expect(podUid).not.toBe(0); // serve as root runs the pod as its own user (--pod-user auto)
    expect(statSync(copy()).uid).toBe(podUid);
    expect(statSync(join(state, 'rack-v', 'images', 'lab-os@3.1')).uid).toBe(podUid);

    const s = openPodState(join(state, 'rack-v'), { readonly: true });
    try {
      expect(s?.events(undefined, 50).find((e) => e.kind === 'image-repaired')).toMatchObject({ mac: '', detail: expect.stringMatching(/^lab-os@3\.1: image has sha256 /) });
    } finally {
      s?.close();
    }

    const api = JSON.parse(readFileSync(join(state, 'central', 'api.json'), 'utf8')) as { url: string; ca: string; tokenFile: string };
    const token = readFileSync(api.tokenFile, 'utf8').trim();
    const metrics = spawnSync('curl', ['-sS', '--cacert', api.ca, '-H', `Authorization: Bearer ${token}`, `${api.url}/metrics`], { encoding: 'utf8' }).stdout;
    // Repaired at one run, good at the runs after it (every 2 s): either way the pod's copy is counted.
    expect(metrics).toMatch(/^podboot_image_copies\{pod="rack-v",status="(repaired|ok)"\} 1$/m);
    expect(metrics).toMatch(/^podboot_image_copies\{pod="rack-v",status="unrepairable"\} 0$/m);
  });
});
