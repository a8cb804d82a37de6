// The lab's pure parts: option parsing, the address/name plan and the pod
// files it generates (checked by podboot's own validator), phase detection
// from console text, the per-VM outcome, JUnit XML and the timeline, and the
// doctor's apt-get line.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPodFile } from '../../../src/config/load.js';
import { OptionError, allNamespaces, checkTamper, labPrefix, makePlan, parseDuration, parseLabOptions, parseLoss, podYaml, vmResources } from '../../../src/lab/plan.js';
import { consoleFacts, consoleTail, giveUp, junitXml, newProgress, observe, recordPhase, tableLines, timeline } from '../../../src/lab/report.js';
import { installLine, runChecks, type Check } from '../../../src/lab/doctor.js';
import { qemuArgs, sshArgs, varsFile } from '../../../src/lab/boot.js';
import { parseIPv4 } from '../../../src/net/ipv4.js';
import { OVMF_CODE } from '../../../src/lab/firmware.js';

describe('lab options', () => {
  it('durations, losses, counts', () => {
    expect(parseDuration('50ms')).toBe(50);
    expect(parseDuration('0.1s')).toBe(100);
    expect(parseDuration('20')).toBe(20);
    expect(() => parseDuration('fast')).toThrow(OptionError);
    expect(() => parseDuration('11s')).toThrow(/not a WAN/);
    expect(parseLoss('1%')).toBeCloseTo(0.01);
    expect(parseLoss('0.05')).toBeCloseTo(0.05);
    expect(() => parseLoss('60%')).toThrow(OptionError);
    expect(() => parseLoss('-1%')).toThrow(OptionError);
  });

  it('defaults, limits and --tamper', () => {
    expect(parseLabOptions({})).toMatchObject({ racks: 2, nodesPerRack: 1, wanRttMs: 0, wanLoss: 0, firmware: 'bios', stage1: 'ipxe-http' });
    const o = parseLabOptions({ racks: '3', 'nodes-per-rack': '4', 'wan-rtt': '50ms', 'wan-loss': '1%', tamper: '2', stage1: 'tftp' });
    expect(o).toMatchObject({ racks: 3, nodesPerRack: 4, wanRttMs: 50, tamper: 'rack-2', stage1: 'tftp' });
    expect(() => parseLabOptions({ racks: '0' })).toThrow(OptionError);
    expect(() => parseLabOptions({ racks: '201' })).toThrow(OptionError);
    expect(() => parseLabOptions({ 'nodes-per-rack': '1.5' })).toThrow(OptionError);
    expect(() => parseLabOptions({ firmware: 'coreboot' })).toThrow(/bios or uefi/);
    expect(parseLabOptions({ firmware: 'uefi' })).toMatchObject({ firmware: 'uefi', stage1: 'ipxe-http' });
    expect(() => parseLabOptions({ firmware: 'uefi', stage1: 'tftp' })).toThrow(/BIOS only/);
    expect(() => parseLabOptions({ racks: '2', tamper: 'rack-3' })).toThrow(/rack-1\.\.rack-2/);
    expect(parseLabOptions({}).os).toBe('lab');
    expect(parseLabOptions({ os: 'debian', firmware: 'uefi' })).toMatchObject({ os: 'debian', firmware: 'uefi' });
    expect(() => parseLabOptions({ os: 'windows' })).toThrow(/lab or debian/);
    expect(checkTamper('rack-1', 1)).toBe('rack-1');
    expect(() => checkTamper('rack-x', 2)).toThrow(OptionError);
  });
});

