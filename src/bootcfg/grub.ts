// grub/grub.cfg-01-<mac>: GRUB netboot (mostly UEFI). Paths are absolute on
// the TFTP server GRUB was loaded from.
import { expand, kernelArgs, header, provisions } from './template.js';
import type { BootConfigInput } from './types.js';

export function renderGrub(input: BootConfigInput): string {
  const lines = [header(input, '#'), 'set timeout=0', 'set default=0'];
  const abs = (p: string) => '/' + expand(p, input).replace(/^\/+/, '');
  if (provisions(input)) {
    lines.push('menuentry "podboot stage1" {', `  linux ${abs(input.stage1.kernel)} ${kernelArgs(input)}`, `  initrd ${abs(input.stage1.initrd)}`, '}');
  } else if (input.node.arch === 'bios') {
    lines.push('menuentry "local disk" {', '  set root=(hd0)', '  chainloader +1', '}');
  } else {
    lines.push('menuentry "local disk" {', '  exit', '}');
  }
  return lines.join('\n') + '\n';
}
