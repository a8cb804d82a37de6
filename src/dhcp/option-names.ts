// DHCP options by name and value, for people reading an exchange (`podboot
// dhcp probe`): a decoded packet's options in, plain JSON-ready views out.
// Pure. The bytes are read with the codec's own readers (codec/options.ts),
// the ones the server decides by, so what is shown is what podboot reads;
// an option podboot does not know stays hex.
import { Arch, IPXE_NO_PXEDHCP, MESSAGE_TYPE_NAMES, Opt, PXE_DISCOVERY_CONTROL, RelaySub } from './codec/constants.js';
import { OptionError, readClientArch, readClientNdi, readClientUuid, readIPv4, readIPv4List, readSubOptions, readText, readU16, readU32, readU8, readUserClass } from './codec/options.js';
import { formatIPv4 } from '../net/ipv4.js';

/** A number with its meaning (a requested option, an architecture type). */
export interface NamedCode {
  code: number;
  name: string | null;
}

export type OptionValue = string | number | string[] | NamedCode[] | OptionView[] | { type: number; major: number; minor: number };

/** One option (or sub-option) as shown: `--json` prints these as they are. */
export interface OptionView {
  code: number;
  /** null: an option podboot does not know */
  name: string | null;
  /** the decoded value; null when the option is unknown, malformed, or a flag without a value */
  value: OptionValue | null;
  /** the raw bytes, always */
  hex: string;
  /** why a known option could not be decoded */
  error?: string;
}

/** What the reading of one option may depend on: option 43 is PXE's only when option 60 says PXEClient. */
interface Context {
  pxe: boolean;
}

type Decode = (code: number, v: Buffer, ctx: Context) => OptionValue | null | OptionError;

const ip: Decode = (code, v) => mapOk(readIPv4(code, v), formatIPv4);
const ipList: Decode = (code, v) => mapOk(readIPv4List(code, v), (l) => l.map(formatIPv4));
const u8: Decode = (code, v) => readU8(code, v) ?? null;
const u16: Decode = (code, v) => readU16(code, v) ?? null;
const u32: Decode = (code, v) => readU32(code, v) ?? null;
const text: Decode = (_code, v) => readText(v) ?? null;

/** RFC 4578 §2.1 / IANA processor architecture types (option 93). */
const ARCH_NAMES: Readonly<Record<number, string>> = {
  [Arch.BIOS]: 'x86 BIOS',
  [Arch.EFI_IA32]: 'EFI IA32',
  [Arch.EFI_BC]: 'EFI BC',
  [Arch.EFI_X64]: 'EFI x64',
  [Arch.EFI_ARM32]: 'EFI ARM32',
  [Arch.EFI_ARM64]: 'EFI ARM64',
  [Arch.EFI_X86_HTTP]: 'EFI x86 HTTP',
  [Arch.EFI_X64_HTTP]: 'EFI x64 HTTP',
  [Arch.EFI_ARM32_HTTP]: 'EFI ARM32 HTTP',
  [Arch.EFI_ARM64_HTTP]: 'EFI ARM64 HTTP',
};

/** Option 82's sub-options (RFC 3046, 3527, 5107, 8357). */
const RELAY_SUBS: SubTable = {
  [RelaySub.CIRCUIT_ID]: { name: 'circuit-id', decode: printable },
  [RelaySub.REMOTE_ID]: { name: 'remote-id', decode: printable },
  [RelaySub.LINK_SELECTION]: { name: 'link-selection', decode: ip },
  [RelaySub.SERVER_ID_OVERRIDE]: { name: 'server-id-override', decode: ip },
  // Empty from the first relay; a second relay puts the first one's port in it.
  [RelaySub.RELAY_SOURCE_PORT]: { name: 'relay-source-port', decode: (code, v) => (v.length === 0 ? null : (readU16(code, v) ?? null)) },
};

/** Option 43 in a PXE exchange (PXE 2.1 §2.4): discovery control is the one podboot sends. */
const PXE_SUBS: SubTable = {
  1: { name: 'mtftp-ip', decode: ip },
  2: { name: 'mtftp-cport', decode: u16 },
  3: { name: 'mtftp-sport', decode: u16 },
  4: { name: 'mtftp-tmout', decode: u8 },
  5: { name: 'mtftp-delay', decode: u8 },
  [PXE_DISCOVERY_CONTROL]: { name: 'discovery-control', decode: u8 },
  7: { name: 'discovery-mcast-addr', decode: ip },
  8: { name: 'boot-servers' },
  9: { name: 'boot-menu' },
  10: { name: 'menu-prompt' },
  71: { name: 'boot-item' },
};

