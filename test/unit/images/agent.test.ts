// The stage1 agent (images/stage1/podboot-agent.sh) run on the host with the
// host's sh, curl and openssl against a small HTTPS server on 127.0.0.1 that
// speaks the pod's API (install token → session exchange, events, stage2
// files with Range, kickstart, session refresh; test/helpers/agent-rig.ts), with certificates and signatures made by podboot itself. Each
// failure mode must be reported with its reason and must never run the
// kickstart (the only thing that would touch a disk).
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeInitramfs } from '../../../src/images/cpio.js';
import { STAGE1_DIR } from '../../global-setup.js';
import { AgentRig, REFRESHED, REPO, SESSION, type Stage2, TOKEN } from '../../helpers/agent-rig.js';
import { forgeServiceCaSigner } from '../../helpers/forged-signer.js';

const rig = new AgentRig('agent-test-');
const { tmp, ca } = rig;
const signed = (name: string, content: Buffer, extra: string[] = []) => rig.sign(name, content, extra);
const podboot = (...args: string[]) => rig.podboot(...args);
const image = Buffer.alloc(300_000);
for (let i = 0; i < image.length; i++) image[i] = (i * 7919) & 0xff;

beforeAll(() => rig.start('Agent Test'), 60_000);
afterAll(() => rig.stop());

/** The kickstart the server hands out: records what it was given, instead of writing a disk. */
const recordingKickstart = (out: string, exit = 0) => `#!/bin/sh
echo "kickstart running"
{ echo "image=$PODBOOT_IMAGE"; echo "sha=$(sha256sum "$PODBOOT_IMAGE" | cut -d' ' -f1)"; echo "pod=$PODBOOT_POD"; echo "token=$PODBOOT_TOKEN"; } > ${out}
exit ${exit}
`;

// made once: shells() links busybox's applets into one directory
const SHELLS = rig.shells(['curl', 'openssl']);

