// One pod file's text → a validated PodConfig, or every problem found in it.
// Pure: no file system; load.ts reads files and directories.
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type YAMLMap, type YAMLSeq } from 'yaml';
import { formatIPv4, parseIPv4, prefixMask } from '../net/ipv4.js';
import { readBootFiles } from './boot-files.js';
import { readListen } from './listen.js';
import { readIsolation } from './isolation.js';
import { readLimits } from './limits.js';
import { readImageSharing } from './image-sharing.js';
import { readNodes } from './nodes.js';
import { NodeManagementReader, readManagementNetwork } from './management.js';
import { readUsers } from './users.js';
import { parseDuration } from './duration.js';
import { poolOf, readSubnetList, subnetOf, type LocatedSubnet } from './subnets.js';
import { isPodName } from './syntax.js';
import { readStage2Ref } from './stage2-ref.js';
import { DEFAULT_BOOT_FILES, DEFAULT_HEARTBEAT_SECONDS, DEFAULT_IMAGE_STREAMS, DEFAULT_INSTALL, TFTP_IPXE_SCRIPT, type ConfigProblem, type PodConfig } from './types.js';
import {
  API_VERSION,
  BOOT_SHAPE,
  boundsOf,
  fieldsOf,
  HEARTBEAT_SHAPE,
  IMAGE_STREAMS_SHAPE,
  INSTALL_SHAPE,
  KIND,
  METADATA_SHAPE,
  POD_SHAPE,
  SPEC_SHAPE,
  STAGE1_TRANSPORTS,
  TFTP_SHAPE,
  UNKNOWN_NODE_POLICIES,
} from './pod-shape.js';
import { found, shapeOf, YamlReader, type Position, type Section } from './yaml-reader.js';
import { yamlErrorMessage } from './yaml-errors.js';
import { NO_FACTS, type PodFacts } from './cross-pod.js';

/** A parsed pod file: the pod when it has no problem, and a way to locate its fields. */
export interface ParsedPod {
  pod?: PodConfig;
  problems: ConfigProblem[];
  /**
   * Where a field such as `spec.subnets[0].cidr` was written (written: true);
   * for a field left to its default, the nearest mapping that would hold it.
   */
  locate(path: string): Position & { written: boolean };
  /**
   * The fields the checks between pods compare, each one only if its value
   * could be read: also for a file with problems, so that `podboot validate`
   * reports problems within and between files in one run.
   */
  facts: PodFacts;
}

// Field tables from the pod's shape (pod-shape.ts), which the JSON Schema is made from too.
const ROOT_FIELDS = fieldsOf(POD_SHAPE);
const METADATA_FIELDS = fieldsOf(METADATA_SHAPE);
const SPEC_FIELDS = fieldsOf(SPEC_SHAPE);
const INSTALL_FIELDS = fieldsOf(INSTALL_SHAPE);
const BOOT_FIELDS = fieldsOf(BOOT_SHAPE);
const TFTP_FIELDS = fieldsOf(TFTP_SHAPE);
const IMAGE_STREAMS_FIELDS = fieldsOf(IMAGE_STREAMS_SHAPE);
const HEARTBEAT_FIELDS = fieldsOf(HEARTBEAT_SHAPE);
/** Node agent reports: more often floods the pod's database, less often makes `silent` (3 intervals) too slow to notice. */
const HEARTBEAT_MIN_SEC = 5;
const HEARTBEAT_MAX_SEC = 3600;
/** One broken bracket can make the parser complain hundreds of times; the first few locate it. */
const MAX_SYNTAX_PROBLEMS = 10;

