// The per-server config block of the generic stage1 ISO. Pure.
//
// The block is a file of the ISO (/podboot/config.blk) that GRUB loads as a
// second initrd after stage1's own: an uncompressed newc cpio holding one
// file, etc/podboot/vmedia.conf, of a fixed size. The ISO is built once with
// a placeholder in that file; the pod overwrites only the file's content
// bytes while it streams the ISO to a BMC, so the cpio header (whose size
// field is fixed), the ISO's directory records and every other byte stay the
// same for every server. Carrying it as an initrd means stage1 needs no CD
// driver or iso9660 module to read it: the firmware's own medium access
// (virtual CD or USB alike) loads it, as it loads the kernel.
//
// Content: `KEY=VALUE` lines up to `#end` (stage1 sources only lines matching
// PODBOOT_[A-Z0-9_]+=[A-Za-z0-9._:/+=~,-]*), then the pod's root CA in PEM,
// then newline padding to CONTENT_BYTES.
import { encodeCpio } from '../images/cpio.js';

/** the file inside the block, as stage1 finds it after the kernel unpacked the initrds */
export const BLOCK_FILE = 'etc/podboot/vmedia.conf';
/** the block's name on the ISO */
export const ISO_BLOCK_PATH = 'podboot/config.blk';
/** first line of the content, placeholder and filled alike: how the block is found in the ISO */
export const BLOCK_MAGIC = '#podboot-vmedia-config v1\n';
/** room for ~600 bytes of settings and a root CA of up to ~7 KiB (an RSA-4096 PEM is ~2 KiB) */
export const CONTENT_BYTES = 8192;

/** Values a server's block carries; all strings as stage1 reads them. */
export interface BlockValues {
  /** the pod's address and ports: its URL is https://server:https */
  server: string;
  https: number;
  http?: number;
  pod: string;
  /** canonical colon form */
  mac: string;
  hostname?: string;
  /** the install token (src/install/token.ts) bound to this server */
  token: string;
  address: string;
  prefix: number;
  gateway?: string;
  dns: string[];
}

const SAFE = /^[A-Za-z0-9._:/+=~,-]*$/;

/** The template's content: the magic and padding, nothing a stage1 would act on. */
export function placeholderContent(): Buffer {
  const head = Buffer.from(`${BLOCK_MAGIC}#unset: the pod fills this block per server while it streams the ISO\n#end\n`, 'latin1');
  return Buffer.concat([head, Buffer.alloc(CONTENT_BYTES - head.length, 0x0a)]);
}

/** The block as it is on the ISO: a newc cpio of one fixed-size file. */
export function blockTemplate(): Buffer {
  // encodeCpio adds etc and etc/podboot before the file; they exist already from stage1's own initrd, unpacked first.
  return encodeCpio([{ type: 'file', name: BLOCK_FILE, data: placeholderContent(), mode: 0o600 }]);
}

/** One server's content, exactly CONTENT_BYTES long; throws naming a value that cannot go in. */
export function renderContent(v: BlockValues, rootCaPem: Buffer): Buffer {
  const pairs: [string, string | number | undefined][] = [
    ['PODBOOT_URL', `https://${v.server}:${v.https}`],
    ['PODBOOT_SERVER', v.server],
    ['PODBOOT_HTTPS', v.https],
    ['PODBOOT_HTTP', v.http],
    ['PODBOOT_POD', v.pod],
    ['PODBOOT_MAC', v.mac.replace(/:/g, '-')],
    ['PODBOOT_HOSTNAME', v.hostname],
    ['PODBOOT_TOKEN', v.token],
    ['PODBOOT_NET_ADDRESS', v.address],
    ['PODBOOT_NET_PREFIX', v.prefix],
    ['PODBOOT_NET_GATEWAY', v.gateway],
    ['PODBOOT_NET_DNS', v.dns.length ? v.dns.join(',') : undefined],
  ];
  let text = BLOCK_MAGIC;
  for (const [k, value] of pairs) {
    if (value === undefined) continue;
    const s = String(value);
    if (!SAFE.test(s)) throw new Error(`vmedia block: ${k} value ${JSON.stringify(s)} has characters stage1 would drop`);
    text += `${k}=${s}\n`;
  }
  text += '#end\n';
  const pem = rootCaPem.toString('latin1');
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('vmedia block: the root CA is not a PEM certificate');
  const body = Buffer.from(text + pem + (pem.endsWith('\n') ? '' : '\n'), 'latin1');
  if (body.length > CONTENT_BYTES) throw new Error(`vmedia block: ${body.length} bytes of settings and root CA, more than the block's ${CONTENT_BYTES}`);
  return Buffer.concat([body, Buffer.alloc(CONTENT_BYTES - body.length, 0x0a)]);
}

/**
 * Where the content sits in a built ISO: the one place the placeholder
 * occurs. Throws when it is missing or ambiguous, since patching the wrong
 * bytes would corrupt the image for every server.
 */
export function findContent(iso: Buffer): number {
  const placeholder = placeholderContent();
  const at = iso.indexOf(placeholder);
  if (at < 0) throw new Error('vmedia ISO: no config block placeholder found');
  if (iso.indexOf(placeholder, at + 1) >= 0) throw new Error('vmedia ISO: the config block placeholder occurs more than once');
  return at;
}

/**
 * The bytes of [start, end] (inclusive, as an HTTP range) of an ISO whose
 * content at `offset` is replaced by `content`: only the overlap is patched.
 */
export function patchSlice(slice: Buffer, sliceStart: number, offset: number, content: Buffer): Buffer {
  const sliceEnd = sliceStart + slice.length;
  const from = Math.max(sliceStart, offset);
  const to = Math.min(sliceEnd, offset + content.length);
  if (from >= to) return slice;
  content.copy(slice, from - sliceStart, from - offset, to - offset);
  return slice;
}
