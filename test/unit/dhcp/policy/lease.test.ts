// decideLease: what to answer a client from its request, the pod's inventory
// and the lease table (RFC 2131 §4.3). One row per case.
import { describe, expect, it } from 'vitest';
import { MessageType } from '../../../../src/dhcp/codec/constants.js';
import { LeaseTable } from '../../../../src/dhcp/lease-table.js';
import { decideLease, type LeaseOutcome } from '../../../../src/dhcp/policy/lease.js';
import { isRequestProblem, readRequest } from '../../../../src/dhcp/request.js';
import type { NodeConfig } from '../../../../src/config/types.js';
import type { LeaseRecord } from '../../../../src/store/types.js';
import { requestPacket, type RequestSpec } from '../../../helpers/dhcp-packets.js';
import { ip, subnet, testPod } from '../../../helpers/pods.js';

const MAC = '52:54:00:00:10:01';
const OTHER = '52:54:00:00:10:02';
const KEY = `hw:1:${MAC}`;
const NOW = 1_700_000_000;
const SERVER = ip('10.99.0.1');
const pod = testPod();
const net = subnet('10.20.0.0/24', ['10.20.0.100', '10.20.0.101']);

const bound = (mac: string, address: string, over: Partial<LeaseRecord> = {}): LeaseRecord => ({
  address: ip(address),
  clientKey: `hw:1:${mac}`,
  mac,
  state: 'bound',
  starts: NOW - 10,
  ends: NOW + 3590,
  subnet: net.cidr,
  ...over,
});
const bindRecord = (address: string): Partial<LeaseRecord> => ({ address: ip(address), clientKey: KEY, mac: MAC, state: 'bound', starts: NOW, ends: NOW + net.leaseTimeSec, subnet: net.cidr });

/** The outcome expected, in part: its kind and the fields the case is about. */
type Expected = { kind: LeaseOutcome['kind']; commit?: Partial<LeaseRecord>[] } & Record<string, unknown>;
type Row = [string, Partial<RequestSpec>, { leases?: LeaseRecord[]; node?: NodeConfig }, Expected];

