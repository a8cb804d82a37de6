// Graceful stop: a pod instance told to stop lets a running TFTP transfer
// finish (bounded) before it closes, so a server in the middle of loading
// its stage1 is not cut off by a reload or a rolling restart. Loopback only.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, PODBOOT, requireBuild, type Daemon } from '../../helpers/netns.js';
import { tftpFetch } from '../../helpers/tftp-client.js';
import { patternBytes } from '../../helpers/tftp-lab.js';

const BASE = 30_000 + (process.pid % 5_000) * 4;

describe('graceful stop drains running transfers', () => {
  const lab = new Lab('pbg');
  const state = join(lab.dir, 'state');
  const file = join(lab.dir, 'pod.yaml');
  const data = patternBytes(2 * 1024 * 1024, 7);
  let pod: Daemon;

  beforeAll(async () => {
    requireBuild();
    writeFileSync(
      file,
      `apiVersion: podboot/v1
kind: Pod
metadata:
  name: drain-pod
spec:
  listen: { address: 127.0.0.1, dhcpPort: ${BASE}, tftpPort: ${BASE + 1}, httpPort: ${BASE + 2}, httpsPort: ${BASE + 3} }
  relays: [127.89.0.1]
  subnets:
    - { cidr: 127.89.0.0/16, gateway: 127.89.0.1, pool: 127.89.1.0-127.89.1.250 }
`,
    );
    mkdirSync(join(state, 'drain-pod', 'boot'), { recursive: true });
    writeFileSync(join(state, 'drain-pod', 'boot', 'big.bin'), data);
    pod = lab.spawn(undefined, process.execPath, [PODBOOT, 'pod', 'run', file, '--state', state], 'pod');
    await pod.waitFor(/metrics endpoint listening/, 30_000);
  }, 60_000);

  afterAll(async () => {
    await lab.cleanup();
  });

  it('a transfer under way when SIGTERM arrives completes, then the instance stops', async () => {
    let signalled = false;
    const exited = new Promise<number | null>((r) => pod.proc.once('exit', (code) => r(code)));
    const result = await tftpFetch({
      port: BASE + 1,
      file: 'big.bin',
      // 512-byte blocks, one at a time: 4,096 round trips, plenty of time for the signal to land mid-transfer.
      options: { blksize: 512 },
      timeoutMs: 1000,
      drop: (kind, block) => {
        if (kind === 'data' && block === 20 && !signalled) {
          signalled = true;
          pod.proc.kill('SIGTERM');
        }
        return false;
      },
    });
    expect(signalled).toBe(true);
    expect(result.error).toBeUndefined();
    expect(result.ok).toBe(true);
    expect(result.data.equals(data)).toBe(true);
    expect(await exited).toBe(0);
    expect(pod.log()).toMatch(/"msg":"draining running transfers before stopping"/);
    expect(pod.log()).toMatch(/"msg":"transfers drained"/);
  }, 60_000);
});
