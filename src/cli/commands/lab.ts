import { parseArgs } from 'node:util';
import { EXIT_FAILURE, EXIT_OK, UsageError, type Command } from '../command.js';
import { OptionError, parseLabOptions, checkTamper } from '../../lab/plan.js';
import { existsSync } from 'node:fs';
import { CommandError, readState, statePath } from '../../lab/sys.js';

// `podboot lab …`: a QEMU rig of racks behind a WAN, for CI and demos
// (docs/lab.md). The work is in src/lab; these parse, dispatch and map
// errors to exit codes (option mistakes are usage errors, 2).

const DEFAULT_DIR = '/run/podboot-lab';
const DIR_HELP = `  --dir DIR         the lab's directory: state file, pods, disks, consoles, logs
                    (default ${DEFAULT_DIR}); one lab at a time per DIR`;

async function guarded(fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof OptionError) throw new UsageError(err.message);
    if (err instanceof CommandError) {
      process.stderr.write(`podboot lab: ${err.message}\n`);
      return EXIT_FAILURE;
    }
    throw err;
  }
}

export const labUpCommand: Command = {
  summary: 'build a lab rig: central node, WAN (delay/loss), racks with dhcrelay',
  usage: `usage: podboot lab up [--racks N] [--nodes-per-rack M] [--wan-rtt 50ms] [--wan-loss 1%] [--wan-rate 10mbit]
                     [--firmware bios|uefi] [--stage1 ipxe-http|tftp] [--os lab|debian]
                     [--tamper RACK] [--dir DIR]

Builds, in network namespaces named after DIR (pbl<hash>-*):
  central   the central node (podboot serve) with one generated pod per rack
            (rack-R listens on 10.99.R.1), trust material (root CA, signer),
            stage1 in each pod's boot tree and the signed lab stage2 (or,
            with --os debian, the signed Debian 12 image)
  wan       between central and each rack: delay and loss (netem when the
            kernel has it, else lab/wan-link.py, a user-space link)
  torR      rack R's bridge br0 10.20.R.1/24, ISC dhcrelay to 10.99.R.1, an
            IPv6 RA; the VMs (10.20.R.10+) are made by \`podboot lab boot\`
Returns once every pod serves; everything made is recorded in DIR/lab-state.json.

  --racks N          racks (pods), default 2
  --nodes-per-rack M VMs per rack, default 1
  --wan-rtt T        round trip added between central and each rack (50ms, 0.1s), default 0
  --wan-loss P       frames lost per direction (1%, 0.01), default 0
  --wan-rate R       bandwidth cap per direction in bits/s (10mbit, 500kbit, 1gbit,
                     2000000; decimal prefixes), default 0: none. Always runs
                     lab/wan-link.py, whose byte counters (DIR/wan/rack-R.json) go
                     into lab boot's timeline and JUnit
  --firmware F       bios (SeaBIOS + QEMU's iPXE ROM, default) or uefi (OVMF and
                     its own PXE client, an NVRAM copy per VM; docs/lab.md, UEFI)
  --stage1 PATH      ipxe-http (iPXE fetches stage1 over HTTP, default) or tftp
                     (pxelinux, kernel and initrd over TFTP; BIOS only)
  --os OS            what the racks install: lab (the small lab stage2, default) or
                     debian: the Debian 12 image (podboot images build-debian, needs
                     mmdebstrap the first time, then cached; kickstart debian.sh),
                     VMs with 1024 MiB and a 3 GiB disk; the servers get the login
                     ops with an ed25519 key made in DIR/ssh/id_ed25519 (printed at
                     the end) and a node agent heartbeat every 10 s
  --tamper RACK      flip one byte of that rack's stage2 copy (rack-1 or 1)
  --seed N           seed of the user-space WAN link's losses, default 1
  --cache DIR        stage1 / stage2 / Debian image cache (default .cache in the package)
${DIR_HELP}`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: {
        racks: { type: 'string' },
        'nodes-per-rack': { type: 'string' },
        'wan-rtt': { type: 'string' },
        'wan-loss': { type: 'string' },
        'wan-rate': { type: 'string' },
        firmware: { type: 'string' },
        stage1: { type: 'string' },
        tamper: { type: 'string' },
        seed: { type: 'string' },
        os: { type: 'string' },
        dir: { type: 'string' },
        cache: { type: 'string' },
      },
      allowPositionals: true,
    });
    if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`);
    return guarded(async () => {
      const lab = parseLabOptions(values);
      const { labUp } = await import('../../lab/up.js');
      const dir = values.dir ?? DEFAULT_DIR;
      const before = existsSync(statePath(dir));
      try {
        await labUp({ dir, lab, ...(values.cache ? { cacheDir: values.cache } : {}) });
      } catch (err) {
        // a half-built rig is recorded: say how to remove it (and keep it, with its logs, for a look first)
        if (before || !existsSync(statePath(dir))) throw err;
        throw new CommandError(`${(err as Error).message}\nwhat was built so far is recorded in ${statePath(dir)}; logs in ${dir}/logs; podboot lab down --dir ${dir} removes it all`);
      }
      return EXIT_OK;
    });
  },
};

export const labBootCommand: Command = {
  summary: "power a lab's VMs on and follow them to booted-from-disk (JUnit, timeline)",
  usage: `usage: podboot lab boot [--dir DIR] [--timeout 600] [--junit FILE] [--timeline FILE] [--tamper RACK]
                       [--keep-running] [--until installed] [--accel tcg|kvm] [--cpus N]

