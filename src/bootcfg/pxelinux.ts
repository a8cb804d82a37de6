// pxelinux.cfg/01-<mac>: legacy BIOS PXE through pxelinux, everything over TFTP.
import { expand, kernelArgs, header, provisions } from './template.js';
import type { BootConfigInput } from './types.js';

export function renderPxelinux(input: BootConfigInput): string {
  const lines = [header(input, '#'), 'PROMPT 0', 'TIMEOUT 0'];
  if (provisions(input)) {
    lines.push('DEFAULT stage1', 'LABEL stage1', `  KERNEL ${expand(input.stage1.kernel, input)}`, `  INITRD ${expand(input.stage1.initrd, input)}`, `  APPEND ${kernelArgs(input)}`);
  } else {
    lines.push('DEFAULT local', 'LABEL local', '  LOCALBOOT 0');
  }
  return lines.join('\n') + '\n';
}