for (const shell of SHELLS)
  describe(`stage1 agent against the pod API (${shell.name})`, () => {
    const tag = shell.name.replace(/\W+/g, '-');
    it('verifies, runs the kickstart with the verified image, reports every state in order', async () => {
      const work = join(tmp, `w-${tag}-ok`);
      const out = join(tmp, `ks-${tag}-ok.txt`);
      rig.reset(signed('ok', image, ['--pods', 'rack-x,rack-t', '--not-after', '30d']), recordingKickstart(out));
      const r = await rig.runAgent(shell, work);
      expect(r.code, r.out).toBe(0);
      expect(rig.states()).toEqual(['stage1', 'stage2-fetched', 'verified', 'installing', 'installed']);
      expect(r.out).toMatch(/podboot-stage1: verified lab 2\.1 sha256=/);
      expect(r.out).toMatch(/podboot-stage1: installed/);
      expect(r.out).toMatch(/kickstart running/);
      const ks = readFileSync(out, 'utf8');
      expect(ks).toContain(`image=${work}/image`);
      expect(ks).toContain(`sha=${createHash('sha256').update(image).digest('hex')}`);
      expect(ks).toContain('pod=rack-t');
      // The install token went to the exchange only, first; then the session; after the refresh, the new one.
      expect(rig.requests[0]).toMatchObject({ path: '/v1/session', auth: `Bearer ${TOKEN}` });
      expect(rig.requests.filter((q) => q.auth === `Bearer ${TOKEN}`)).toHaveLength(1);
      expect(rig.requests.slice(1).every((q) => q.auth === `Bearer ${SESSION}` || q.auth === `Bearer ${REFRESHED}`)).toBe(true);
      expect(rig.requests.find((q) => q.path === '/v1/stage2/image')!.auth).toBe(`Bearer ${REFRESHED}`);
      expect(rig.events[0]!.auth).toBe(`Bearer ${SESSION}`);
      expect(ks).toContain(`token=${REFRESHED}`);
      expect(ks).not.toContain(TOKEN);
    });

    it('retries an exchange whose answer was cut off and goes on with the session it gets', async () => {
      rig.reset(signed('cut', image), recordingKickstart(join(tmp, `ks-${tag}-cut.txt`)));
      rig.sessionMode = 'cut';
      const r = await rig.runAgent(shell, join(tmp, `w-${tag}-cut`), { PODBOOT_RETRIES: '3' });
      expect(r.code, r.out).toBe(0);
      expect(rig.exchanges).toBe(2);
      expect(r.out).toMatch(/session exchange: HTTP 000/);
      expect(rig.states()).toEqual(['stage1', 'stage2-fetched', 'verified', 'installing', 'installed']);
      expect(rig.events[0]!.auth).toBe(`Bearer ${SESSION}`);
    });

    it('PODBOOT_RETRIES=0 means no retry, not no try: the exchange is made once', async () => {
      rig.reset(signed('noretry', image), recordingKickstart(join(tmp, `ks-${tag}-noretry.txt`)));
      const r = await rig.runAgent(shell, join(tmp, `w-${tag}-noretry`), { PODBOOT_RETRIES: '0' });
      expect(r.code, r.out).toBe(0);
      expect(rig.exchanges).toBe(1);
    });

    it('a refused exchange (a used install token) stops at once: no retry, no download, no kickstart', async () => {
      rig.reset(signed('replay', image), recordingKickstart(join(tmp, `ks-${tag}-replay.txt`)));
      rig.sessionMode = 'refuse';
      const r = await rig.runAgent(shell, join(tmp, `w-${tag}-replay`), { PODBOOT_RETRIES: '3' });
      expect(r.code).toBe(1);
      expect(rig.exchanges).toBe(1);
      expect(r.out).toMatch(/podboot-stage1: FAILED session: HTTP 401: \{error:install token already used\}/);
      expect(rig.requests.map((q) => q.path)).toEqual(['/v1/session']);
    });

    it('resumes a partly downloaded image with a Range request', async () => {
      const work = join(tmp, `w-${tag}-resume`);
      mkdirSync(work, { recursive: true });
      rig.reset(signed('resume', image), recordingKickstart(join(tmp, `ks-${tag}-resume.txt`)));
      writeFileSync(join(work, 'image'), image.subarray(0, 100_000));
      const r = await rig.runAgent(shell, work);
      expect(r.code, r.out).toBe(0);
      expect(rig.requests.find((q) => q.path === '/v1/stage2/image')!.range).toBe('bytes=100000-');
      expect(readFileSync(join(work, 'image')).equals(image)).toBe(true);
    });

    const refused: [string, () => Stage2, RegExp, RegExp][] = [
      [
        'one flipped byte in the image',
        () => {
          const s = signed('flip', image);
          const bad = Buffer.from(s.image);
          bad[1234]! ^= 0x01;
          return { ...s, image: bad };
        },
        /^digest$/,
        /image sha256 [0-9a-f]{64}, the manifest says/,
      ],
      [
        'an image cut short',
        () => {
          const s = signed('short', image);
          return { ...s, image: s.image.subarray(0, 200_000) };
        },
        /^digest$/,
        /image is 200000 bytes, the manifest says 300000/,
      ],
      ['an image for other pods', () => signed('otherpod', image, ['--pods', 'rack-a,rack-b']), /^manifest$/, /not for pod rack-t \(pods: rack-a rack-b\)/],
      [
        'a manifest from another signature (swapped manifests)',
        () => {
          const a = signed('swap-a', image);
          const b = signed('swap-b', Buffer.from('other image'));
          return { ...a, manifestP7s: b.manifestP7s };
        },
        /^signature$/,
        /manifest\.json\.p7s/,
      ],
      [
        'a signer from another CA',
        () => {
          const other = join(tmp, 'other-ca');
          if (!existsSync(other)) {
            podboot('ca', 'init', '--out', other, '--org', 'Intruder');
            podboot('ca', 'issue-signer', 'ci', '--ca', other);
          }
          const dir = join(tmp, 'img-intruder');
          mkdirSync(dir, { recursive: true });
          const img = join(dir, 'stage2.img');
          writeFileSync(img, image);
          podboot('sign', img, '--cert', `${other}/signers/ci.chain.pem`, '--key', `${other}/signers/ci.key`, '--name', 'lab', '--version', '2.1');
          return { image, imageP7s: readFileSync(`${img}.p7s`), manifest: readFileSync(`${img}.manifest.json`), manifestP7s: readFileSync(`${img}.manifest.json.p7s`) };
        },
        /^signature$/,
        /manifest\.json\.p7s/,
      ],
      [
        'a signer without the code-signing purpose (the pod TLS certificate)',
        () => {
          const s = signed('tlssigned', image);
          const dir = join(tmp, 'img-tlssigned');
          const sign = (file: string) => rig.signCms(file, 'servers/rack-t', 'service-ca.pem');
          copyFileSync(join(dir, 'stage2.img.manifest.json'), join(dir, 'm.json'));
          return { ...s, imageP7s: sign(join(dir, 'stage2.img')), manifestP7s: sign(join(dir, 'm.json')) };
        },
        /^signature$/,
        /no code-signing extended key usage/,
      ],
      [
        // What a holder of service-ca.key (the central node's run-time key) could make: OpenSSL alone accepts it.
        'a code signer issued by the service TLS CA, claiming codeSigning',
        () => {
          const dir = join(tmp, 'img-forged');
          mkdirSync(dir, { recursive: true });
          const f = forgeServiceCaSigner(ca, dir);
          const img = join(dir, 'stage2.img');
          writeFileSync(img, image);
          podboot('sign', img, '--cert', f.chain, '--key', f.key, '--name', 'lab', '--version', '2.1');
          return { image, imageP7s: readFileSync(`${img}.p7s`), manifest: readFileSync(`${img}.manifest.json`), manifestP7s: readFileSync(`${img}.manifest.json.p7s`) };
        },
        /^signature$/,
        /manifest\.json\.p7s: signer issued by .*service TLS CA, which is not the code-signing CA \(its extended key usage: TLS Web Server Authentication\)/,
      ],
    ];

    for (const [what, make, reason, detail] of refused) {
      it(`refuses ${what}: reports failed, never runs the kickstart`, async () => {
        const out = join(tmp, `ks-${tag}-${what.replace(/\W+/g, '-')}.txt`);
        rig.reset(make(), recordingKickstart(out));
        const r = await rig.runAgent(shell, join(tmp, `w-${tag}-${what.replace(/\W+/g, '-')}`));
        expect(r.code, r.out).toBe(1);
        const failed = rig.events.find((e) => (e.body as { state: string }).state === 'failed')!.body as { reason: string; detail: string };
        expect(failed.reason).toMatch(reason);
        expect(failed.detail).toMatch(detail);
        expect(r.out).toMatch(new RegExp(`podboot-stage1: FAILED ${failed.reason}: `));
        expect(rig.states()).not.toContain('installing');
        expect(rig.states()).not.toContain('verified');
        expect(existsSync(out)).toBe(false);
        expect(rig.requests.some((q) => q.path === '/v1/kickstart')).toBe(false);
      });
    }

    it('refuses an expired image (notAfter passed)', async () => {
      // A correctly signed manifest whose notAfter is in the past: re-signed with the CI key by openssl (accepted like podboot's own).
      const s = signed('expired', image, ['--not-after', '30d']);
      const dir = join(tmp, 'img-expired');
      const m = JSON.parse(s.manifest.toString()) as { notAfter: string };
      m.notAfter = '2001-02-03T04:05:06.000Z';
      writeFileSync(join(dir, 'old.json'), JSON.stringify(m, null, 2));
      const p7s = rig.signCms(join(dir, 'old.json'));
      rig.reset({ ...s, manifest: readFileSync(join(dir, 'old.json')), manifestP7s: p7s }, recordingKickstart(join(tmp, `ks-${tag}-exp.txt`)));
      const r = await rig.runAgent(shell, join(tmp, `w-${tag}-exp`));
      expect(r.code, r.out).toBe(1);
      expect(r.out).toMatch(/podboot-stage1: FAILED manifest: lab 2\.1 expired at 2001-02-03T04:05:06\.000Z/);
      expect(existsSync(join(tmp, `ks-${tag}-exp.txt`))).toBe(false);
      expect(rig.requests.some((q) => q.path === '/v1/stage2/image')).toBe(false);
    });

    it('a download that keeps failing is reported as download', async () => {
      rig.reset(signed('dl', image), recordingKickstart(join(tmp, `ks-${tag}-dl.txt`)));
      rig.missing.add('/v1/stage2/image');
      const r = await rig.runAgent(shell, join(tmp, `w-${tag}-dl`));
      expect(r.code, r.out).toBe(1);
      expect(rig.events.at(-1)!.body).toMatchObject({ state: 'failed', reason: 'download' });
      expect(r.out).toMatch(/podboot-stage1: FAILED download: image: .*404/);
    });

    it('a failing kickstart is reported as install, after installing', async () => {
      rig.reset(signed('ksfail', image), recordingKickstart(join(tmp, `ks-${tag}-fail.txt`), 3));
      const r = await rig.runAgent(shell, join(tmp, `w-${tag}-ksfail`));
      expect(r.code, r.out).toBe(1);
      expect(rig.states()).toEqual(['stage1', 'stage2-fetched', 'verified', 'installing', 'failed']);
      expect(rig.events.at(-1)!.body).toMatchObject({ reason: 'install', detail: expect.stringMatching(/kickstart exited 3/) });
    });

    it('after a failure it waits for the pod: heartbeats until the answer asks for a reboot, then exit 3', async () => {
      rig.reset(signed('retry', image), recordingKickstart(join(tmp, `ks-${tag}-retry.txt`), 3));
      const waited = await rig.runAgent(shell, join(tmp, `w-${tag}-wait`), { PODBOOT_RETRY_WAIT: '2', PODBOOT_RETRY_POLL: '1' });
      // Nobody asks: it heartbeats for the time it was given, then stays stopped.
      expect(waited.code, waited.out).toBe(1);
      expect(rig.states().slice(-3)).toEqual(['failed', 'heartbeat', 'heartbeat']);
      // what it left on the disk is said at once, not after the wait
      expect(waited.out).toMatch(/podboot-stage1: stopped; the disk was not touched\. Waiting for the pod to ask for a new install/);
      rig.reset(signed('retry', image), recordingKickstart(join(tmp, `ks-${tag}-retry2.txt`), 3));
      rig.retryAnswer = '{"state":"failed","action":"reboot"}';
      const r = await rig.runAgent(shell, join(tmp, `w-${tag}-retry`), { PODBOOT_RETRY_WAIT: '30', PODBOOT_RETRY_POLL: '1' });
      expect(r.code, r.out).toBe(3);
      expect(rig.states()).toEqual(['stage1', 'stage2-fetched', 'verified', 'installing', 'failed', 'heartbeat']);
      // with the session the failure was reported with, never the spent install token
      expect(rig.events.at(-1)!.auth).toBe(rig.events.at(-2)!.auth);
      expect(rig.events.at(-1)!.auth).not.toBe(`Bearer ${TOKEN}`);
      expect(r.out).toMatch(/the pod asks for a new install: rebooting/);
    });

    it('refuses a token with characters that could break out of a header', async () => {
      rig.reset(signed('tok', image), recordingKickstart(join(tmp, `ks-${tag}-tok.txt`)));
      const r = await rig.runAgent(shell, join(tmp, `w-${tag}-tok`), { PODBOOT_TOKEN: 'abc"; reboot' });
      expect(r.code).toBe(1);
      expect(rig.requests).toHaveLength(0);
    });

    it('verify.sh works on its own, as operators run it', () => {
      const dir = join(tmp, `standalone-${tag}`);
      mkdirSync(dir, { recursive: true });
      const s = signed('standalone', image, ['--pods', 'rack-t']);
      writeFileSync(join(dir, 'image'), s.image);
      writeFileSync(join(dir, 'image.p7s'), s.imageP7s);
      writeFileSync(join(dir, 'manifest.json'), s.manifest);
      writeFileSync(join(dir, 'manifest.json.p7s'), s.manifestP7s);
      const env = { PATH: shell.path };
      const ok = execFileSync(shell.sh, [join(REPO, 'images/stage1/verify.sh'), 'image', dir, `${ca}/root.pem`, 'rack-t'], { encoding: 'utf8', env });
      expect(ok).toBe('ok: lab 2.1\n');
      let err = '';
      try {
        execFileSync(shell.sh, [join(REPO, 'images/stage1/verify.sh'), 'image', dir, `${ca}/root.pem`, 'rack-zz'], { encoding: 'utf8', env });
      } catch (e) {
        err = (e as { stdout: string }).stdout;
      }
      expect(err).toMatch(/^manifest: lab 2\.1 is not for pod rack-zz/);
    });
  });

