// Pod YAML → validated PodConfig. Every problem is located (file, line, column)
// so an operator can jump to it; all problems are reported, not the first.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode, type YAMLMap } from 'yaml';
import { cidrsOverlap, cidrContains, cidrBroadcast, formatIPv4, parseCidr, parseIPv4, type Cidr } from '../net/ipv4.js';
import { normalizeMac } from '../net/mac.js';
import { DEFAULT_BOOT_FILES, type BootFiles, type ConfigProblem, type NodeConfig, type PodConfig, type SubnetConfig } from './types.js';

export interface LoadResult {
  pod?: PodConfig;
  problems: ConfigProblem[];
}

class Checker {
  readonly problems: ConfigProblem[] = [];
  constructor(
    readonly file: string,
    private readonly lines: LineCounter,
  ) {}

  at(node: YamlNode | null | undefined, path: string, message: string): void {
    const offset = node?.range?.[0] ?? 0;
    const pos = this.lines.linePos(offset);
    this.problems.push({ file: this.file, line: pos.line, col: pos.col, path, message });
  }
}

type Fields = Record<string, { required?: boolean }>;

/** Checks a mapping's keys: unknown ones and missing required ones are problems. */
function mapping(c: Checker, node: unknown, path: string, fields: Fields, parent?: YamlNode): YAMLMap | undefined {
  if (!isMap(node)) {
    c.at((node as YamlNode) ?? parent, path, `expected a mapping`);
    return undefined;
  }
  for (const pair of node.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
    if (!(key in fields)) {
      const hint = closest(key, Object.keys(fields));
      c.at(pair.key as YamlNode, `${path}.${key}`, `unknown field${hint ? ` (did you mean ${hint}?)` : ''}`);
    }
  }
  for (const [name, f] of Object.entries(fields)) {
    if (f.required && !node.has(name)) c.at(node, `${path}.${name}`, 'required field is missing');
  }
  return node;
}

