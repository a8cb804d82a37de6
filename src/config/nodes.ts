// spec.nodes: the servers the pod knows, by MAC (and SMBIOS UUID), with fixed addresses.
import { formatIPv4 } from '../net/ipv4.js';
import { normalizeMac } from '../net/mac.js';
import { readBootFiles } from './boot-files.js';
import { fieldsOf, NODE_SHAPE } from './pod-shape.js';
import { poolOf, reservedIn, subnetOf, type LocatedSubnet } from './subnets.js';
import { isDnsName, normalizeUuid } from './syntax.js';
import { labelKeyProblem, labelValueProblem } from './labels.js';
import { readStage2Ref } from './stage2-ref.js';
import { readBmc } from './bmc.js';
import type { NodeConfig } from './types.js';
import { readSshKeys } from './users.js';
import type { NodeManagementReader } from './management.js';
import type { Section } from './yaml-reader.js';

const NODE_FIELDS = fieldsOf(NODE_SHAPE);

const FIELD_LABELS: Record<string, string> = { mac: 'MAC', uuid: 'UUID' };

/** Value that must be unique → path of the first node holding it, for "also …" messages. */
type Seen<K> = Map<K, string>;

/** What a node's installed-OS fields are read against (spec.managementNetwork, spec.users). */
export interface NodeContext {
  management: NodeManagementReader;
  /** spec.users lists somebody: a node's own SSH keys are added to those users' */
  usersListed: boolean;
}

/** A server's MAC and where it was written (spec.nodes[i].mac), for the checks between pods. */
export interface LocatedMac {
  mac: string;
  path: string;
}

/**
 * The servers whose MAC could be read, and those MACs located. `subnets`
 * undefined: some subnet is unusable, so fixed addresses are not checked
 * against them.
 */
export function readNodes(spec: Section, subnets: LocatedSubnet[] | undefined, context?: NodeContext): { nodes: NodeConfig[]; macs: LocatedMac[] } {
  const nodes: NodeConfig[] = [];
  const macs: LocatedMac[] = [];
  const seenMac: Seen<string> = new Map();
  const seenHost: Seen<string> = new Map();
  const seenAddr: Seen<number> = new Map();
  const seenUuid: Seen<string> = new Map();
  for (const item of spec.list('nodes') ?? []) {
    const n = spec.reader.section(item.node, item.path, NODE_FIELDS);
    if (!n) continue;
    const mac = readMac(n);
    claim(n, 'mac', mac, mac, seenMac);

    const hostname = n.string('hostname');
    if (hostname !== undefined && !isDnsName(hostname)) n.report('hostname', `${hostname} is not a host name (letters, digits, inner '-', dots)`);
    else claim(n, 'hostname', hostname?.toLowerCase(), hostname, seenHost);

    const address = n.address('address');
    if (address !== undefined) {
      if (subnets) checkFixedAddress(n, address, subnets);
      claim(n, 'address', address, formatIPv4(address), seenAddr);
    }

    const uuidText = n.string('uuid');
    const uuid = uuidText === undefined ? undefined : normalizeUuid(uuidText);
    if (uuidText !== undefined && uuid === undefined) n.report('uuid', `${uuidText} is not a UUID (8-4-4-4-12 hex digits)`);
    claim(n, 'uuid', uuid, uuid, seenUuid);

    const boot = readBootFiles(n, 'boot');
    const management = context?.management.read(n, mac);
    const keys = readSshKeys(n, 'sshAuthorizedKeys');
    if (keys?.length && context && !context.usersListed) n.report('sshAuthorizedKeys', 'no user to add these keys to: list the logins in spec.users');
    const labels = readLabels(n);
    const stage2 = readStage2Ref(n, 'stage2');
    const bmc = readBmc(n);
    if (mac) macs.push({ mac, path: `${n.path}.mac` });
    if (mac) {
      nodes.push({
        mac,
        hostname,
        address,
        uuid,
        boot,
        ...(management ? { management } : {}),
        ...(keys?.length ? { sshAuthorizedKeys: keys } : {}),
        ...(labels ? { labels } : {}),
        ...(stage2 ? { stage2 } : {}),
        ...(bmc ? { bmc } : {}),
      });
    }
  }
  context?.management.checkAgainst(nodes);
  return { nodes, macs };
}

/** spec.nodes[].labels: text values only (quote `true` or `1.0` if YAML would read them otherwise). */
function readLabels(n: Section): Record<string, string> | undefined {
  const pairs = n.pairs('labels');
  if (!pairs) return undefined;
  const labels: Record<string, string> = {};
  for (const p of pairs) {
    const keyProblem = labelKeyProblem(p.key);
    if (keyProblem) {
      n.reader.report(p.keyNode, p.path, keyProblem);
      continue;
    }
    const value = p.value === undefined ? undefined : n.reader.string(p.value, p.path);
    if (value === undefined) {
      if (p.value === undefined) n.reader.report(p.keyNode, p.path, 'expected a string, found nothing');
      continue;
    }
    const valueProblem = labelValueProblem(value);
    if (valueProblem) n.reader.report(p.value, p.path, valueProblem);
    else labels[p.key] = value;
  }
  return labels;
}

export function readMac(n: Section): string | undefined {
  const text = n.string('mac');
  if (text === undefined) return undefined;
  const mac = normalizeMac(text);
  if (!mac) n.report('mac', `${text} is not a MAC address (six hex bytes, e.g. 52:54:00:12:34:56)`);
  else if (parseInt(mac.slice(0, 2), 16) & 1) n.report('mac', `${text} is a multicast MAC, not a network card's`);
  else if (mac === '00:00:00:00:00:00') n.report('mac', `${text} is all zeros`);
  else return mac;
  return undefined;
}

function checkFixedAddress(n: Section, address: number, subnets: LocatedSubnet[]): void {
  const text = formatIPv4(address);
  const home = subnetOf(subnets, address);
  if (!home) {
    n.report('address', `fixed address ${text} is in none of the pod's subnets`);
    return;
  }
  const reserved = reservedIn(home.subnet, address);
  if (reserved) n.report('address', `fixed address ${text} is ${reserved}`);
  else if (address === home.subnet.gateway) n.report('address', `fixed address ${text} is the gateway of ${home.subnet.cidr}`);
  const pool = poolOf(subnets, address);
  if (pool) n.report('address', `fixed address ${text} is inside the pool of ${pool.subnet.cidr}`);
}

/** Reports `value` when an earlier node already has it (compared by `key`). */
function claim<K>(n: Section, field: string, key: K | undefined, value: string | undefined, seen: Seen<K>): void {
  if (key === undefined) return;
  const first = seen.get(key);
  if (first === undefined) seen.set(key, n.path);
  else n.report(field, `duplicate ${FIELD_LABELS[field] ?? field} ${value} (also ${first})`);
}
