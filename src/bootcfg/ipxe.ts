// The iPXE script: the fast path. With stage1.httpBase set, kernel and initrd
// come over HTTP (seconds across a WAN instead of minutes over TFTP).
import { expand, kernelArgs, header, provisions } from './template.js';
import type { BootConfigInput } from './types.js';

function fetchUrl(path: string, input: BootConfigInput): string {
  const p = expand(path, input).replace(/^\/+/, '');
  if (input.stage1.httpBase) {
    const base = expand(input.stage1.httpBase, input);
    return base.endsWith('/') ? base + p : `${base}/${p}`;
  }
  const { address, tftpPort } = input.server;
  return `tftp://${address}${tftpPort === 69 ? '' : `:${tftpPort}`}/${p}`;
}

export function renderIpxe(input: BootConfigInput): string {
  const lines = ['#!ipxe', header(input, '#')];
  if (provisions(input)) {
    // initrd=<name> on the command line lets an EFI-stub kernel find the initrd under UEFI; BIOS ignores it.
    lines.push(`kernel ${fetchUrl(input.stage1.kernel, input)} initrd=initrd ${kernelArgs(input)}`, `initrd --name initrd ${fetchUrl(input.stage1.initrd, input)}`, 'boot');
  } else if (input.node.arch === 'bios') {
    lines.push('sanboot --no-describe --drive 0x80 || exit');
  } else {
    // UEFI: leave iPXE; the firmware goes on to its next boot entry (the disk).
    lines.push('exit');
  }
  return lines.join('\n') + '\n';
}