describe('lab plan', () => {
  it('names and addresses per rack and VM, prefix per directory', () => {
    const plan = makePlan('/tmp/some-lab', { racks: 2, nodesPerRack: 2 });
    expect(plan.prefix).toMatch(/^pbl[0-9a-f]{6}$/);
    expect(labPrefix('/tmp/some-lab')).toBe(plan.prefix);
    expect(labPrefix('/tmp/other-lab')).not.toBe(plan.prefix);
    expect(allNamespaces(plan)).toEqual([`${plan.prefix}-central`, `${plan.prefix}-wan`, `${plan.prefix}-tor1`, `${plan.prefix}-tor2`]);
    const r2 = plan.racks[1]!;
    expect(r2).toMatchObject({ pod: 'rack-2', podAddress: '10.99.2.1', torWanAddress: '10.99.2.2', gateway: '10.20.2.1', cidr: '10.20.2.0/24' });
    expect(r2.vms.map((v) => [v.name, v.mac, v.address, v.tap])).toEqual([
      ['r2-vm1', '52:54:00:9b:02:01', '10.20.2.10', 'tap1'],
      ['r2-vm2', '52:54:00:9b:02:02', '10.20.2.11', 'tap2'],
    ]);
    expect(r2).toMatchObject({ mgmtCidr: '10.30.2.0/24', mgmtGateway: '10.30.2.1' });
    expect(r2.vms.map((v) => [v.mgmtMac, v.mgmtAddress, v.mgmtTap])).toEqual([
      ['52:54:00:9c:02:01', '10.30.2.10', 'mtap1'],
      ['52:54:00:9c:02:02', '10.30.2.11', 'mtap2'],
    ]);
    // interface names fit IFNAMSIZ (15) at the largest plan
    const big = makePlan('/x', { racks: 200, nodesPerRack: 60 });
    for (const r of big.racks) for (const n of [r.centralIf, r.wanCentralIf, r.wanTorIf, r.torIf, ...r.vms.flatMap((v) => [v.tap, v.mgmtTap])]) expect(n.length).toBeLessThanOrEqual(15);
    expect(new Set(big.racks.flatMap((r) => r.vms.flatMap((v) => [v.mac, v.mgmtMac]))).size).toBe(2 * 200 * 60);
  });

  it('generated pod files pass podboot validate (both stage1 paths)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pb-labplan-'));
    try {
      const plan = makePlan(dir, { racks: 2, nodesPerRack: 3 });
      for (const path of ['ipxe-http', 'tftp'] as const) {
        for (const rack of plan.racks) {
          const file = join(dir, `${rack.pod}-${path}.yaml`);
          writeFileSync(file, podYaml(rack, path));
          const loaded = loadPodFile(file);
          expect(loaded.problems, JSON.stringify(loaded.problems)).toEqual([]);
          expect(loaded.pod?.name).toBe(rack.pod);
          expect(loaded.pod?.listen.address).toBe(rack.podAddress);
        }
      }
      // --os debian: the Debian image, its kickstart, the lab's login and a heartbeat
      const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBXpVu6Z2ODP7mEDNcXDGSM4Oq3I0dfQ1b3mQ9YjXo0n podboot-lab@pbl123456';
      const file = join(dir, 'debian.yaml');
      writeFileSync(file, podYaml(plan.racks[0]!, 'ipxe-http', { sshPublicKey: key }));
      const loaded = loadPodFile(file);
      expect(loaded.problems, JSON.stringify(loaded.problems)).toEqual([]);
      expect(loaded.pod).toMatchObject({
        install: { kickstart: 'debian.sh', disk: '/dev/vda' },
        users: [{ name: 'ops', sshAuthorizedKeys: [key], sudo: true }],
        heartbeatSeconds: 10,
        stage2: { image: 'debian-12', version: '1.0' },
      });
      // each server's management NIC, by its MAC, at its fixed address on the rack's own management network
      expect(loaded.pod?.managementNetwork).toMatchObject({ cidr: '10.30.1.0/24', gateway: parseIPv4('10.30.1.1') });
      const vm = plan.racks[0]!.vms[1]!;
      expect(loaded.pod?.nodes.find((n) => n.mac === vm.mac)?.management).toEqual({ interface: { mac: vm.mgmtMac }, address: parseIPv4('10.30.1.11') });
      expect(podYaml(plan.racks[0]!, 'tftp')).toMatch(/boot: \{ ipxeScript: pxelinux\.0, bios: pxelinux\.0 \}/);
      expect(podYaml(plan.racks[0]!, 'ipxe-http')).not.toMatch(/pxelinux/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const CONSOLE_OK = `SeaBIOS (version 1.16)\r\n\x1b[2JiPXE initialising devices...\r\npodboot-stage1: running mac=52:54:00:9b:01:01 ip=10.20.1.10\r\npodboot-stage1: verified lab-stage2 1.0 sha256=ab\r\npodboot-stage1: installing\r\npodboot-stage1: installed\r\npodboot-stage1: rebooting\r\npodboot-stage2: booted-from-disk host=rack1-vm1\r\npodboot-stage2: reported booted-from-disk\r\n`;
const CONSOLE_TAMPERED = `podboot-stage1: running mac=52:54:00:9b:01:01 ip=10.20.1.10\r\npodboot-stage1: verify image\r\npodboot-stage1: FAILED digest: image sha256 does not match the signed manifest\r\npodboot-stage1: stopped; the disk was not touched. Power-cycle to retry.\r\n`;

describe('lab phases and reports', () => {
  it('console facts: phases, failures with their reason', () => {
    expect(consoleFacts(CONSOLE_OK)).toEqual({ phases: ['stage1', 'verified', 'installed', 'booted-from-disk'], reported: true });
    const t = consoleFacts(CONSOLE_TAMPERED);
    expect(t.phases).toEqual(['stage1']);
    expect(t.failure).toEqual({ reason: 'digest', line: 'podboot-stage1: FAILED digest: image sha256 does not match the signed manifest' });
    expect(consoleFacts('podboot-stage2: FAILED no boot disk\n').failure?.reason).toBe('stage2');
    expect(consoleFacts('').phases).toEqual([]);
    expect(recordPhase('stage2-fetched')).toBe('stage1');
    expect(recordPhase('failed')).toBeUndefined();
  });

  it('booted-from-disk needs the console line and the pod record', () => {
    let p = newProgress('r1-vm1', 'rack-1', '52:54:00:9b:01:01');
    p = observe(p, 3.04, consoleFacts(''), { state: 'pxe' });
    expect(p.at.pxe).toBe(3);
    p = observe(p, 40, consoleFacts(CONSOLE_OK), { state: 'installed' });
    expect(p.outcome.kind).toBe('running');
    expect(p.at).toMatchObject({ 'power-on': 0, pxe: 3, stage1: 40, 'booted-from-disk': 40 });
    p = observe(p, 42, consoleFacts(CONSOLE_OK), { state: 'booted-from-disk' });
    expect(p.outcome.kind).toBe('booted-from-disk');
    // first-seen times do not move once set, and a finished VM is not changed again
    expect(observe(p, 50, consoleFacts(CONSOLE_TAMPERED), undefined)).toBe(p);
  });

  it('--until installed: done once the pod recorded the install, before any boot from disk', () => {
    let p = newProgress('r1-vm1', 'rack-1', '52:54:00:9b:01:01', undefined, 'installed');
    p = observe(p, 30, consoleFacts('podboot-stage1: running mac=x\n'), { state: 'installing' });
    expect(p.outcome.kind).toBe('running');
    p = observe(p, 40, consoleFacts(''), { state: 'installed' });
    expect(p.outcome.kind).toBe('installed');
    expect(p.at.installed).toBe(40);
    const failed = observe(newProgress('r1-vm2', 'rack-1', '52:54:00:9b:01:02', undefined, 'installed'), 30, consoleFacts(CONSOLE_TAMPERED), { state: 'installed' });
    expect(failed.outcome).toMatchObject({ kind: 'failed', reason: 'digest' });
  });

  it('failures: console reason, record reason, timeout and exit name the last phase', () => {
    const base = newProgress('r1-vm1', 'rack-1', '52:54:00:9b:01:01');
    const t = observe(base, 30, consoleFacts(CONSOLE_TAMPERED), undefined);
    expect(t.outcome).toMatchObject({ kind: 'failed', reason: 'digest' });
    expect(observe(base, 30, consoleFacts(''), { state: 'failed', reason: 'signature' }).outcome).toMatchObject({ kind: 'failed', reason: 'signature' });
    const running = observe(base, 30, consoleFacts('podboot-stage1: running mac=x\n'), undefined);
    expect(giveUp(running, 'timeout', 600).outcome).toEqual({ kind: 'failed', reason: 'timeout', message: 'timeout: no booted-from-disk within 600 s (last phase stage1)' });
    expect(giveUp(running, 'exited', 12).outcome).toMatchObject({ reason: 'exited' });
  });

  it('JUnit XML: one testcase per VM; the failure names VM and reason; text escaped', () => {
    let ok = newProgress('r2-vm1', 'rack-2', '52:54:00:9b:02:01');
    ok = observe(ok, 41, consoleFacts(CONSOLE_OK), { state: 'booted-from-disk' });
    const bad = observe(newProgress('r1-vm1', 'rack-1', '52:54:00:9b:01:01'), 30, consoleFacts(CONSOLE_TAMPERED.replace('does not', 'does <not> & "never"')), undefined);
    const xml = junitXml([bad, ok], 45.25, { 'r1-vm1': 'last line <x>' });
    expect(xml).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites tests="2" failures="1" time="45.3">/);
    expect(xml.match(/<testcase /g)).toHaveLength(2);
    expect(xml).toMatch(/<testcase classname="podboot.lab.rack-1" name="r1-vm1 52:54:00:9b:01:01" time="30.0">/);
    expect(xml).toMatch(/<failure type="digest" message="r1-vm1: failed\(digest\): podboot-stage1: FAILED digest: image sha256 does &lt;not&gt; &amp; &quot;never&quot;/);
    expect(xml).toMatch(/last line &lt;x&gt;/);
    expect(xml).not.toMatch(/<not>/);
    // well-formed enough: every element opened is closed
    for (const tag of ['testsuites', 'testsuite', 'testcase', 'failure', 'system-out']) {
      expect((xml.match(new RegExp(`<${tag}[ >]`, 'g')) ?? []).length, tag).toBe((xml.match(new RegExp(`</${tag}>`, 'g')) ?? []).length);
    }
  });

  it('timeline and table', () => {
    const ok = observe(newProgress('r2-vm1', 'rack-2', 'm2'), 41, consoleFacts(CONSOLE_OK), { state: 'booted-from-disk' });
    const bad = observe(newProgress('r1-vm1', 'rack-1', 'm1'), 30, consoleFacts(CONSOLE_TAMPERED), undefined);
    const tl = timeline([bad, ok], '2026-01-01T00:00:00.000Z', 45);
    expect(tl.ok).toBe(false);
    expect(tl.vms['r2-vm1']).toEqual({ rack: 'rack-2', mac: 'm2', result: 'booted-from-disk', phases: { 'power-on': 0, stage1: 41, verified: 41, installed: 41, 'booted-from-disk': 41 } });
    expect(tl.vms['r1-vm1']!.result).toBe('failed(digest)');
    const lines = tableLines([bad, ok], () => 1);
    expect(lines[0]).toMatch(/^VM\s+RACK\s+MAC\s+PHASE\s+SECONDS$/);
    expect(lines[1]).toMatch(/r1-vm1\s+rack-1\s+m1\s+failed\(digest\)\s+1\.0/);
    expect(consoleTail('\x1b[2Ja\r\n\r\nb\r\nc', 2)).toBe('b\nc');
  });
});

describe('lab --os debian: done at ssh-ready', () => {
  const AGENT = `${CONSOLE_OK.split('podboot-stage2')[0]}podboot-node-agent: starting pod=rack-1\r\npodboot-node-agent: booted-from-disk reported host=rack1-vm1\r\n`;

  it("booted-from-disk from the node agent's line or the pod's record; done only once ssh answers with the hostname", () => {
    expect(consoleFacts(AGENT)).toEqual({ phases: ['stage1', 'verified', 'installed', 'booted-from-disk'], reported: true });
    let p = newProgress('r1-vm1', 'rack-1', 'm1', { hostname: 'rack1-vm1' });
    expect(p.goal).toBe('ssh-ready');
    // the image streams while it is checked: installing is not verified yet (the lab stage2 is verified before it installs)
    expect(observe(p, 30, consoleFacts(''), { state: 'installing' }).at).toEqual({ 'power-on': 0, stage1: 30 });
    expect(observe(newProgress('r1-vm1', 'rack-1', 'm1'), 30, consoleFacts(''), { state: 'installing' }).at.verified).toBe(30);
    p = observe(p, 100, consoleFacts(CONSOLE_OK.split('podboot-stage1: rebooting')[0]!), { state: 'booted-from-disk' });
    expect(p.at['booted-from-disk']).toBe(100);
    expect(p.outcome.kind).toBe('running');
    p = observe(p, 110, consoleFacts(''), { state: 'booted-from-disk' }, { error: 'Connection refused' });
    expect(p.outcome.kind).toBe('running');
    // another host's name is not this VM ready
    const wrong = observe(p, 115, consoleFacts(''), { state: 'booted-from-disk' }, { hostname: 'debian' });
    expect(wrong.outcome.kind).toBe('running');
    expect(giveUp(wrong, 'timeout', 1800).outcome).toMatchObject({
      reason: 'timeout',
      message: expect.stringMatching(/no ssh-ready within 1800 s \(last phase booted-from-disk; ssh answered as debian, not rack1-vm1\)/),
    });
    p = observe(p, 120.04, consoleFacts(''), { state: 'booted-from-disk' }, { hostname: 'rack1-vm1' });
    expect(p.outcome.kind).toBe('ssh-ready');
    expect(p.at).toMatchObject({ 'booted-from-disk': 100, 'ssh-ready': 120 });
    const tl = timeline([p], '2026-01-01T00:00:00.000Z', 121);
    expect(tl.ok).toBe(true);
    expect(tl.vms['r1-vm1']).toMatchObject({ result: 'ssh-ready', hostname: 'rack1-vm1', phases: { 'booted-from-disk': 100, 'ssh-ready': 120 } });
    const xml = junitXml([p], 121);
    expect(xml).toMatch(/tests="1" failures="0"/);
    expect(xml).toMatch(/ssh-ready=120s\nssh ready: hostname rack1-vm1/);
  });

  it("the console line alone also counts as booted from disk; ssh before it is not done yet; the pod's failure ends it", () => {
    let p = newProgress('r1-vm1', 'rack-1', 'm1', { hostname: 'rack1-vm1' });
    p = observe(p, 90, consoleFacts(''), { state: 'installed' }, { hostname: 'rack1-vm1' });
    expect(p.at['ssh-ready']).toBe(90);
    expect(p.outcome.kind).toBe('running');
    p = observe(p, 95, consoleFacts(AGENT), { state: 'installed' }, { hostname: 'rack1-vm1' });
    expect(p.outcome.kind).toBe('ssh-ready');
    const f = observe(newProgress('r1-vm1', 'rack-1', 'm1', { hostname: 'rack1-vm1' }), 30, consoleFacts(CONSOLE_TAMPERED), undefined);
    expect(f.outcome).toMatchObject({ kind: 'failed', reason: 'digest' });
  });

  it('ssh runs in the central namespace with the lab key only, no host configuration or known hosts', () => {
    const args = sshArgs('pblabc123-central', '/lab/ssh/id_ed25519', '10.20.1.10');
    expect(args.slice(0, 4)).toEqual(['netns', 'exec', 'pblabc123-central', 'ssh']);
    expect(args.slice(-2)).toEqual(['ops@10.20.1.10', 'hostname']);
    const joined = args.join(' ');
    for (const o of ['-F /dev/null', '-i /lab/ssh/id_ed25519', 'IdentitiesOnly=yes', 'BatchMode=yes', 'UserKnownHostsFile=/dev/null', 'ConnectTimeout=5']) expect(joined).toContain(o);
  });
});

describe('lab doctor', () => {
  it('one apt-get line with each missing package once; informative checks never count', () => {
    const checks: Check[] = [
      { what: 'tc', ok: false, detail: '', pkg: 'iproute2' },
      { what: 'ip', ok: false, detail: '', pkg: 'iproute2' },
      { what: 'dhcrelay', ok: false, detail: '', pkg: 'isc-dhcp-relay' },
      { what: 'curl', ok: true, detail: '', pkg: 'curl' },
      { what: 'kvm', ok: false, detail: '', info: true, pkg: 'qemu-system-x86' },
    ];
    expect(installLine(checks)).toBe('apt-get install -y --no-install-recommends iproute2 isc-dhcp-relay');
    expect(installLine(checks.filter((c) => c.ok || c.info))).toBeUndefined();
  });
});

describe('lab VM firmware', () => {
  const vm = makePlan('/tmp/fw-lab', { racks: 1, nodesPerRack: 1 }).racks[0]!.vms[0]!;
  const pairs = (args: string[]) => args.flatMap((a, i) => (a.startsWith('-') ? [`${a} ${args[i + 1] ?? ''}`] : []));

  it('BIOS: SeaBIOS with the NIC option ROM (iPXE), network then disk, no pflash', () => {
    const args = pairs(qemuArgs(vm, '/d.img', 'tcg'));
    expect(args).toContain('-boot order=nc');
    expect(args).toContain(`-device virtio-net-pci,netdev=n0,mac=${vm.mac}`);
    expect(args.join('\n')).not.toMatch(/pflash|romfile/);
    expect(args).toContain('-m 512');
    expect(args).toContain('-smp 1');
    expect(args.join('\n')).not.toContain('netdev=m0');
    const debian = pairs(qemuArgs(vm, '/d.img', 'tcg', { memMb: vmResources('debian').memMb, cpus: 2, management: true }));
    expect(debian).toContain('-m 1024');
    expect(debian).toContain('-smp 2');
    // the Debian racks' second NIC, on the management bridge, never network-boots
    expect(debian).toContain(`-netdev tap,id=m0,ifname=${vm.mgmtTap},script=no,downscript=no`);
    expect(debian).toContain(`-device virtio-net-pci,netdev=m0,mac=${vm.mgmtMac},romfile=`);
    expect(vmResources('debian').diskBytes).toBe(3 * 1024 ** 3);
    expect(vmResources(undefined)).toEqual({ memMb: 512, diskBytes: 48 * 1024 ** 2 });
  });

  it("UEFI: OVMF's code read-only, the VM's own NVRAM writable, no option ROM, no bootindex", () => {
    const args = pairs(qemuArgs(vm, '/d.img', 'tcg', { uefiVars: '/lab/vms/r1-vm1.vars.fd' }));
    expect(args).toContain(`-drive if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`);
    expect(args).toContain('-drive if=pflash,format=raw,unit=1,file=/lab/vms/r1-vm1.vars.fd');
    expect(args).toContain(`-device virtio-net-pci,netdev=n0,mac=${vm.mac},romfile=`);
    expect(args).toContain('-drive file=/d.img,format=raw,if=virtio');
    expect(args.join('\n')).not.toMatch(/bootindex|-boot /);
    expect(varsFile(vm)).toBe('vms/r1-vm1.vars.fd');
  });

  it('doctor checks the OVMF files and names the ovmf package', () => {
    const ovmf = runChecks().filter((c) => c.pkg === 'ovmf');
    expect(ovmf.map((c) => c.what).sort()).toEqual(['OVMF_CODE_4M.fd', 'OVMF_VARS_4M.fd']);
    expect(ovmf.every((c) => !c.info)).toBe(true);
  });
});