// Stage1's init, after its modules: efivars_up loads efivarfs (packed, not in
// load-order) and mounts it only when the kernel shows /sys/firmware/efi;
// after the install drop_network_boot_entries removes the firmware's network
// boot entries with efibootmgr. insmod, mount and efibootmgr are shell
// functions that log their calls (a function wins over a busybox applet, a
// PATH entry does not); efibootmgr keeps its entries in a file.
const FAKES = String.raw`
insmod() {
	echo "insmod $*" >>"$LOG"
	[ -z "$INSMOD_FAILS" ] || { echo "insmod: can't insert '$1': $INSMOD_FAILS" >&2; return 1; }
}
mount() { echo "mount $*" >>"$LOG"; }
efibootmgr() {
	if [ $# -gt 0 ]; then
		echo "efibootmgr $*" >>"$LOG"
		sed -i "/^Boot$3/d" "$VARS"
		return 0
	fi
	[ -f "$VARS" ] || { echo 'EFI variables are not supported on this system.' >&2; return 2; }
	echo "BootCurrent: 0003"
	echo "BootOrder: $(sed -n 's/^Boot\([0-9A-F]\{4\}\).*/\1/p' "$VARS" | tr '\n' , | sed 's/,$//')"
	cat "$VARS"
}
`;

const OVMF_ENTRIES = `Boot0000* UiApp
Boot0001* UEFI QEMU DVD-ROM QM00003 
Boot0002* UEFI Misc Device
Boot0003* UEFI PXEv4 (MAC:5254009B0101)
Boot0004* UEFI PXEv6 (MAC:5254009B0101)
Boot0005* UEFI HTTPv4 (MAC:5254009B0101)
Boot0006  EFI Internal Shell
`;

