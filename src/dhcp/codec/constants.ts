// Numbers from RFC 2131/2132, RFC 3046, RFC 3527, RFC 4578 and the iPXE
// encapsulated option space; named so the codec and policy read as the RFCs do.

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
export const HTYPE_ETHERNET = 1;
export const MAGIC_COOKIE = 0x63825363;
/** fixed BOOTP header up to and including the magic cookie */
export const HEADER_LENGTH = 240;
/** RFC 1542 minimum BOOTP message; replies are padded up to it */
export const MIN_REPLY_LENGTH = 300;
/** RFC 2131: every client accepts 576-byte IP datagrams → 548 bytes of DHCP */
export const DEFAULT_MAX_MESSAGE = 576 - 28;
/** larger than any Ethernet jumbo frame carries; anything above is not DHCP */
export const MAX_PACKET_LENGTH = 9216;
export const FLAG_BROADCAST = 0x8000;

export enum MessageType {
  DISCOVER = 1,
  OFFER = 2,
  REQUEST = 3,
  DECLINE = 4,
  ACK = 5,
  NAK = 6,
  RELEASE = 7,
  INFORM = 8,
}

export const MESSAGE_TYPE_NAMES: Record<number, string> = {
  1: 'DISCOVER',
  2: 'OFFER',
  3: 'REQUEST',
  4: 'DECLINE',
  5: 'ACK',
  6: 'NAK',
  7: 'RELEASE',
  8: 'INFORM',
};

export const Opt = {
  PAD: 0,
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS: 6,
  HOSTNAME: 12,
  DOMAIN_NAME: 15,
  VENDOR_SPECIFIC: 43,
  REQUESTED_IP: 50,
  LEASE_TIME: 51,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAMETER_LIST: 55,
  MESSAGE: 56,
  MAX_MESSAGE_SIZE: 57,
  RENEWAL_TIME: 58,
  REBINDING_TIME: 59,
  VENDOR_CLASS: 60,
  CLIENT_ID: 61,
  TFTP_SERVER: 66,
  BOOTFILE: 67,
  USER_CLASS: 77,
  RELAY_AGENT_INFO: 82,
  CLIENT_ARCH: 93,
  CLIENT_NDI: 94,
  CLIENT_UUID: 97,
  SUBNET_SELECTION: 118,
  IPXE_ENCAP: 175,
  END: 255,
} as const;

/** RFC 3046 / 3527 / 5010 / 8357 sub-options of option 82 */
export const RelaySub = {
  CIRCUIT_ID: 1,
  REMOTE_ID: 2,
  LINK_SELECTION: 5,
  SERVER_ID_OVERRIDE: 11,
  RELAY_SOURCE_PORT: 19,
} as const;

/** iPXE option 175 sub-option telling iPXE not to wait for a ProxyDHCP offer */
export const IPXE_NO_PXEDHCP = 176;
/** PXE option 43 sub-option 6: discovery control; 8 = take the boot file from this offer */
export const PXE_DISCOVERY_CONTROL = 6;

/** RFC 4578 / IANA processor architecture types (option 93) */
export const Arch = {
  BIOS: 0,
  EFI_IA32: 6,
  EFI_BC: 7,
  EFI_X64: 9,
  EFI_ARM32: 10,
  EFI_ARM64: 11,
  EFI_X86_HTTP: 15,
  EFI_X64_HTTP: 16,
  EFI_ARM32_HTTP: 18,
  EFI_ARM64_HTTP: 19,
} as const;