describe('decideLease', () => {
  it.each<Row>([
    ['DISCOVER: the first free pool address, held for the offer', { type: MessageType.DISCOVER }, {}, { kind: 'offer', address: ip('10.20.0.100'), leaseTime: net.leaseTimeSec, holdUntil: NOW + 10 }],
    ['DISCOVER: the address the client held before', { type: MessageType.DISCOVER }, { leases: [bound(MAC, '10.20.0.101')] }, { kind: 'offer', address: ip('10.20.0.101') }],
    ['DISCOVER: past another client’s lease', { type: MessageType.DISCOVER }, { leases: [bound(OTHER, '10.20.0.100')] }, { kind: 'offer', address: ip('10.20.0.101') }],
    ['DISCOVER: a known node’s fixed address', { type: MessageType.DISCOVER }, { node: { mac: MAC, address: ip('10.20.0.50') } }, { kind: 'offer', address: ip('10.20.0.50') }],
    ['DISCOVER: a fixed address on another link', { type: MessageType.DISCOVER }, { node: { mac: MAC, address: ip('10.30.0.50') } }, { kind: 'drop', reason: 'fixed-address-not-on-link' }],
    ['DISCOVER: pool exhausted', { type: MessageType.DISCOVER }, { leases: [bound(OTHER, '10.20.0.100'), bound('52:54:00:00:10:03', '10.20.0.101')] }, { kind: 'drop', reason: 'pool-exhausted' }],
    [
      'REQUEST (selecting): ACK and one bound record',
      { type: MessageType.REQUEST, serverId: SERVER, requestedIp: ip('10.20.0.100') },
      {},
      { kind: 'ack', address: ip('10.20.0.100'), commit: [bindRecord('10.20.0.100')] },
    ],
    [
      'REQUEST (selecting): moving releases the old lease in the same commit',
      { type: MessageType.REQUEST, serverId: SERVER, requestedIp: ip('10.20.0.100') },
      { leases: [bound(MAC, '10.20.0.101')] },
      { kind: 'ack', commit: [{ address: ip('10.20.0.101'), state: 'released', ends: NOW }, bindRecord('10.20.0.100')] },
    ],
    ['REQUEST (selecting): another server chosen', { type: MessageType.REQUEST, serverId: ip('10.99.0.2'), requestedIp: ip('10.20.0.100') }, {}, { kind: 'drop', reason: 'other-server-selected' }],
    ['REQUEST (selecting): no option 50', { type: MessageType.REQUEST, serverId: SERVER }, {}, { kind: 'nak', message: 'REQUEST in SELECTING state without option 50' }],
    ['REQUEST (selecting): outside the pool', { type: MessageType.REQUEST, serverId: SERVER, requestedIp: ip('10.20.0.7') }, {}, { kind: 'nak', message: '10.20.0.7 is outside the pool' }],
    [
      'REQUEST (selecting): leased to another client',
      { type: MessageType.REQUEST, serverId: SERVER, requestedIp: ip('10.20.0.100') },
      { leases: [bound(OTHER, '10.20.0.100')] },
      { kind: 'nak', message: '10.20.0.100 is leased to another client' },
    ],
    [
      'REQUEST (selecting): not the node’s fixed address',
      { type: MessageType.REQUEST, serverId: SERVER, requestedIp: ip('10.20.0.100') },
      { node: { mac: MAC, address: ip('10.20.0.50') } },
      { kind: 'nak' },
    ],
    ['REQUEST (init-reboot): unknown client, silence', { type: MessageType.REQUEST, requestedIp: ip('10.20.0.100') }, {}, { kind: 'drop', reason: 'init-reboot-unknown-client' }],
    [
      'REQUEST (init-reboot): another subnet',
      { type: MessageType.REQUEST, requestedIp: ip('10.30.0.100') },
      { leases: [bound(MAC, '10.20.0.100')] },
      { kind: 'nak', message: '10.30.0.100 is not on 10.20.0.0/24' },
    ],
    ['REQUEST (init-reboot): its own lease', { type: MessageType.REQUEST, requestedIp: ip('10.20.0.100') }, { leases: [bound(MAC, '10.20.0.100')] }, { kind: 'ack', address: ip('10.20.0.100') }],
    [
      'REQUEST (init-reboot): not its lease',
      { type: MessageType.REQUEST, requestedIp: ip('10.20.0.101') },
      { leases: [bound(MAC, '10.20.0.100')] },
      { kind: 'nak', message: "client's lease is 10.20.0.100, not 10.20.0.101" },
    ],
    [
      'REQUEST (renewing): extends ciaddr',
      { type: MessageType.REQUEST, ciaddr: ip('10.20.0.100') },
      { leases: [bound(MAC, '10.20.0.100')] },
      { kind: 'ack', address: ip('10.20.0.100'), commit: [bindRecord('10.20.0.100')] },
    ],
    ['REQUEST: no address at all', { type: MessageType.REQUEST }, {}, { kind: 'drop', reason: 'request-without-address' }],
    [
      'DECLINE: its own address is quarantined',
      { type: MessageType.DECLINE, requestedIp: ip('10.20.0.100') },
      { leases: [bound(MAC, '10.20.0.100')] },
      { kind: 'record', note: 'declined', commit: [{ address: ip('10.20.0.100'), clientKey: '', state: 'declined', ends: NOW + 3600 }] },
    ],
    [
      'DECLINE: someone else’s address',
      { type: MessageType.DECLINE, requestedIp: ip('10.20.0.100') },
      { leases: [bound(OTHER, '10.20.0.100')] },
      { kind: 'drop', reason: 'decline-of-foreign-address' },
    ],
    ['DECLINE: no address', { type: MessageType.DECLINE }, {}, { kind: 'drop', reason: 'decline-without-address' }],
    [
      'RELEASE: keeps the client key',
      { type: MessageType.RELEASE, ciaddr: ip('10.20.0.100') },
      { leases: [bound(MAC, '10.20.0.100')] },
      { kind: 'record', note: 'released', commit: [{ address: ip('10.20.0.100'), clientKey: KEY, state: 'released', ends: NOW }] },
    ],
    ['RELEASE: someone else’s address', { type: MessageType.RELEASE, ciaddr: ip('10.20.0.100') }, { leases: [bound(OTHER, '10.20.0.100')] }, { kind: 'drop', reason: 'release-of-foreign-address' }],
    ['INFORM', { type: MessageType.INFORM, ciaddr: ip('10.20.0.100') }, {}, { kind: 'inform' }],
  ])('%s', (_name, spec, setup, expected) => {
    const req = readRequest(requestPacket({ mac: MAC, giaddr: ip('10.20.0.1'), type: MessageType.DISCOVER, ...spec }));
    if (isRequestProblem(req)) throw new Error(req.reason);
    const nodes = setup.node ? [setup.node] : [];
    const table = new LeaseTable(nodes, setup.leases ?? []);
    const outcome = decideLease({ pod: { ...pod, nodes }, subnet: net, node: setup.node, table, serverId: SERVER, now: NOW, offerHoldSec: 10, declineHoldSec: 3600 }, req);
    expect(outcome).toMatchObject(expected);
    if ('commit' in expected && 'commit' in outcome) expect(outcome.commit).toHaveLength(expected.commit!.length);
  });
});
