import type { NodeConfig, PodConfig, SubnetConfig } from '../../src/config/types.js';
import { DEFAULT_BOOT_FILES, DEFAULT_HEARTBEAT_SECONDS, DEFAULT_INSTALL } from '../../src/config/types.js';
import { parseCidr, parseIPv4 } from '../../src/net/ipv4.js';

export function ip(text: string): number {
  const v = parseIPv4(text);
  if (v === undefined) throw new Error(`bad test address ${text}`);
  return v;
}

export function subnet(cidr: string, pool?: [string, string], extra: Partial<SubnetConfig> = {}): SubnetConfig {
  const c = parseCidr(cidr)!;
  return {
    cidr,
    network: c.network,
    prefix: c.prefix,
    mask: c.mask,
    gateway: c.network + 1,
    pool: pool ? { start: ip(pool[0]), end: ip(pool[1]) } : undefined,
    dns: [c.network + 1],
    leaseTimeSec: 3600,
    ...extra,
  };
}

/** A pod config built in code, so DHCP tests do not depend on the YAML loader. */
export function testPod(over: Partial<PodConfig> & { nodes?: NodeConfig[] } = {}): PodConfig {
  return {
    name: 'rack-t',
    listen: { address: '10.99.0.1', dhcpPort: 67, tftpPort: 69, httpPort: 80, httpsPort: 443 },
    relays: [ip('10.20.0.1')],
    subnets: [subnet('10.20.0.0/24', ['10.20.0.100', '10.20.0.199'])],
    nodes: [],
    unknownNodes: 'provision',
    users: [],
    heartbeatSeconds: DEFAULT_HEARTBEAT_SECONDS,
    boot: { nextServer: '10.99.0.1', files: { ...DEFAULT_BOOT_FILES }, stage1: 'http' },
    install: { ...DEFAULT_INSTALL },
    tftp: { maxBlockSize: 65464, maxWindowSize: 64, maxTransfers: 200 },
    ...over,
  };
}
