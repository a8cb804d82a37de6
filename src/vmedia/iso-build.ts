// The generic stage1 ISO for BMC virtual media: GRUB (El Torito for BIOS
// and for UEFI, made by Debian's grub-mkrescue with xorriso) loading stage1's
// kernel and initrd directly, plus the per-server config block as a second
// initrd (src/vmedia/block.ts). One ISO serves every server and every pod:
// the pod fills the block while it streams. Cached by content: the key is
// the kernel, the initrd, the GRUB config, the block template and the
// versions of the Debian packages that write the ISO; a build whose key
// matches is skipped.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runProgram } from '../host/programs.js';
import { STAGE1_INITRD, writeAtomic } from '../images/stage1.js';
import { BLOCK_MAGIC, blockTemplate, CONTENT_BYTES, findContent, ISO_BLOCK_PATH } from './block.js';

const BUILDER_VERSION = 'vmedia-iso/1';
/** the ISO and its layout, relative to the stage1 directory */
export const VMEDIA_ISO = 'vmedia/stage1.iso';
export const VMEDIA_LAYOUT = 'vmedia/stage1.iso.json';
/** packages whose programs and GRUB images end up in the ISO */
export const ISO_PACKAGES = ['grub-common', 'grub-pc-bin', 'grub-efi-amd64-bin', 'xorriso', 'mtools'] as const;

/** What the pod needs to patch the block: where its content sits, and what the ISO is. */
export interface IsoLayout {
  key: string;
  size: number;
  sha256: string;
  /** byte offset of the block's content in the ISO */
  contentOffset: number;
  contentBytes: number;
}

export interface IsoReport extends IsoLayout {
  path: string;
  upToDate: boolean;
  ms: number;
}

/**
 * Serial first (BMC consoles and QEMU's -nographic show it), no menu wait:
 * a server mounting this ISO has one thing to do.
 */
export const GRUB_CFG = `# podboot stage1 from virtual media: the kernel and initrd of stage1, the
# per-server config block as a second initrd (filled by the pod while it streams)
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=0
set default=0
menuentry "podboot stage1 (virtual media)" {
  linux /podboot/vmlinuz console=ttyS0,115200 console=tty0 podboot.vmedia=1
  initrd /podboot/initrd.img /${ISO_BLOCK_PATH}
}
`;

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

function packageVersions(): string {
  return runProgram('dpkg-query', ['-W', '-f', '${Package}=${Version}\\n', ...ISO_PACKAGES]);
}

function inputsKey(kernel: Buffer, initrd: Buffer): string {
  return sha256([BUILDER_VERSION, sha256(kernel), sha256(initrd), sha256(GRUB_CFG), sha256(blockTemplate()), packageVersions()].join('\n'));
}

export function readLayout(stage1Dir: string): IsoLayout | undefined {
  try {
    return JSON.parse(readFileSync(join(stage1Dir, VMEDIA_LAYOUT), 'utf8')) as IsoLayout;
  } catch {
    return undefined;
  }
}

/** Builds `<stage1Dir>/vmedia/stage1.iso` from the stage1 there, unless its inputs did not change. */
export function buildVmediaIso(stage1Dir: string, opts: { force?: boolean } = {}): IsoReport {
  const started = Date.now();
  const kernel = readFileSync(join(stage1Dir, 'stage1', 'vmlinuz'));
  const initrd = readFileSync(join(stage1Dir, STAGE1_INITRD));
  const key = inputsKey(kernel, initrd);
  const path = join(stage1Dir, VMEDIA_ISO);
  const known = readLayout(stage1Dir);
  if (!opts.force && known?.key === key && existsSync(path)) return { ...known, path, upToDate: true, ms: Date.now() - started };

  const work = mkdtempSync(join(tmpdir(), 'podboot-iso-'));
  try {
    const root = join(work, 'root');
    mkdirSync(join(root, 'boot', 'grub'), { recursive: true });
    mkdirSync(join(root, 'podboot'), { recursive: true });
    writeFileSync(join(root, 'boot', 'grub', 'grub.cfg'), GRUB_CFG);
    writeFileSync(join(root, 'podboot', 'vmlinuz'), kernel);
    writeFileSync(join(root, 'podboot', 'initrd.img'), initrd);
    writeFileSync(join(root, ISO_BLOCK_PATH), blockTemplate());
    const out = join(work, 'stage1.iso');
    // No locales, fonts or themes, modules xz'd: a serial-console boot menu needs none of them (39.9 MB → 25.9 MB).
    // All modules stay: with --install-modules GRUB's early config asks for partition modules that are not there.
    runProgram('grub-mkrescue', ['--locales=', '--fonts=', '--themes=', '--compress=xz', '-o', out, root, '--', '-volid', 'PODBOOT_STAGE1'], {
      env: { SOURCE_DATE_EPOCH: '946684800' },
      timeoutMs: 120_000,
    });
    const iso = readFileSync(out);
    // Found by content, then checked: ISO9660 stores a file's bytes contiguously, so the placeholder is there verbatim.
    const contentOffset = findContent(iso);
    if (iso.subarray(contentOffset, contentOffset + BLOCK_MAGIC.length).toString('latin1') !== BLOCK_MAGIC) throw new Error('vmedia ISO: block magic not where found');
    const layout: IsoLayout = { key, size: iso.length, sha256: sha256(iso), contentOffset, contentBytes: CONTENT_BYTES };
    writeAtomic(path, iso);
    // written last: a build cut short is redone on the next run
    writeAtomic(join(stage1Dir, VMEDIA_LAYOUT), JSON.stringify(layout, null, 2) + '\n');
    return { ...layout, path, upToDate: false, ms: Date.now() - started };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