/** Option 175, iPXE's own space: its feature flags in requests, settings in replies. */
const IPXE_SUBS: SubTable = {
  1: { name: 'priority', decode: u8 },
  8: { name: 'keep-san', decode: u8 },
  9: { name: 'skip-san-boot', decode: u8 },
  ...Object.fromEntries(
    (
      [
        [16, 'pxeext'],
        [17, 'iscsi'],
        [18, 'aoe'],
        [19, 'http'],
        [20, 'https'],
        [21, 'tftp'],
        [22, 'ftp'],
        [23, 'dns'],
        [24, 'bzimage'],
        [25, 'multiboot'],
        [26, 'slam'],
        [27, 'srp'],
        [32, 'nbi'],
        [33, 'pxe'],
        [34, 'elf'],
        [35, 'comboot'],
        [36, 'efi'],
        [37, 'fcoe'],
        [38, 'vlan'],
        [39, 'menu'],
        [40, 'sdi'],
        [41, 'nfs'],
      ] as const
    ).map(([code, name]) => [code, { name, decode: u8 }]),
  ),
  [IPXE_NO_PXEDHCP]: { name: 'no-pxedhcp', decode: u8 },
  177: { name: 'bus-id' },
  188: { name: 'san-filename', decode: text },
  189: { name: 'bios-drive', decode: u8 },
  190: { name: 'username', decode: text },
  // Never shown, not even as hex: they are secrets.
  191: { name: 'password', secret: true },
  192: { name: 'reverse-username', decode: text },
  193: { name: 'reverse-password', secret: true },
  235: { name: 'version', decode: ipxeVersion },
};

interface Known {
  name: string;
  /** absent: the name is known, the value stays hex */
  decode?: Decode;
  /** the bytes are a secret: no hex either */
  secret?: boolean;
}
type SubTable = Readonly<Record<number, Known>>;

const OPTIONS: Readonly<Record<number, Known>> = {
  [Opt.SUBNET_MASK]: { name: 'subnet-mask', decode: ip },
  [Opt.ROUTER]: { name: 'routers', decode: ipList },
  [Opt.DNS]: { name: 'domain-name-servers', decode: ipList },
  [Opt.HOSTNAME]: { name: 'host-name', decode: text },
  [Opt.DOMAIN_NAME]: { name: 'domain-name', decode: text },
  28: { name: 'broadcast-address', decode: ip },
  42: { name: 'ntp-servers', decode: ipList },
  [Opt.VENDOR_SPECIFIC]: { name: 'vendor-encapsulated-options', decode: (code, v, ctx) => subOptions(code, v, ctx.pxe ? PXE_SUBS : {}) },
  [Opt.REQUESTED_IP]: { name: 'requested-address', decode: ip },
  [Opt.LEASE_TIME]: { name: 'lease-time', decode: u32 },
  [Opt.MESSAGE_TYPE]: { name: 'message-type', decode: (code, v) => mapOk(readU8(code, v), (t) => MESSAGE_TYPE_NAMES[t] ?? t) },
  [Opt.SERVER_ID]: { name: 'server-identifier', decode: ip },
  [Opt.PARAMETER_LIST]: { name: 'parameter-request-list', decode: (_code, v) => [...v].map((c) => ({ code: c, name: OPTIONS[c]?.name ?? null })) },
  [Opt.MESSAGE]: { name: 'message', decode: text },
  [Opt.MAX_MESSAGE_SIZE]: { name: 'max-message-size', decode: u16 },
  [Opt.RENEWAL_TIME]: { name: 'renewal-time', decode: u32 },
  [Opt.REBINDING_TIME]: { name: 'rebinding-time', decode: u32 },
  [Opt.VENDOR_CLASS]: { name: 'vendor-class', decode: text },
  // A type byte, then the identifier (type 1: a MAC), as ISC's leases file writes it.
  [Opt.CLIENT_ID]: { name: 'client-identifier', decode: (_code, v) => colonHex(v) },
  [Opt.TFTP_SERVER]: { name: 'tftp-server-name', decode: text },
  [Opt.BOOTFILE]: { name: 'bootfile-name', decode: text },
  [Opt.USER_CLASS]: { name: 'user-class', decode: (_code, v) => readUserClass(v) ?? null },
  [Opt.RELAY_AGENT_INFO]: { name: 'relay-agent-info', decode: (code, v) => subOptions(code, v, RELAY_SUBS) },
  [Opt.CLIENT_ARCH]: { name: 'client-arch', decode: (code, v) => mapOk(readClientArch(code, v), (l) => l.map((a) => ({ code: a, name: ARCH_NAMES[a] ?? null }))) },
  [Opt.CLIENT_NDI]: { name: 'client-ndi', decode: (code, v) => readClientNdi(code, v) ?? null },
  [Opt.CLIENT_UUID]: { name: 'client-uuid', decode: (code, v) => readClientUuid(code, v) ?? null },
  [Opt.SUBNET_SELECTION]: { name: 'subnet-selection', decode: ip },
  [Opt.IPXE_ENCAP]: { name: 'ipxe-encapsulated-options', decode: (code, v) => subOptions(code, v, IPXE_SUBS) },
};

