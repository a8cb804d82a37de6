// The shape of a pod file as data: which fields each mapping holds, which are
// required, and what kind of value each takes. The validator's readers take
// their field tables and integer ranges from here, and `podboot validate
// --schema` turns the same tree into a JSON Schema for editors, so the two
// cannot drift apart. What the shape cannot say (an address inside a subnet,
// no overlapping pools) stays in the readers.

/** A string; a number is accepted too, read as its source text (a hostname may be all digits). */
export interface TextShape {
  kind: 'text';
  /** the only values allowed */
  oneOf?: readonly string[];
}

export interface IntegerShape {
  kind: 'integer';
  min: number;
  max: number;
}

/** A string in `pattern` or a positive whole number: durations (1h) and sizes (256Mi). */
export interface QuantityShape {
  kind: 'quantity';
  pattern: string;
}

/** true or false (YAML 1.2: `yes` and `on` are strings, not booleans). */
export interface BooleanShape {
  kind: 'boolean';
}

export interface ListShape {
  kind: 'list';
  items: ValueShape;
  minItems?: number;
}

export interface Field {
  required: boolean;
  shape: ValueShape;
}

export interface MappingShape {
  kind: 'mapping';
  fields: Readonly<Record<string, Field>>;
}

/** A mapping of free names to text (server labels): names and values follow src/config/labels.ts. */
export interface LabelsShape {
  kind: 'labels';
}

export type ValueShape = TextShape | IntegerShape | QuantityShape | BooleanShape | ListShape | MappingShape | LabelsShape;

const text = (oneOf?: readonly string[]): TextShape => (oneOf ? { kind: 'text', oneOf } : { kind: 'text' });
const integer = (min: number, max: number): IntegerShape => ({ kind: 'integer', min, max });
const boolean = (): BooleanShape => ({ kind: 'boolean' });
const list = (items: ValueShape, minItems?: number): ListShape => (minItems ? { kind: 'list', items, minItems } : { kind: 'list', items });
const labels = (): LabelsShape => ({ kind: 'labels' });
const mapping = (fields: Record<string, Field>): MappingShape => ({ kind: 'mapping', fields });
const required = (shape: ValueShape): Field => ({ required: true, shape });
const optional = (shape: ValueShape): Field => ({ required: false, shape });

export const API_VERSION = 'podboot/v1';
export const KIND = 'Pod';
export const UNKNOWN_NODE_POLICIES = ['provision', 'ignore'] as const;
export const STAGE1_TRANSPORTS = ['http', 'tftp'] as const;
export const ISOLATION_MODES = ['process', 'netns'] as const;
export const BOOT_FILE_KINDS = ['bios', 'uefi', 'arm64', 'ipxeScript', 'httpBoot'] as const;

/** What parseDuration reads (90s, 30m, 1h, 1d); a number is seconds. */
const DURATION = { kind: 'quantity', pattern: '^\\s*\\d{1,12}\\s*[smhd]?\\s*$' } as const;
/** What parseMemory reads (256Mi, 1Gi, 300M); a number is bytes. */
const SIZE = { kind: 'quantity', pattern: '^\\s*\\d+\\s*(K|M|G|Ki|Mi|Gi)?\\s*$' } as const;

export const BOOT_FILES_SHAPE = mapping(Object.fromEntries(BOOT_FILE_KINDS.map((k) => [k, optional(text())])));

export const LISTEN_SHAPE = mapping({
  address: required(text()),
  dhcpPort: optional(integer(1, 65535)),
  tftpPort: optional(integer(1, 65535)),
  httpPort: optional(integer(1, 65535)),
  httpsPort: optional(integer(1, 65535)),
});

export const SUBNET_SHAPE = mapping({
  cidr: required(text()),
  gateway: optional(text()),
  pool: optional(text()),
  dns: optional(list(text())),
  leaseTime: optional(DURATION),
  domain: optional(text()),
});

/** A NIC of the installed OS: exactly one of the two (the validator checks that). */
export const INTERFACE_SHAPE = mapping({ mac: optional(text()), name: optional(text()) });

// 802.1Q: 0 and 4095 are reserved.
const VLAN = integer(1, 4094);

export const MANAGEMENT_NETWORK_SHAPE = mapping({
  cidr: required(text()),
  gateway: optional(text()),
  dns: optional(list(text())),
  vlan: optional(VLAN),
  pool: optional(text()),
  interface: optional(INTERFACE_SHAPE),
});

export const NODE_MANAGEMENT_SHAPE = mapping({
  interface: optional(INTERFACE_SHAPE),
  address: optional(text()),
  gateway: optional(text()),
  dns: optional(list(text())),
  vlan: optional(VLAN),
});

export const USER_SHAPE = mapping({
  name: required(text()),
  sshAuthorizedKeys: optional(list(text())),
  sudo: optional(boolean()),
});

export const HEARTBEAT_SHAPE = mapping({ interval: optional(DURATION) });

