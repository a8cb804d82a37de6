// The per-server layer of an image install (I1): the cloud-init NoCloud seed
// that turns the one immutable base image into this server. `meta-data`
// names the instance, `user-data` makes its logins and writes what the node
// agent needs to report in, `network-config` (v2) puts the management
// network (F8) on the right NIC. Pure: the pod's config and a few values in,
// three texts out; seed-image.ts makes the FAT image of them.
//
// Everything is emitted by the yaml library, never pasted together: a
// hostname, user name or key comment then cannot add a key of its own. It
// is written for YAML 1.1 because cloud-init reads it with PyYAML, a 1.1
// parser: a host named `on` or `no` stays a string there only if quoted.
import { stringify } from 'yaml';
import type { InterfaceSelector, NodeConfig, PodConfig } from '../config/types.js';
import { cidrContains, formatIPv4 } from '../net/ipv4.js';

export interface SeedInput {
  pod: PodConfig;
  /** the server's provisioning MAC, canonical form */
  mac: string;
  /** its install attempt: a reinstall is a new cloud-init instance, so cloud-init runs again */
  attempt: number;
  /** what the installed OS reports with (scope node) */
  nodeToken: string;
  /** the pod's root CA, PEM: the node agent trusts the pod's certificate by it */
  rootCa: string;
  /** the management address the pod's pool holds for this server, when it has none of its own */
  poolAddress?: number;
}

export interface Seed {
  'meta-data': string;
  'user-data': string;
  /** undefined: the server has no management network; cloud-init then configures its network its own way */
  'network-config'?: string;
}

/** The name a NIC matched by MAC gets, and the netplan id of the management interface. */
export const MANAGEMENT_IFNAME = 'mgmt0';

/** Where the node agent finds its settings (sourced as KEY=VALUE lines) and the pod's CA. */
export const NODE_ENV_PATH = '/etc/podboot/node.env';
export const ROOT_CA_PATH = '/etc/podboot/root.pem';

/** A server's management network after node values have overridden the pod's. */
export interface ResolvedManagement {
  interface: InterfaceSelector;
  /** absent: DHCP on the management network (no fixed address, no pool) */
  address?: number;
  prefix: number;
  gateway?: number;
  dns: number[];
  vlan?: number;
}

const YAML_OPTIONS = { version: '1.1', lineWidth: 0 } as const;

export function renderSeed(input: SeedInput): Seed {
  const { pod, mac } = input;
  const node = pod.nodes.find((n) => n.mac === mac);
  const names = hostNames(pod, node, mac);
  const metaData = stringify({ 'instance-id': instanceId(pod.name, mac, input.attempt), 'local-hostname': names.hostname }, YAML_OPTIONS);
  const management = resolveManagement(pod, mac, input.poolAddress);
  return {
    'meta-data': metaData,
    'user-data': `#cloud-config\n${stringify(userData(input, node, names), YAML_OPTIONS)}`,
    ...(management ? { 'network-config': stringify(networkConfig(management), YAML_OPTIONS) } : {}),
  };
}

/** `podboot-<pod>-<mac hex>-<attempt>`: one per install, so a reinstalled server is a new instance to cloud-init. */
export function instanceId(pod: string, mac: string, attempt: number): string {
  return `podboot-${pod}-${mac.replace(/:/g, '')}-${attempt}`;
}

/** Does this server take its management address from the pod's pool? */
export function needsPoolAddress(pod: PodConfig, mac: string): boolean {
  const node = pod.nodes.find((n) => n.mac === mac);
  return pod.managementNetwork?.pool !== undefined && node?.management?.address === undefined;
}

/**
 * The management network of one server: its own values over the pod-wide
 * ones. Without an interface named anywhere, the PXE NIC carries it (one NIC
 * for both networks). Undefined when the pod has no management network.
 */
export function resolveManagement(pod: PodConfig, mac: string, poolAddress?: number): ResolvedManagement | undefined {
  const net = pod.managementNetwork;
  if (!net) return undefined;
  const own = pod.nodes.find((n) => n.mac === mac)?.management;
  const address = own?.address ?? (net.pool ? poolAddress : undefined);
  if (net.pool && address === undefined) throw new Error(`no management address for ${mac}: the pool's address was not given`);
  const gateway = own?.gateway ?? net.gateway;
  const vlan = own?.vlan ?? net.vlan;
  return {
    interface: own?.interface ?? net.interface ?? { mac },
    ...(address !== undefined ? { address } : {}),
    prefix: net.prefix,
    ...(gateway !== undefined ? { gateway } : {}),
    dns: own?.dns ?? net.dns,
    ...(vlan !== undefined ? { vlan } : {}),
  };
}