export function parsePod(text: string, file: string): ParsedPod {
  const lines = new LineCounter();
  let doc: Document;
  try {
    doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  } catch (err) {
    // The parser reports its own errors as values; this is for anything it did not foresee.
    // Its message is not shown: it could quote the file.
    const problems = [{ file, line: 1, col: 1, path: '(yaml)', message: `cannot parse (${(err as Error).name})` }];
    return { problems, locate: () => ({ line: 1, col: 1, written: false }), facts: NO_FACTS };
  }
  const r = new YamlReader(file, doc, lines);
  const locate = (path: string): Position & { written: boolean } => {
    let node = r.resolve(doc.contents);
    for (const step of path.match(/[^.[\]]+/g) ?? []) {
      const next = r.resolve(isMap(node) ? node.get(step, true) : (node as { items?: unknown[] } | undefined)?.items?.[Number(step)]);
      if (!next) return { ...r.position(node), written: false };
      node = next;
    }
    return { ...r.position(node), written: true };
  };
  const result = (pod?: PodConfig, facts: PodFacts = NO_FACTS): ParsedPod => {
    const problems = r.problems.sort((a, b) => a.line - b.line || a.col - b.col);
    return problems.length ? { problems, locate, facts } : { pod, problems, locate, facts };
  };

  // A document with syntax errors is not read further: its tree may not be what was meant.
  const syntax = [...doc.errors, ...doc.warnings];
  const shown = new Set<string>();
  for (const e of syntax) {
    const problem = { file, ...lines.linePos(e.pos[0]), path: '(yaml)', message: yamlErrorMessage(e) };
    const key = `${problem.line}:${problem.col}:${problem.message}`;
    if (shown.has(key)) continue;
    shown.add(key);
    if (shown.size > MAX_SYNTAX_PROBLEMS) {
      r.problems.push({ ...problem, message: 'further syntax errors not shown' });
      break;
    }
    r.problems.push(problem);
  }
  if (r.problems.length) return result();
  const rootNode = r.resolve(doc.contents);
  if (!isMap(rootNode)) {
    r.report(rootNode, '(document)', `expected a pod (a mapping with apiVersion, kind, metadata, spec), found ${rootNode ? shapeOf(rootNode) : 'an empty file'}`);
    return result();
  }
  if (!declaresPod(r, rootNode)) return result();
  const root = r.section(rootNode, '', ROOT_FIELDS)!;
  const name = readName(root);
  const spec = root.section('spec', SPEC_FIELDS);
  if (!spec) return result(undefined, { ...NO_FACTS, ...(name === undefined ? {} : { name }) });

  const listen = readListen(spec);
  const subnetList = readSubnetList(spec);
  const subnets = subnetList.complete ? subnetList.located : undefined;
  const relays = readRelays(spec, subnets);
  const managementNetwork = readManagementNetwork(spec, subnets);
  const users = readUsers(spec);
  const usersNode = spec.node('users');
  const { nodes, macs } = readNodes(spec, subnets, {
    management: new NodeManagementReader(managementNetwork),
    // A users field of the wrong shape is reported there, not again on every node's keys.
    usersListed: isSeq(usersNode) ? usersNode.items.length > 0 : usersNode !== undefined,
  });
  const heartbeatSeconds = readHeartbeat(spec);
  const unknownNodes = spec.oneOf('unknownNodes', UNKNOWN_NODE_POLICIES) ?? 'provision';
  const boot = spec.section('boot', BOOT_FIELDS);
  const nextServer = boot?.address('nextServer');
  const files = boot ? readBootFiles(boot, 'files') : undefined;
  const stage1 = boot?.oneOf('stage1', STAGE1_TRANSPORTS) ?? 'http';
  const install = readInstall(spec);
  const tftp = readTftp(spec);
  const imageStreams = readImageStreams(spec);
  const imageSharing = readImageSharing(spec);
  const stage2 = readStage2Ref(spec, 'stage2');
  const isolation = readIsolation(spec, listen.config ? parseIPv4(listen.config.address) : undefined);
  const limits = readLimits(spec);

  const facts: PodFacts = {
    ...(name === undefined ? {} : { name }),
    ...(listen.address === undefined ? {} : { listen: { address: listen.address, ports: listen.ports } }),
    subnets: subnetList.located.map((s) => ({ cidr: s.subnet, text: s.subnet.cidr, path: s.path })),
    macs,
    ...(managementNetwork.net
      ? {
          managementNetwork: {
            cidr: { network: managementNetwork.net.network, prefix: managementNetwork.net.prefix, mask: prefixMask(managementNetwork.net.prefix) },
            text: managementNetwork.net.cidr,
          },
        }
      : {}),
  };
  if (r.problems.length || name === undefined || listen.config === undefined || subnets === undefined) return result(undefined, facts);
  return result(
    {
      name,
      file,
      listen: listen.config,
      relays,
      subnets: subnets.map((s) => s.subnet),
      nodes,
      unknownNodes,
      users,
      heartbeatSeconds,
      boot: {
        nextServer: nextServer === undefined ? listen.config.address : formatIPv4(nextServer),
        // Without a plain-HTTP listener iPXE fetches its script by TFTP from the next server.
        files: { ...DEFAULT_BOOT_FILES, ...(stage1 === 'tftp' ? { ipxeScript: TFTP_IPXE_SCRIPT } : {}), ...files },
        stage1,
      },
      install,
      tftp,
      ...(imageStreams ? { imageStreams } : {}),
      ...(imageSharing ? { imageSharing } : {}),
      ...(stage2 ? { stage2 } : {}),
      ...(managementNetwork.net ? { managementNetwork: managementNetwork.net } : {}),
      ...(isolation.mode === 'netns' ? { isolation } : {}),
      ...(limits ? { limits } : {}),
    },
    facts,
  );
}