function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const cand of candidates) {
    const d = editDistance(word.toLowerCase(), cand.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = cand;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}

function node(map: YAMLMap | undefined, key: string): YamlNode | undefined {
  return map?.get(key, true) as YamlNode | undefined;
}

function str(c: Checker, map: YAMLMap | undefined, key: string, path: string): string | undefined {
  const n = node(map, key);
  if (n === undefined) return undefined;
  if (!isScalar(n) || (typeof n.value !== 'string' && typeof n.value !== 'number')) {
    c.at(n, `${path}.${key}`, 'expected a string');
    return undefined;
  }
  return String(n.value);
}

function int(c: Checker, map: YAMLMap | undefined, key: string, path: string, min: number, max: number): number | undefined {
  const n = node(map, key);
  if (n === undefined) return undefined;
  if (!isScalar(n) || typeof n.value !== 'number' || !Number.isInteger(n.value)) {
    c.at(n, `${path}.${key}`, 'expected an integer');
    return undefined;
  }
  if (n.value < min || n.value > max) {
    c.at(n, `${path}.${key}`, `${n.value} is outside ${min}..${max}`);
    return undefined;
  }
  return n.value;
}

function address(c: Checker, map: YAMLMap | undefined, key: string, path: string): number | undefined {
  const text = str(c, map, key, path);
  if (text === undefined) return undefined;
  const v = parseIPv4(text);
  if (v === undefined) c.at(node(map, key), `${path}.${key}`, `${text} is not an IPv4 address`);
  return v;
}

function addressList(c: Checker, map: YAMLMap | undefined, key: string, path: string): { value: number; node: YamlNode }[] {
  const n = node(map, key);
  if (n === undefined) return [];
  if (!isSeq(n)) {
    c.at(n, `${path}.${key}`, 'expected a list of IPv4 addresses');
    return [];
  }
  const out: { value: number; node: YamlNode }[] = [];
  n.items.forEach((item, i) => {
    const text = isScalar(item) ? String(item.value) : undefined;
    const v = text === undefined ? undefined : parseIPv4(text);
    if (v === undefined) c.at(item as YamlNode, `${path}.${key}[${i}]`, `${text ?? 'value'} is not an IPv4 address`);
    else out.push({ value: v, node: item as YamlNode });
  });
  return out;
}

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** 90s, 30m, 1h, 1d or a bare number of seconds. */
export function parseDuration(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v > 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = v.trim().match(/^(\d+)\s*([smhd]?)$/);
  if (!m) return undefined;
  const n = Number(m[1]) * (DURATION_UNITS[m[2] || 's'] ?? 1);
  return n > 0 ? n : undefined;
}

const POD_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

function loadSubnet(c: Checker, item: unknown, path: string): { subnet: SubnetConfig; node: YamlNode } | undefined {
  const m = mapping(c, item, path, { cidr: { required: true }, gateway: {}, pool: {}, dns: {}, leaseTime: {}, domain: {} });
  if (!m) return undefined;
  const cidrText = str(c, m, 'cidr', path);
  const cidr = cidrText === undefined ? undefined : parseCidr(cidrText);
  if (cidrText !== undefined && !cidr) c.at(node(m, 'cidr'), `${path}.cidr`, `${cidrText} is not a CIDR (a.b.c.d/len)`);
  if (!cidr || cidrText === undefined) return undefined;
  const canonical = `${formatIPv4(cidr.network)}/${cidr.prefix}`;
  if (canonical !== cidrText) c.at(node(m, 'cidr'), `${path}.cidr`, `${cidrText} has host bits set; the network is ${canonical}`);
  const gateway = address(c, m, 'gateway', path);
  if (gateway !== undefined && !cidrContains(cidr, gateway)) c.at(node(m, 'gateway'), `${path}.gateway`, `gateway ${formatIPv4(gateway)} is outside ${canonical}`);
  let pool: SubnetConfig['pool'];
  const poolText = str(c, m, 'pool', path);
  if (poolText !== undefined) {
    const parts = poolText.split('-').map((s) => s.trim());
    const start = parts.length === 2 ? parseIPv4(parts[0]!) : undefined;
    const end = parts.length === 2 ? parseIPv4(parts[1]!) : undefined;
    const pn = node(m, 'pool');
    if (start === undefined || end === undefined) c.at(pn, `${path}.pool`, `${poolText} is not a range first-last of IPv4 addresses`);
    else if (start > end) c.at(pn, `${path}.pool`, `pool start ${parts[0]} is after its end ${parts[1]}`);
    else {
      let ok = true;
      for (const [label, a, text] of [['start', start, parts[0]], ['end', end, parts[1]]] as const) {
        if (!cidrContains(cidr, a)) {
          c.at(pn, `${path}.pool`, `pool ${label} ${text} is outside ${canonical}`);
          ok = false;
        }
      }
      if (ok && cidr.prefix < 31 && (start === cidr.network || end === cidrBroadcast(cidr))) {
        c.at(pn, `${path}.pool`, `pool includes the network or broadcast address of ${canonical}`);
        ok = false;
      }
      if (ok && gateway !== undefined && gateway >= start && gateway <= end) {
        c.at(pn, `${path}.pool`, `pool contains the gateway ${formatIPv4(gateway)}`);
        ok = false;
      }
      if (ok) pool = { start, end };
    }
  }
  let leaseTimeSec = 3600;
  const lt = node(m, 'leaseTime');
  if (lt !== undefined) {
    const v = parseDuration(isScalar(lt) ? lt.value : undefined);
    if (v === undefined) c.at(lt, `${path}.leaseTime`, 'expected a duration such as 90s, 30m, 1h, 1d or seconds');
    else leaseTimeSec = v;
  }
  return {
    node: node(m, 'cidr') ?? m,
    subnet: {
      cidr: canonical,
      network: cidr.network,
      prefix: cidr.prefix,
      mask: cidr.mask,
      gateway,
      pool,
      dns: addressList(c, m, 'dns', path).map((a) => a.value),
      domain: str(c, m, 'domain', path),
      leaseTimeSec,
    },
  };
}

const BOOT_KEYS: (keyof BootFiles)[] = ['bios', 'uefi', 'arm64', 'ipxeScript', 'httpBoot'];

function loadBootFiles(c: Checker, n: unknown, path: string): Partial<BootFiles> {
  const m = mapping(c, n, path, Object.fromEntries(BOOT_KEYS.map((k) => [k, {}])));
  const out: Partial<BootFiles> = {};
  for (const k of BOOT_KEYS) {
    const v = str(c, m, k, path);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

function loadNode(c: Checker, item: unknown, path: string): { node: NodeConfig; yaml: YAMLMap } | undefined {
  const m = mapping(c, item, path, { mac: { required: true }, hostname: {}, address: {}, uuid: {}, boot: {} });
  if (!m) return undefined;
  const macText = str(c, m, 'mac', path);
  const mac = macText === undefined ? undefined : normalizeMac(macText);
  if (macText !== undefined && !mac) c.at(node(m, 'mac'), `${path}.mac`, `${macText} is not a MAC address`);
  const hostname = str(c, m, 'hostname', path);
  if (hostname !== undefined && !/^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(hostname)) c.at(node(m, 'hostname'), `${path}.hostname`, `${hostname} is not a valid host name`);
  const uuidText = str(c, m, 'uuid', path);
  const uuid = uuidText?.toLowerCase();
  if (uuid !== undefined && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(uuid)) c.at(node(m, 'uuid'), `${path}.uuid`, `${uuidText} is not a UUID`);
  const bootNode = node(m, 'boot');
  if (!mac) return undefined;
  return {
    yaml: m,
    node: { mac, hostname, address: address(c, m, 'address', path), uuid, boot: bootNode ? loadBootFiles(c, bootNode, `${path}.boot`) : undefined },
  };
}

export function loadPodText(text: string, file: string): LoadResult {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const c = new Checker(file, lines);
  for (const e of doc.errors) {
    const pos = e.linePos?.[0] ?? { line: 1, col: 1 };
    c.problems.push({ file, line: pos.line, col: pos.col, path: '(yaml)', message: e.message.split('\n')[0]! });
  }
  if (doc.errors.length) return { problems: c.problems };
  const root = mapping(c, doc.contents, '', { apiVersion: { required: true }, kind: { required: true }, metadata: { required: true }, spec: { required: true } });
  if (!root) return { problems: c.problems };
  const apiVersion = str(c, root, 'apiVersion', '');
  if (apiVersion !== undefined && apiVersion !== 'podboot/v1') c.at(node(root, 'apiVersion'), 'apiVersion', `expected podboot/v1, not ${apiVersion}`);
  const kind = str(c, root, 'kind', '');
  if (kind !== undefined && kind !== 'Pod') c.at(node(root, 'kind'), 'kind', `expected Pod, not ${kind}`);
  const meta = mapping(c, node(root, 'metadata'), 'metadata', { name: { required: true } }, root);
  const name = str(c, meta, 'name', 'metadata');
  if (name !== undefined && !POD_NAME.test(name)) c.at(node(meta, 'name'), 'metadata.name', `${name} is not a DNS label (a-z, 0-9, '-', at most 63)`);

  const spec = mapping(c, node(root, 'spec'), 'spec', { listen: { required: true }, relays: { required: true }, subnets: { required: true }, nodes: {}, unknownNodes: {}, boot: {}, tftp: {} }, root);
  const listen = mapping(c, node(spec, 'listen'), 'spec.listen', { address: { required: true }, dhcpPort: {}, tftpPort: {}, httpPort: {}, httpsPort: {} }, spec);
  const listenAddr = address(c, listen, 'address', 'spec.listen');
  const port = (k: string, d: number) => int(c, listen, k, 'spec.listen', 1, 65535) ?? d;
  const ports = { dhcpPort: port('dhcpPort', 67), tftpPort: port('tftpPort', 69), httpPort: port('httpPort', 80), httpsPort: port('httpsPort', 443) };

  const subnets: { subnet: SubnetConfig; node: YamlNode }[] = [];
  const subnetsNode = node(spec, 'subnets');
  if (subnetsNode !== undefined) {
    if (!isSeq(subnetsNode) || subnetsNode.items.length === 0) c.at(subnetsNode, 'spec.subnets', 'expected a non-empty list of subnets');
    else subnetsNode.items.forEach((item, i) => {
      const s = loadSubnet(c, item, `spec.subnets[${i}]`);
      if (s) subnets.push(s);
    });
  }
  subnets.forEach((a, i) =>
    subnets.slice(i + 1).forEach((b) => {
      if (cidrsOverlap(a.subnet, b.subnet)) c.at(b.node, `spec.subnets[${subnets.indexOf(b)}].cidr`, `${b.subnet.cidr} overlaps ${a.subnet.cidr}`);
    }),
  );
  const subnetOf = (a: number) => subnets.find((s) => cidrContains(s.subnet as Cidr, a));

  const relays = addressList(c, spec, 'relays', 'spec');
  if (isSeq(node(spec, 'relays')) && relays.length === 0 && c.problems.length === 0) c.at(node(spec, 'relays'), 'spec.relays', 'at least one relay address is needed');
  relays.forEach((r, i) => {
    if (!subnetOf(r.value)) c.at(r.node, `spec.relays[${i}]`, `relay ${formatIPv4(r.value)} is in none of the pod's subnets`);
  });

  const nodes: NodeConfig[] = [];
  const nodesNode = node(spec, 'nodes');
  if (nodesNode !== undefined && !isSeq(nodesNode)) c.at(nodesNode, 'spec.nodes', 'expected a list of nodes');
  const seenMac = new Map<string, string>();
  const seenAddr = new Map<number, string>();
  const seenHost = new Map<string, string>();
  if (isSeq(nodesNode)) {
    nodesNode.items.forEach((item, i) => {
      const path = `spec.nodes[${i}]`;
      const n = loadNode(c, item, path);
      if (!n) return;
      const prev = seenMac.get(n.node.mac);
      if (prev) c.at(node(n.yaml, 'mac'), `${path}.mac`, `duplicate MAC ${n.node.mac} (also ${prev})`);
      else seenMac.set(n.node.mac, path);
      if (n.node.hostname) {
        const h = seenHost.get(n.node.hostname);
        if (h) c.at(node(n.yaml, 'hostname'), `${path}.hostname`, `duplicate hostname ${n.node.hostname} (also ${h})`);
        else seenHost.set(n.node.hostname, path);
      }
      const a = n.node.address;
      if (a !== undefined) {
        const an = node(n.yaml, 'address');
        const s = subnetOf(a);
        const other = seenAddr.get(a);
        if (other) c.at(an, `${path}.address`, `duplicate address ${formatIPv4(a)} (also ${other})`);
        else seenAddr.set(a, path);
        if (!s) c.at(an, `${path}.address`, `fixed address ${formatIPv4(a)} is in none of the pod's subnets`);
        else if (s.subnet.pool && a >= s.subnet.pool.start && a <= s.subnet.pool.end) c.at(an, `${path}.address`, `fixed address ${formatIPv4(a)} is inside the pool of ${s.subnet.cidr}`);
      }
      nodes.push(n.node);
    });
  }

  const unknownText = str(c, spec, 'unknownNodes', 'spec');
  if (unknownText !== undefined && unknownText !== 'provision' && unknownText !== 'ignore') c.at(node(spec, 'unknownNodes'), 'spec.unknownNodes', `expected provision or ignore, not ${unknownText}`);

  const bootNode = node(spec, 'boot');
  const boot = bootNode ? mapping(c, bootNode, 'spec.boot', { nextServer: {}, files: {} }) : undefined;
  const nextServer = str(c, boot, 'nextServer', 'spec.boot');
  if (nextServer !== undefined && parseIPv4(nextServer) === undefined) c.at(node(boot, 'nextServer'), 'spec.boot.nextServer', `${nextServer} is not an IPv4 address`);
  const filesNode = node(boot, 'files');
  const files = filesNode ? loadBootFiles(c, filesNode, 'spec.boot.files') : {};

  const tftpNode = node(spec, 'tftp');
  const tftp = tftpNode ? mapping(c, tftpNode, 'spec.tftp', { maxBlockSize: {}, maxWindowSize: {}, maxTransfers: {} }) : undefined;
  const tftpCfg = {
    maxBlockSize: int(c, tftp, 'maxBlockSize', 'spec.tftp', 8, 65464) ?? 65464,
    maxWindowSize: int(c, tftp, 'maxWindowSize', 'spec.tftp', 1, 65535) ?? 64,
    maxTransfers: int(c, tftp, 'maxTransfers', 'spec.tftp', 1, 100000) ?? 200,
  };

  if (c.problems.length || name === undefined || listenAddr === undefined) return { problems: c.problems };
  return {
    problems: [],
    pod: {
      name,
      file,
      listen: { address: formatIPv4(listenAddr), ...ports },
      relays: relays.map((r) => r.value),
      subnets: subnets.map((s) => s.subnet),
      nodes,
      unknownNodes: (unknownText as PodConfig['unknownNodes'] | undefined) ?? 'provision',
      boot: { nextServer: nextServer ?? formatIPv4(listenAddr), files: { ...DEFAULT_BOOT_FILES, ...files } },
      tftp: tftpCfg,
    },
  };
}

export function loadPodFile(path: string): LoadResult {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return { problems: [{ file: path, line: 1, col: 1, path: '(file)', message: (err as Error).message }] };
  }
  return loadPodText(text, path);
}

/** Every *.yaml / *.yml in `dir`, plus the checks that span pods. */
export function loadPodDir(dir: string): { pods: PodConfig[]; problems: ConfigProblem[] } {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => /\.ya?ml$/.test(n)).sort();
  } catch (err) {
    return { pods: [], problems: [{ file: dir, line: 1, col: 1, path: '(dir)', message: (err as Error).message }] };
  }
  const pods: PodConfig[] = [];
  const problems: ConfigProblem[] = [];
  for (const n of names) {
    const r = loadPodFile(join(dir, n));
    problems.push(...r.problems);
    if (r.pod) pods.push(r.pod);
  }
  problems.push(...crossPodProblems(pods));
  return { pods, problems };
}