function hostNames(pod: PodConfig, node: NodeConfig | undefined, mac: string): { hostname: string; fqdn?: string } {
  const name = node?.hostname ?? `node-${mac.replace(/:/g, '')}`;
  // A host name written with its domain is already the FQDN.
  if (name.includes('.')) return { hostname: name.slice(0, name.indexOf('.')), fqdn: name };
  const subnet = (node?.address !== undefined ? pod.subnets.find((s) => cidrContains(s, node.address!)) : undefined) ?? pod.subnets[0];
  return subnet?.domain ? { hostname: name, fqdn: `${name}.${subnet.domain}` } : { hostname: name };
}

function userData(input: SeedInput, node: NodeConfig | undefined, names: { hostname: string; fqdn?: string }): Record<string, unknown> {
  const { pod } = input;
  const extraKeys = node?.sshAuthorizedKeys ?? [];
  return {
    hostname: names.hostname,
    ...(names.fqdn ? { fqdn: names.fqdn } : {}),
    preserve_hostname: false,
    // sudo resolves the host's own name; without an /etc/hosts line for it every sudo waits for DNS.
    manage_etc_hosts: true,
    // The list replaces cloud-init's default user (Debian's `debian`): only the logins the pod file names exist.
    users: pod.users.map((u) => ({
      name: u.name,
      shell: '/bin/bash',
      lock_passwd: true,
      ...(u.sudo ? { sudo: 'ALL=(ALL) NOPASSWD:ALL' } : {}),
      ssh_authorized_keys: [...u.sshAuthorizedKeys, ...extraKeys.filter((k) => !u.sshAuthorizedKeys.includes(k))],
    })),
    ssh_pwauth: false,
    disable_root: true,
    write_files: [
      { path: NODE_ENV_PATH, owner: 'root:root', permissions: '0600', content: nodeEnv(input) },
      { path: ROOT_CA_PATH, owner: 'root:root', permissions: '0644', content: input.rootCa.endsWith('\n') ? input.rootCa : `${input.rootCa}\n` },
    ],
  };
}

/** KEY=VALUE lines for the node agent (a shell's `.` and systemd's EnvironmentFile read them alike). */
function nodeEnv(input: SeedInput): string {
  const { pod } = input;
  const values: [string, string][] = [
    ['PODBOOT_SERVER', pod.listen.address],
    ['PODBOOT_HTTPS', String(pod.listen.httpsPort)],
    ['PODBOOT_POD', pod.name],
    ['PODBOOT_MAC', input.mac],
    ['PODBOOT_NODE_TOKEN', input.nodeToken],
    ['PODBOOT_HEARTBEAT_SECONDS', String(pod.heartbeatSeconds)],
  ];
  for (const [key, value] of values) {
    // Unquoted, a space or quote would be read differently by sh and systemd: every value here is made by podboot and has none.
    if (!/^[A-Za-z0-9._:/+=-]+$/.test(value)) throw new Error(`${key} for the node agent has characters it cannot carry unquoted`);
  }
  return values.map(([k, v]) => `${k}=${v}\n`).join('');
}

function networkConfig(m: ResolvedManagement): Record<string, unknown> {
  const iface = m.interface;
  const link: Record<string, unknown> =
    'mac' in iface
      ? // Renamed: the VLAN below and the operator find it by one name whatever the kernel called it.
        { match: { macaddress: iface.mac }, 'set-name': MANAGEMENT_IFNAME }
      : { match: { name: iface.name } };
  const ip: Record<string, unknown> =
    m.address === undefined
      ? { dhcp4: true }
      : {
          addresses: [`${formatIPv4(m.address)}/${m.prefix}`],
          ...(m.gateway !== undefined ? { routes: [{ to: '0.0.0.0/0', via: formatIPv4(m.gateway) }] } : {}),
          ...(m.dns.length ? { nameservers: { addresses: m.dns.map(formatIPv4) } } : {}),
        };
  if (m.vlan === undefined) return { version: 2, ethernets: { [MANAGEMENT_IFNAME]: { ...link, ...ip } } };
  // Tagged: the NIC itself carries no address, the VLAN interface on it does.
  return {
    version: 2,
    ethernets: { [MANAGEMENT_IFNAME]: link },
    vlans: { [`${MANAGEMENT_IFNAME}.${m.vlan}`]: { id: m.vlan, link: MANAGEMENT_IFNAME, ...ip } },
  };
}