Creates a blank disk and a tap per VM, powers every VM on at once (QEMU,
SeaBIOS + iPXE, -boot order=nc) and follows each one from its serial console
and its pod's record: power-on, pxe, stage1, verified, installed,
booted-from-disk, or failed(reason). A live table on a terminal, one line
per change otherwise. A VM its pod had already installed is put back to PXE
install first (podboot nodes reinstall). Exit 0 only if every VM booted from
its disk and its pod recorded it.

A lab made with --os debian: a VM is done at ssh-ready, when it booted from
its disk (its pod's record or its node agent's console line) and
ssh -i DIR/ssh/id_ed25519 ops@<its management address> (10.30.R.(9+M), a
second NIC on the rack's management bridge), run in the lab's central
namespace, answers \`hostname\` with the VM's hostname; the timeline gets
booted-from-disk and ssh-ready, and the hostname ssh returned.

  --timeout S     give up on VMs not done after S seconds (default 600; 1800 with --os debian)
  --junit FILE    JUnit XML, one testcase per VM (default DIR/vms/junit.xml)
  --timeline FILE JSON: per VM, phase → seconds since power-on (default DIR/vms/timeline.json);
                  with lab/wan-link.py as the WAN, it and the JUnit also get each rack's
                  WAN bytes per direction during the boot (total and HTTPS)
  --tamper RACK   flip one byte of that rack's stage2 copy first: its VMs must fail at verify
  --keep-running  leave the VMs running afterwards (lab down stops them)
  --until installed  a VM is done once its pod recorded the install, not at its
                  first boot from disk (runs that measure the install, not the OS)
  --accel A       tcg (default) or kvm
  --cpus N        virtual CPUs per VM (default 1; under TCG each runs on a host
                  thread of its own: give a lone VM the machine's idle cores)
${DIR_HELP}`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: {
        dir: { type: 'string' },
        timeout: { type: 'string' },
        junit: { type: 'string' },
        timeline: { type: 'string' },
        tamper: { type: 'string' },
        'keep-running': { type: 'boolean' },
        until: { type: 'string' },
        accel: { type: 'string' },
        cpus: { type: 'string' },
      },
      allowPositionals: true,
    });
    if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`);
    const given = values.timeout === undefined ? undefined : Number(values.timeout);
    if (given !== undefined && (!Number.isInteger(given) || given < 1 || given > 86_400)) throw new UsageError(`--timeout must be whole seconds 1..86400, not ${values.timeout}`);
    const accel = values.accel ?? 'tcg';
    if (accel !== 'tcg' && accel !== 'kvm') throw new UsageError(`--accel must be tcg or kvm, not ${accel}`);
    const cpus = values.cpus === undefined ? 1 : Number(values.cpus);
    if (!Number.isInteger(cpus) || cpus < 1 || cpus > 16) throw new UsageError(`--cpus must be a whole number 1..16, not ${values.cpus}`);
    const dir = values.dir ?? DEFAULT_DIR;
    return guarded(async () => {
      const state = readState(dir);
      // a Debian install streams a 1.3 GiB image and boots a whole OS: under TCG that takes several minutes
      const timeout = given ?? (state?.options.os === 'debian' ? 1800 : 600);
      const tamper = values.tamper === undefined ? undefined : checkTamper(values.tamper, state?.options.racks ?? 1);
      const { labBoot } = await import('../../lab/boot.js');
      const r = await labBoot({
        dir,
        timeoutSec: timeout,
        accel,
        cpus,
        display: process.stdout.isTTY ? 'tty' : 'plain',
        ...(values.junit ? { junit: values.junit } : {}),
        ...(values.timeline ? { timeline: values.timeline } : {}),
        ...(tamper ? { tamper } : {}),
        ...(values['keep-running'] ? { keepRunning: true } : {}),
        ...(values.until === undefined ? {} : { until: untilOption(values.until) }),
      });
      return r.ok ? EXIT_OK : EXIT_FAILURE;
    });
  },
};

export const labDownCommand: Command = {
  summary: 'remove every namespace, process, tap and file a lab made (also after a crash)',
  usage: `usage: podboot lab down [--dir DIR]