for (const shell of SHELLS)
  describe(`stage1 init's UEFI steps in lib.sh (${shell.name})`, () => {
    const tag = shell.name.replace(/\W+/g, '-');
    let n = 0;
    /** runs STEPS after sourcing lib.sh and the fakes in a fresh directory holding the built initrd's efivarfs.order */
    function run(steps: string, setup: (dir: string) => void = () => undefined, env: Record<string, string> = {}) {
      const dir = join(tmp, `efi-${tag}-${++n}`);
      mkdirSync(join(dir, 'modules'), { recursive: true });
      const files = decodeInitramfs(readFileSync(join(STAGE1_DIR, 'stage1', 'initrd.img')));
      writeFileSync(join(dir, 'modules', 'efivarfs.order'), files.get('lib/modules/efivarfs.order')!.data);
      writeFileSync(join(dir, 'modules', 'efivarfs.ko'), '');
      writeFileSync(join(dir, 'log'), '');
      setup(dir);
      const r = spawnSync(shell.sh, ['-c', `. "$PODBOOT_LIB/lib.sh"\n${FAKES}\n${steps}`], {
        encoding: 'utf8',
        env: {
          PATH: shell.path,
          PODBOOT_PREFIX: 'podboot-stage1',
          PODBOOT_LIB: join(tmp, 'lib'),
          PODBOOT_MODULES: join(dir, 'modules'),
          LOG: join(dir, 'log'),
          VARS: join(dir, 'vars'),
          D: dir,
          ...env,
        },
      });
      return { dir, out: r.stdout + r.stderr, calls: readFileSync(join(dir, 'log'), 'utf8').split('\n').filter(Boolean) };
    }

    it('UEFI (/sys/firmware/efi present): insmods efivarfs, then mounts it on efivars', () => {
      const { dir, out, calls } = run('efivars_up "$D/efi"; echo "rc=$?"', (d) => mkdirSync(join(d, 'efi', 'efivars'), { recursive: true }));
      expect(out).toBe('rc=0\n');
      expect(calls).toEqual([`insmod ${dir}/modules/efivarfs.ko`, `mount -t efivarfs efivarfs ${dir}/efi/efivars`]);
    });

    it('BIOS (no /sys/firmware/efi): loads and mounts nothing, prints nothing', () => {
      const { out, calls } = run('efivars_up "$D/efi"; echo "rc=$?"');
      expect(out).toBe('rc=2\n');
      expect(calls).toEqual([]);
    });

    it('a failing insmod is said and nothing is mounted', () => {
      const { out, calls } = run('efivars_up "$D/efi"; echo "rc=$?"', (d) => mkdirSync(join(d, 'efi', 'efivars'), { recursive: true }), { INSMOD_FAILS: 'No such device' });
      expect(out).toMatch(/^podboot-stage1: module efivarfs: insmod: can't insert '.*efivarfs\.ko': No such device\nrc=1\n$/);
      expect(calls.filter((c) => c.startsWith('mount'))).toEqual([]);
    });

    it('removes the PXE and HTTP boot entries, keeps the disk and the rest, prints the order left', () => {
      const { out, calls } = run('drop_network_boot_entries; echo "rc=$?"', (d) => writeFileSync(join(d, 'vars'), OVMF_ENTRIES));
      expect(calls).toEqual(['efibootmgr -q -b 0003 -B', 'efibootmgr -q -b 0004 -B', 'efibootmgr -q -b 0005 -B']);
      expect(out).toContain('podboot-stage1: removed network boot entry Boot0003\n');
      expect(out).toContain('podboot-stage1: removed network boot entry Boot0005\n');
      expect(out).toMatch(/podboot-stage1: boot order: 0000,0001,0002,0006\nrc=0\n$/);
    });

    it('without EFI variables efibootmgr fails: said once, nothing removed', () => {
      const { out, calls } = run('drop_network_boot_entries; echo "rc=$?"');
      expect(out).toBe('podboot-stage1: network boot entries left in place: efibootmgr: EFI variables are not supported on this system.\nrc=1\n');
      expect(calls).toEqual([]);
    });
  });