/**
 * Until a file says it is a pod it may be anything a symlink points at (a
 * key, /etc/shadow): only its two header fields are checked, and nothing of
 * it is quoted, not even its keys. Past this point the file is the
 * operator's pod file, and messages may quote its values (never
 * rootPasswordHash) to say what is wrong with them.
 */
function declaresPod(r: YamlReader, root: YAMLMap): boolean {
  let ok = true;
  for (const [field, want] of [
    ['apiVersion', API_VERSION],
    ['kind', KIND],
  ] as const) {
    const node = r.resolve(root.get(field, true));
    if (node === undefined) r.report(root, field, 'required field is missing');
    else if (!isScalar(node) || node.value !== want) r.report(node, field, `expected ${want}`);
    else continue;
    ok = false;
  }
  return ok;
}

function readInstall(spec: Section): PodConfig['install'] {
  const s = spec.section('install', INSTALL_FIELDS);
  const install = { ...DEFAULT_INSTALL };
  const kickstart = s?.string('kickstart');
  if (kickstart !== undefined) {
    if (/^[A-Za-z0-9._-]+$/.test(kickstart) && !kickstart.startsWith('.')) install.kickstart = kickstart;
    else if (kickstart.startsWith('/') && !kickstart.split('/').includes('..')) install.kickstart = kickstart;
    else s!.report('kickstart', `${JSON.stringify(kickstart)}: give a template name from kickstart/ (e.g. lab-image.sh) or an absolute path`);
  }
  const disk = s?.string('disk');
  if (disk !== undefined) {
    if (/^\/dev\/[A-Za-z0-9_/-]+$/.test(disk) && !disk.includes('..')) install.disk = disk;
    else s!.report('disk', `${JSON.stringify(disk)} is not a device path such as /dev/vda`);
  }
  const hash = s?.string('rootPasswordHash');
  if (hash !== undefined) {
    // A crypt(3) hash, never a password: $6$salt$hash (SHA-512), $5$, $y$ (yescrypt), $2b$.
    if (/^\$(5|6|y|2[aby])\$[./A-Za-z0-9$]{8,}$/.test(hash)) install.rootPasswordHash = hash;
    else s!.report('rootPasswordHash', 'expected a crypt(3) hash such as $6$salt$... (openssl passwd -6), never a plain password');
  }
  const repoUrl = s?.string('repoUrl');
  if (repoUrl !== undefined) {
    const problem = repoUrlProblem(repoUrl);
    if (problem) s!.report('repoUrl', problem);
    else install.repoUrl = repoUrl;
  }
  // The RHEL kickstart installs from a repository the pod does not serve: without one Anaconda stops at its first question.
  if (install.kickstart === 'rhel9.ks') {
    if (repoUrl === undefined) s!.report('repoUrl', 'kickstart rhel9.ks needs install.repoUrl: the package repository Anaconda installs from (the pod serves none)');
    // Its `rootpw --iscrypted` line would be left without a value, which Anaconda refuses.
    if (hash === undefined) s!.report('rootPasswordHash', 'kickstart rhel9.ks needs install.rootPasswordHash (openssl passwd -6): its rootpw line sets it');
  }
  return install;
}

/**
 * Why a repository URL cannot go into a kickstart's `url --url=` line, if so.
 * The template renders it unquoted, keeping only characters that cannot end
 * the directive (src/http-boot/kickstart.ts); a URL with any other would be
 * cut silently, so it is refused here instead.
 */
function repoUrlProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `${JSON.stringify(text)} is not a URL`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `${JSON.stringify(text)}: expected an http:// or https:// URL`;
  if (url.username || url.password) return 'a repository URL with a user name or password would be sent to every server: give one without';
  if (!/^[A-Za-z0-9._:/@+=$-]+$/.test(text)) return `${JSON.stringify(text)} has characters a kickstart line does not carry (only A-Z a-z 0-9 . _ : / @ + = $ -)`;
  return undefined;
}