/** Problems between pods of one central node: names, listen sockets and subnets must not collide. */
export function crossPodProblems(pods: PodConfig[]): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const at = (p: PodConfig, path: string, message: string) => out.push({ file: p.file ?? '(embedded)', line: 1, col: 1, path, message });
  pods.forEach((a, i) =>
    pods.slice(i + 1).forEach((b) => {
      if (a.name === b.name) at(b, 'metadata.name', `pod name ${b.name} is also used by ${a.file}`);
      if (a.listen.address === b.listen.address) {
        for (const k of ['dhcpPort', 'tftpPort', 'httpPort', 'httpsPort'] as const) {
          if (a.listen[k] === b.listen[k]) at(b, `spec.listen.${k}`, `${b.listen.address}:${b.listen[k]} is also used by pod ${a.name} (${a.file})`);
        }
      }
      for (const sa of a.subnets) for (const sb of b.subnets) if (cidrsOverlap(sa, sb)) at(b, 'spec.subnets', `${sb.cidr} overlaps ${sa.cidr} of pod ${a.name} (${a.file})`);
    }),
  );
  return out;
}

/** The embedded example pod shipped with the package. */
export function defaultPodPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the podboot package folder');
    dir = up;
  }
  return join(dir, 'examples', 'default-pod.yaml');
}
