import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { EXIT_OK, UsageError, type Command } from '../command.js';
import { buildStage1, sizeLine } from '../../images/stage1.js';
import { buildLabStage2 } from '../../images/lab-stage2.js';
import { buildDebianImage, DEBIAN_PACKAGES, DEBIAN_SUITE } from '../../images/debian.js';
import { DEFAULT_IMAGE_CACHE } from '../../images/image-cache.js';

const progress = (line: string) => process.stdout.write(`${line}\n`);

export const imagesBuildStage1Command: Command = {
  summary: 'build stage1 (bootloaders, kernel, initrd) from Debian packages',
  usage: `usage: podboot images build-stage1 [--out DIR] [--cache DIR] [--force]

Downloads (apt-get download) and extracts (dpkg -x) the Debian packages ipxe,
pxelinux, syslinux-common, busybox-static and the kernel behind
linux-image-amd64, without installing them, and builds in DIR:

  undionly.kpxe snponly.efi ipxe.efi pxelinux.0 ldlinux.c32
  stage1/vmlinuz stage1/initrd.img stage1/SHA256SUMS

The initrd is reproducible (same inputs, same bytes) and holds no root CA:
a pod appends its own (see docs/stage1.md). Nothing is rebuilt when the
inputs did not change; downloads already in the cache are not repeated.

  --out DIR     output directory (default .cache/stage1)
  --cache DIR   package cache (default .cache/debs)
  --force       rebuild even if the outputs are up to date`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { out: { type: 'string', default: '.cache/stage1' }, cache: { type: 'string', default: '.cache/debs' }, force: { type: 'boolean', default: false } },
      allowPositionals: true,
    });
    if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`);
    const report = await buildStage1({ outDir: values.out, cacheDir: values.cache, force: values.force, progress });
    progress(`stage1 ${report.upToDate ? 'up to date' : 'built'} in ${report.outDir} (kernel ${report.kernelVersion}; modules: ${report.modules.join(' ')})`);
    for (const a of report.artifacts) progress(sizeLine(a));
    return EXIT_OK;
  },
};

export const imagesBuildLabStage2Command: Command = {
  summary: 'build the lab stage2: a small bootable raw disk image (busybox OS) for tests',
  usage: `usage: podboot images build-lab-stage2 [--out FILE] [--cache DIR] [--root-ca PEM] [--force]

Builds a 32 MiB raw disk image (MBR, one FAT16 partition, syslinux) without
mounting anything: the stage1 kernel and a busybox initrd whose init brings
the network up, reads its node config from the disk (sector 1024, written
by the lab kickstart), reports "booted-from-disk" and then a heartbeat every
30 s. See docs/stage1.md.

  --out FILE     image file (default .cache/lab-stage2.img)
  --cache DIR    package cache (default .cache/debs)
  --root-ca PEM  bake this root CA into the image; without it the node config
                 area must carry it after its "#end" line (see docs/stage1.md)
  --force        rebuild even if the image is up to date`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: {
        out: { type: 'string', default: '.cache/lab-stage2.img' },
        cache: { type: 'string', default: '.cache/debs' },
        'root-ca': { type: 'string' },
        force: { type: 'boolean', default: false },
      },
      allowPositionals: true,
    });
    if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`);
    const rootCa = values['root-ca'] ? readFileSync(values['root-ca']) : undefined;
    const report = await buildLabStage2({ out: values.out, cacheDir: values.cache, rootCaPem: rootCa, force: values.force, progress });
    progress(`lab stage2 ${report.upToDate ? 'up to date' : 'built'}: ${sizeLine(report.image)}`);
    return EXIT_OK;
  },
};

export const imagesBuildDebianCommand: Command = {
  summary: 'build the Debian 12 server image (GPT, ESP + root, cloud-init) with mmdebstrap',
  usage: `usage: podboot images build-debian [--out FILE] [--cache DIR] [--sources FILE]
                                   [--epoch SECONDS] [--zstd-level N] [--force]

Builds the image servers install: Debian ${DEBIAN_SUITE} (amd64) from Debian packages
with mmdebstrap (needs root), laid out as a GPT disk that boots under BIOS
(syslinux) and UEFI (systemd-boot): an EFI system partition with the kernel
and initrd, a 4 MiB partition for the per-server cloud-init seed (written by
stage1) and an ext4 root that cloud-init grows to the whole disk at first
boot. Packages on top of the minimal base:
  ${DEBIAN_PACKAGES.join(' ')}
and podboot's node agent (a systemd unit). The output is zstd-compressed for
the wire; sign it with \`podboot sign\` and onboard it like any stage2.

Reproducible: file times and the file system's identifiers are fixed
(SOURCE_DATE_EPOCH), so the same package versions give the same bytes.
Cached in two steps: the root file system tarball by the exact package set
apt resolves (mmdebstrap --simulate, ~10 s), the finished image by that and
podboot's own inputs. A second build with nothing changed copies the cached
image. See docs/debian-image.md.

  --out FILE        compressed image (default .cache/debian-12.img.zst); a
                    report (sizes, sha256, package set) lands in FILE minus
                    .img.zst plus .json
  --cache DIR       rootfs tarballs, images, boot loader packages
                    (default ${DEFAULT_IMAGE_CACHE}, shared by every checkout)
  --sources FILE    apt sources for mmdebstrap (default: the host's)
  --epoch SECONDS   SOURCE_DATE_EPOCH (default 1686355200, Debian 12.0's day)
  --zstd-level N    1..19 (default 6)
  --force           rebuild both steps
  --force-disk      lay the disk out again from the cached tarball, into FILE
                    only (the cached image stays): compare the two to check
                    that the layout step is reproducible`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: {
        out: { type: 'string', default: '.cache/debian-12.img.zst' },
        cache: { type: 'string', default: DEFAULT_IMAGE_CACHE },
        sources: { type: 'string' },
        epoch: { type: 'string' },
        'zstd-level': { type: 'string' },
        force: { type: 'boolean', default: false },
        'force-disk': { type: 'boolean', default: false },
      },
      allowPositionals: true,
    });
    if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`);
    const epoch = values.epoch === undefined ? undefined : Number(values.epoch);
    if (epoch !== undefined && !(Number.isSafeInteger(epoch) && epoch > 315532800)) throw new UsageError(`--epoch must be seconds since 1970 after 1980, not ${values.epoch}`);
    const level = values['zstd-level'] === undefined ? undefined : Number(values['zstd-level']);
    if (level !== undefined && !(Number.isInteger(level) && level >= 1 && level <= 19)) throw new UsageError(`--zstd-level must be 1..19, not ${values['zstd-level']}`);
    const r = await buildDebianImage({
      out: values.out,
      cacheDir: values.cache,
      sources: values.sources,
      sourceDateEpoch: epoch,
      zstdLevel: level,
      force: values.force ? true : values['force-disk'] ? 'disk' : false,
      progress,
    });
    progress(`debian image ${r.cached.disk ? 'from the cache' : 'built'}: kernel ${r.kernelVersion}, ${r.packages} packages, ${r.rawSize} bytes raw`);
    progress(`${r.size.toString().padStart(10)}  ${r.sha256}  ${r.out}`);
    return EXIT_OK;
  },
};