Stops the VMs, the central node (and its pods), dhcrelay, dnsmasq and the WAN
links recorded in DIR/lab-state.json, kills whatever else runs in the lab's
namespaces (ip netns pids), deletes the namespaces (with their veths, bridges
and taps) and the files the lab made. Without a state file (a crash before it
was written) it still finds the namespaces by the prefix DIR gives them.
Running it again does nothing.

${DIR_HELP}`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, options: { dir: { type: 'string' } }, allowPositionals: true });
    if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`);
    return guarded(async () => {
      const { labDown } = await import('../../lab/down.js');
      const r = await labDown(values.dir ?? DEFAULT_DIR);
      const nothing = !r.processes && !r.namespaces.length && !r.files.length;
      process.stdout.write(nothing ? 'nothing to remove\n' : `removed: ${r.processes} process record(s), namespaces ${r.namespaces.join(' ') || '-'}, ${r.files.length} file(s)\n`);
      return EXIT_OK;
    });
  },
};

export const labDoctorCommand: Command = {
  summary: 'check this machine for what podboot lab needs; prints the apt-get line',
  usage: `usage: podboot lab doctor

Checks root, /dev/net/tun, the programs the lab runs (qemu-system-x86_64,
dhcrelay, dnsmasq, ip, tc, ethtool, python3, mkfs.vfat, mcopy, syslinux,
sfdisk, curl, openssl), QEMU's iPXE ROMs in /usr/lib/ipxe/qemu and that
apt-get download resolves packages (stage1 is built from them). Prints the
exact apt-get install line for what is missing; exit 1 if anything is.
What only --os debian needs (mmdebstrap, mkfs.ext4, debugfs, zstd, ssh-keygen,
ssh) is noted, with its package, without failing.`,
  async run(argv) {
    if (argv.length) throw new UsageError(`unexpected argument ${argv[0]}`);
    const { formatChecks, installLine, runChecks } = await import('../../lab/doctor.js');
    const checks = runChecks();
    process.stdout.write(formatChecks(checks).join('\n') + '\n');
    const line = installLine(checks);
    if (line) process.stdout.write(`\nto install what is missing:\n  ${line}\n`);
    const bad = checks.filter((c) => !c.ok && !c.info);
    if (bad.length && !line) process.stdout.write('\nfix the items marked MISSING above\n');
    return bad.length ? EXIT_FAILURE : EXIT_OK;
  },
};

function untilOption(text: string): 'installed' {
  if (text !== 'installed') throw new UsageError(`--until: only installed is known, not ${text}`);
  return text;
}