function readHeartbeat(spec: Section): number {
  const s = spec.section('heartbeat', HEARTBEAT_FIELDS);
  const node = s?.node('interval');
  if (!s || node === undefined) return DEFAULT_HEARTBEAT_SECONDS;
  const seconds = parseDuration(isScalar(node) ? node.value : undefined);
  if (seconds === undefined) s.report('interval', `expected a duration such as 90s, 30m, 1h, 1d or a number of seconds, found ${found(node)}`);
  else if (seconds < HEARTBEAT_MIN_SEC || seconds > HEARTBEAT_MAX_SEC) s.report('interval', `a heartbeat every ${seconds} s is outside 5s..1h`);
  else return seconds;
  return DEFAULT_HEARTBEAT_SECONDS;
}

/**
 * Names of the central node's own entries in the state root (STATE/ca: the
 * local CA, STATE/central: the API socket, operator token and shared stage1).
 * A pod's state lives in STATE/<name>, handed to the pod's own user: a pod
 * named `ca` would be given the CA's keys.
 */
export const RESERVED_POD_NAMES: readonly string[] = ['ca', 'central'];

function readName(root: Section): string | undefined {
  const metadata = root.section('metadata', METADATA_FIELDS);
  const name = metadata?.string('name');
  if (name === undefined) return name;
  if (!isPodName(name)) {
    metadata!.report('name', `${name} is not a DNS label (a-z, 0-9, inner '-', at most 63)`);
    return undefined;
  }
  if (RESERVED_POD_NAMES.includes(name)) {
    metadata!.report('name', `${name} is reserved: the central node keeps its own state in STATE/${name} (reserved: ${RESERVED_POD_NAMES.join(', ')})`);
    return undefined;
  }
  return name;
}

/** giaddr values the pod accepts: each must sit in one of its subnets, outside the pools. */
function readRelays(spec: Section, subnets: LocatedSubnet[] | undefined): number[] {
  const items = spec.addressList('relays');
  if (items === undefined) return [];
  if ((spec.node('relays') as YAMLSeq).items.length === 0) spec.report('relays', 'at least one relay address is needed');
  const seen = new Map<number, string>();
  for (const relay of items) {
    const text = formatIPv4(relay.value);
    const first = seen.get(relay.value);
    if (first) spec.reader.report(relay.node, relay.path, `duplicate relay ${text} (also ${first})`);
    seen.set(relay.value, first ?? relay.path);
    if (!subnets) continue;
    if (!subnetOf(subnets, relay.value)) spec.reader.report(relay.node, relay.path, `relay ${text} is in none of the pod's subnets`);
    const pool = poolOf(subnets, relay.value);
    if (pool) spec.reader.report(relay.node, relay.path, `relay ${text} is inside the pool of ${pool.subnet.cidr}`);
  }
  return items.map((i) => i.value);
}

function readImageStreams(spec: Section): PodConfig['imageStreams'] {
  const s = spec.section('imageStreams', IMAGE_STREAMS_FIELDS);
  if (!s) return undefined;
  const perPod = s.integer('perPod', ...boundsOf(IMAGE_STREAMS_SHAPE, 'perPod'));
  const perRack = s.integer('perRack', ...boundsOf(IMAGE_STREAMS_SHAPE, 'perRack'));
  const limits = { perPod: perPod ?? DEFAULT_IMAGE_STREAMS.perPod, perRack: perRack ?? DEFAULT_IMAGE_STREAMS.perRack };
  // A rack limit above the pod's could never be reached: the operator meant something else.
  if (perRack !== undefined && limits.perRack > limits.perPod) s.report('perRack', `${limits.perRack} is above perPod (${limits.perPod}): a rack cannot have more streams than its pod`);
  return limits;
}

function readTftp(spec: Section): PodConfig['tftp'] {
  const tftp = spec.section('tftp', TFTP_FIELDS);
  return {
    // Ranges in TFTP_SHAPE: RFC 2348 blksize, RFC 7440 windowsize, one UDP socket per transfer.
    maxBlockSize: tftp?.integer('maxBlockSize', ...boundsOf(TFTP_SHAPE, 'maxBlockSize')) ?? 65464,
    maxWindowSize: tftp?.integer('maxWindowSize', ...boundsOf(TFTP_SHAPE, 'maxWindowSize')) ?? 64,
    maxTransfers: tftp?.integer('maxTransfers', ...boundsOf(TFTP_SHAPE, 'maxTransfers')) ?? 200,
  };
}