/** Every option of a decoded packet, in the order the packet holds them. */
export function describeOptions(options: ReadonlyMap<number, Buffer>): OptionView[] {
  const ctx: Context = { pxe: readText(options.get(Opt.VENDOR_CLASS))?.startsWith('PXEClient') ?? false };
  return [...options].map(([code, v]) => describe(code, v, OPTIONS[code], ctx));
}

/** The name of a DHCP option code, or undefined when podboot does not know it. */
export function optionName(code: number): string | undefined {
  return OPTIONS[code]?.name;
}

function describe(code: number, v: Buffer, known: Known | undefined, ctx: Context): OptionView {
  if (known?.secret) return { code, name: known.name, value: '(not shown)', hex: '' };
  const hex = v.toString('hex');
  if (!known) return { code, name: null, value: null, hex };
  if (!known.decode) return { code, name: known.name, value: null, hex };
  const value = known.decode(code, v, ctx);
  if (value instanceof OptionError) return { code, name: known.name, value: null, hex, error: value.detail };
  return { code, name: known.name, value, hex };
}

function subOptions(code: number, v: Buffer, table: SubTable): OptionView[] | OptionError {
  const subs = readSubOptions(code, v);
  if (subs === undefined || subs instanceof OptionError) return subs ?? [];
  return [...subs].map(([sub, sv]) => describe(sub, sv, table[sub], { pxe: false }));
}

function mapOk<T, U>(v: T | undefined | OptionError, f: (t: T) => U): U | null | OptionError {
  if (v === undefined) return null;
  return v instanceof OptionError ? v : f(v);
}

/** Text when it is printable ASCII (most circuit ids are a port name), else hex only. */
function printable(_code: number, v: Buffer): string | null {
  return v.length > 0 && /^[\x20-\x7e]+$/.test(v.toString('latin1')) ? v.toString('latin1') : null;
}

function colonHex(v: Buffer): string {
  return [...v].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** iPXE's version sub-option: major, minor, patch. */
function ipxeVersion(code: number, v: Buffer): string | OptionError {
  return v.length === 3 ? `${v[0]}.${v[1]}.${v[2]}` : new OptionError(code, `length ${v.length}, expected 3`);
}

const TIMES: ReadonlySet<number> = new Set([Opt.LEASE_TIME, Opt.RENEWAL_TIME, Opt.REBINDING_TIME]);

/**
 * One option's value as a line reads it: `255.255.255.0`, `3600 s (1h)`,
 * `1 subnet-mask, 3 routers`, `circuit-id rack1-port7; relay-source-port`;
 * hex for what is unknown or malformed.
 */
export function optionText(o: OptionView, topLevel = true): string {
  if (o.error !== undefined) return `malformed: ${o.error}; hex ${o.hex || '(empty)'}`;
  const v = o.value;
  if (v === null) return o.name !== null && o.hex === '' ? '' : `hex ${o.hex || '(empty)'}`;
  if (typeof v === 'number') return topLevel && TIMES.has(o.code) ? `${v} s (${duration(v)})` : String(v);
  if (typeof v === 'string') return shown(v);
  if (Array.isArray(v)) {
    if (v.length === 0) return '(none)';
    const items = v as (string | NamedCode | OptionView)[];
    // Sub-options are name-value pairs themselves: a stronger separator between them.
    const subOptions = items.some((item) => typeof item === 'object' && 'hex' in item);
    return items
      .map((item) => {
        if (typeof item === 'string') return shown(item);
        if ('hex' in item) {
          const t = optionText(item, false);
          return `${item.name ?? item.code}${t ? ` ${t}` : ''}`;
        }
        return item.name === null ? String(item.code) : `${item.code} ${item.name}`;
      })
      .join(subOptions ? '; ' : ', ');
  }
  return `type ${v.type}${v.type === 1 ? ' (UNDI)' : ''} ${v.major}.${v.minor}`;
}

/** A string as it is, unless it would hide something on a terminal. */
function shown(s: string): string {
  return /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(s) ? s : JSON.stringify(s);
}

/** 3600 → 1h, 5400 → 1h30m, 0xffffffff → infinite (RFC 2132 §9.2). */
function duration(sec: number): string {
  if (sec === 0xffffffff) return 'infinite';
  const parts: string[] = [];
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    const n = Math.floor(sec / size);
    sec %= size;
    if (n) parts.push(`${n}${unit}`);
  }
  return parts.join('') || '0s';
}
