// Placeholder substitution for boot config values. Substituted values are
// reduced to characters that cannot end a line or a directive, so a strange
// hostname in the inventory cannot add lines to a bootloader config.
import type { BootConfigInput } from './types.js';

const SAFE_VALUE = /[^A-Za-z0-9._:-]/g;

export function expand(template: string, input: BootConfigInput): string {
  const { node, server } = input;
  const values: Record<string, string> = {
    server: server.address,
    tftpPort: String(server.tftpPort),
    httpPort: String(server.httpPort),
    httpsPort: String(server.httpsPort),
    mac: node.mac.replace(/:/g, '-'),
    pod: server.pod,
    hostname: node.hostname ?? '',
  };
  return oneLine(template.replace(/\{(\w+)\}/g, (whole, key: string) => (key in values ? values[key]!.replace(SAFE_VALUE, '') : whole)));
}

/** Operator-given text goes on one config line. */
export function oneLine(text: string): string {
  return text.replace(/[\r\n\0]+/g, ' ');
}

/** A comment line naming what the file is for; the hostname is reduced like any substituted value. */
export function header(input: BootConfigInput, commentPrefix: string): string {
  const { node, server } = input;
  const host = node.hostname ? ` (${node.hostname.replace(SAFE_VALUE, '')})` : '';
  return `${commentPrefix} podboot pod ${server.pod.replace(SAFE_VALUE, '')}: ${node.mac}${host} ${node.installState} ${node.arch}`;
}

/** True when the node should boot stage1; unknown and installed servers boot from their disk. */
export function provisions(input: BootConfigInput): boolean {
  return input.node.installState === 'provision';
}

/** The stage1 command line: the pod's arguments, then the server's install token when it has one. */
export function kernelArgs(input: BootConfigInput): string {
  const args = expand(input.stage1.args, input);
  return input.token ? `${args} podboot.token=${input.token.replace(SAFE_VALUE, '')}` : args;
}
