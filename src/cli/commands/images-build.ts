import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { EXIT_OK, UsageError, type Command } from '../command.js';
import { buildStage1, sizeLine } from '../../images/stage1.js';
import { buildLabStage2 } from '../../images/lab-stage2.js';

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