export const STAGE2_SHAPE = mapping({ image: required(text()), version: required(text()) });

/** nodes[].bmc: the server's BMC, for booting the stage1 ISO over Redfish virtual media (src/redfish/) */
export const BMC_SHAPE = mapping({
  address: required(text()),
  username: required(text()),
  passwordFile: required(text()),
  caFile: optional(text()),
  plainHttpMedia: optional(boolean()),
});

export const NODE_SHAPE = mapping({
  mac: required(text()),
  hostname: optional(text()),
  address: optional(text()),
  uuid: optional(text()),
  boot: optional(BOOT_FILES_SHAPE),
  management: optional(NODE_MANAGEMENT_SHAPE),
  sshAuthorizedKeys: optional(list(text())),
  labels: optional(labels()),
  /** pinned: this server installs this image whatever the pod's release or a rollout says */
  stage2: optional(STAGE2_SHAPE),
  bmc: optional(BMC_SHAPE),
});

export const BOOT_SHAPE = mapping({
  nextServer: optional(text()),
  files: optional(BOOT_FILES_SHAPE),
  stage1: optional(text(STAGE1_TRANSPORTS)),
});

// RFC 2348: blksize 8..65464; RFC 7440: windowsize 1..65535; each transfer holds its own UDP socket.
export const TFTP_SHAPE = mapping({
  maxBlockSize: optional(integer(8, 65464)),
  maxWindowSize: optional(integer(1, 65535)),
  maxTransfers: optional(integer(1, 10000)),
});

// Concurrent stage2 image downloads the pod admits (src/http-boot/admission.ts); the reasoning for the defaults is in docs/pod-yaml.md.
export const IMAGE_STREAMS_SHAPE = mapping({
  perPod: optional(integer(1, 10_000)),
  perRack: optional(integer(1, 10_000)),
});

// Rack peers sharing image chunks (src/share/, docs/pod-yaml.md): a server keeps `keep` bytes of verified chunks and serves them on `port`.
export const IMAGE_SHARING_SHAPE = mapping({
  peers: optional(boolean()),
  port: optional(integer(1024, 65535)),
  keep: optional(SIZE),
});

export const INSTALL_SHAPE = mapping({ kickstart: optional(text()), disk: optional(text()), rootPasswordHash: optional(text()), repoUrl: optional(text()) });

export const PROVISIONING_SHAPE = mapping({
  parent: required(text()),
  vlan: optional(integer(1, 4094)),
  prefix: optional(integer(1, 32)),
  gateway: optional(text()),
});

export const MANAGEMENT_SHAPE = mapping({
  parent: required(text()),
  vlan: optional(integer(1, 4094)),
  address: required(text()),
  gateway: optional(text()),
});

export const ISOLATION_SHAPE = mapping({
  mode: optional(text(ISOLATION_MODES)),
  provisioning: optional(PROVISIONING_SHAPE),
  management: optional(MANAGEMENT_SHAPE),
});

export const LIMITS_SHAPE = mapping({
  memory: optional(SIZE),
  pids: optional(integer(16, 100_000)),
  cpuWeight: optional(integer(1, 10_000)),
});

export const SPEC_SHAPE = mapping({
  listen: required(LISTEN_SHAPE),
  relays: required(list(text(), 1)),
  subnets: required(list(SUBNET_SHAPE, 1)),
  nodes: optional(list(NODE_SHAPE)),
  unknownNodes: optional(text(UNKNOWN_NODE_POLICIES)),
  boot: optional(BOOT_SHAPE),
  tftp: optional(TFTP_SHAPE),
  imageStreams: optional(IMAGE_STREAMS_SHAPE),
  imageSharing: optional(IMAGE_SHARING_SHAPE),
  stage2: optional(STAGE2_SHAPE),
  install: optional(INSTALL_SHAPE),
  isolation: optional(ISOLATION_SHAPE),
  limits: optional(LIMITS_SHAPE),
  managementNetwork: optional(MANAGEMENT_NETWORK_SHAPE),
  users: optional(list(USER_SHAPE)),
  heartbeat: optional(HEARTBEAT_SHAPE),
});

export const METADATA_SHAPE = mapping({ name: required(text()) });

export const POD_SHAPE = mapping({
  apiVersion: required(text([API_VERSION])),
  kind: required(text([KIND])),
  metadata: required(METADATA_SHAPE),
  spec: required(SPEC_SHAPE),
});

/** A mapping's field table as the YAML reader takes it: name → required. */
export function fieldsOf(shape: MappingShape): Readonly<Record<string, boolean>> {
  return Object.fromEntries(Object.entries(shape.fields).map(([name, f]) => [name, f.required]));
}

/** The range of an integer field, as YamlReader.integer takes it. */
export function boundsOf(shape: MappingShape, name: string): [min: number, max: number] {
  const field = shape.fields[name]?.shape;
  if (field?.kind !== 'integer') throw new Error(`pod shape: ${name} is not an integer field`);
  return [field.min, field.max];
}
