// DHCP options by name and value (`podboot dhcp probe`): packets as podboot
// builds and sends them, encoded to bytes and decoded again with the codec,
// and packets captured from iPXE and Kea (test/fixtures/dhcp).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { replyText } from '../../../src/cli/commands/dhcp-probe.js';
import { describeReply } from '../../../src/dhcp/client.js';
import { MessageType, Opt, RelaySub } from '../../../src/dhcp/codec/constants.js';
import { encodeSubOptions, u16, u32 } from '../../../src/dhcp/codec/options.js';
import { decodePacket, encodePacket, type DhcpPacket } from '../../../src/dhcp/codec/packet.js';
import { describeOptions, optionName, optionText, type OptionView } from '../../../src/dhcp/option-names.js';
import { DEFAULT_BOOT_FILES } from '../../../src/config/types.js';
import { buildReply } from '../../../src/dhcp/reply.js';
import { isRequestProblem, readRequest } from '../../../src/dhcp/request.js';
import { requestPacket } from '../../helpers/dhcp-packets.js';
import { ip, subnet, testPod } from '../../helpers/pods.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/dhcp/', import.meta.url));

/** The bytes on the wire, decoded again: what a probe receives. */
function wire(p: DhcpPacket): DhcpPacket {
  const d = decodePacket(encodePacket(p));
  if (!d.ok) throw new Error(`${d.reason}: ${d.detail}`);
  return d.packet;
}

function captured(name: string): DhcpPacket {
  const d = decodePacket(readFileSync(join(FIXTURES, `${name}.bin`)));
  if (!d.ok) throw new Error(`${d.reason}: ${d.detail}`);
  return d.packet;
}

const byCode = (views: OptionView[]) => new Map(views.map((v) => [v.code, v]));

/** A relayed PXE BIOS client's DISCOVER and the OFFER the pod's reply builder makes for it. */
function pxeOffer(): DhcpPacket {
  const agent = encodeSubOptions([
    [RelaySub.CIRCUIT_ID, Buffer.from('rack1-port7')],
    [RelaySub.REMOTE_ID, Buffer.from([0x00, 0x1b, 0x21, 0xff])],
    [RelaySub.LINK_SELECTION, u32(ip('10.20.0.0'))],
    [RelaySub.RELAY_SOURCE_PORT, Buffer.alloc(0)],
  ]);
  const req = readRequest(
    wire(requestPacket({ type: MessageType.DISCOVER, mac: '52:54:00:20:00:10', giaddr: ip('10.20.0.1'), arch: 0, vendorClass: 'PXEClient:Arch:00000:UNDI:002001', relayAgentInfo: agent })),
  );
  if (isRequestProblem(req)) throw new Error(req.detail);
  const pod = testPod();
  return wire(
    buildReply({
      type: MessageType.OFFER,
      request: req,
      chaddr: Buffer.alloc(16),
      htype: 1,
      hlen: 6,
      pod,
      subnet: subnet('10.20.0.0/24', ['10.20.0.100', '10.20.0.199'], { dns: [ip('10.20.0.1'), ip('10.20.0.2')] }),
      serverId: ip('10.99.0.1'),
      nextServer: ip('10.99.0.1'),
      yiaddr: ip('10.20.0.100'),
      leaseTime: 3600,
      hostname: 'node-10',
      boot: { kind: 'boot', file: DEFAULT_BOOT_FILES.bios, via: 'bios', vendorClass: 'PXEClient' },
    }),
  );
}

describe('DHCP options by name and value', () => {
  it("decodes the pod's own PXE offer: addresses, times, boot fields, PXE 43 and relay agent 82 sub-options", () => {
    const views = describeOptions(pxeOffer().options);
    const o = byCode(views);
    expect(o.get(Opt.MESSAGE_TYPE)).toEqual({ code: 53, name: 'message-type', value: 'OFFER', hex: '02' });
    expect(o.get(Opt.SERVER_ID)).toEqual({ code: 54, name: 'server-identifier', value: '10.99.0.1', hex: '0a630001' });
    expect(o.get(Opt.SUBNET_MASK)).toMatchObject({ name: 'subnet-mask', value: '255.255.255.0' });
    expect(o.get(Opt.ROUTER)).toMatchObject({ name: 'routers', value: ['10.20.0.1'] });
    expect(o.get(Opt.DNS)).toMatchObject({ name: 'domain-name-servers', value: ['10.20.0.1', '10.20.0.2'], hex: '0a1400010a140002' });
    expect(o.get(Opt.LEASE_TIME)).toEqual({ code: 51, name: 'lease-time', value: 3600, hex: '00000e10' });
    expect(o.get(Opt.RENEWAL_TIME)).toMatchObject({ name: 'renewal-time', value: 1800 });
    expect(o.get(Opt.REBINDING_TIME)).toMatchObject({ name: 'rebinding-time', value: 3150 });
    expect(o.get(Opt.HOSTNAME)).toMatchObject({ name: 'host-name', value: 'node-10' });
    expect(o.get(Opt.BOOTFILE)).toMatchObject({ name: 'bootfile-name', value: 'undionly.kpxe' });
    expect(o.get(Opt.TFTP_SERVER)).toMatchObject({ name: 'tftp-server-name', value: '10.99.0.1' });
    expect(o.get(Opt.VENDOR_CLASS)).toMatchObject({ name: 'vendor-class', value: 'PXEClient' });
    // PXE's sub-option 6 = 8: take the boot file from this offer, no boot server discovery.
    expect(o.get(Opt.VENDOR_SPECIFIC)).toEqual({
      code: 43,
      name: 'vendor-encapsulated-options',
      value: [{ code: 6, name: 'discovery-control', value: 8, hex: '08' }],
      hex: '060108',
    });
    // Option 82 comes back as the relay sent it, every sub-option named.
    expect(o.get(Opt.RELAY_AGENT_INFO)?.value).toEqual([
      { code: 1, name: 'circuit-id', value: 'rack1-port7', hex: Buffer.from('rack1-port7').toString('hex') },
      { code: 2, name: 'remote-id', value: null, hex: '001b21ff' },
      { code: 5, name: 'link-selection', value: '10.20.0.0', hex: '0a140000' },
      { code: 19, name: 'relay-source-port', value: null, hex: '' },
    ]);
    // As a terminal shows them.
    expect(optionText(o.get(Opt.LEASE_TIME)!)).toBe('3600 s (1h)');
    expect(optionText(o.get(Opt.REBINDING_TIME)!)).toBe('3150 s (52m30s)');
    expect(optionText(o.get(Opt.DNS)!)).toBe('10.20.0.1, 10.20.0.2');
    expect(optionText(o.get(Opt.VENDOR_SPECIFIC)!)).toBe('discovery-control 8');
    expect(optionText(o.get(Opt.RELAY_AGENT_INFO)!)).toBe('circuit-id rack1-port7; remote-id hex 001b21ff; link-selection 10.20.0.0; relay-source-port');
  });

  it("decodes a client's request: parameter list, client arch 93, user class 77, NDI, UUID; unknown options stay hex", () => {
    const p = wire(
      requestPacket({
        type: MessageType.REQUEST,
        mac: '52:54:00:20:00:11',
        arch: 7,
        userClass: 'iPXE',
        clientId: Buffer.from('01525400200011', 'hex'),
        requestedIp: ip('10.20.0.100'),
        extra: [
          [Opt.CLIENT_NDI, Buffer.from([1, 3, 16])],
          [Opt.MAX_MESSAGE_SIZE, u16(1472)],
          [150, u32(ip('10.99.0.9'))],
          [224, Buffer.from('private')],
        ],
      }),
    );
    const o = byCode(describeOptions(p.options));
    expect(o.get(Opt.CLIENT_ARCH)).toEqual({ code: 93, name: 'client-arch', value: [{ code: 7, name: 'EFI BC' }], hex: '0007' });
    expect(o.get(Opt.USER_CLASS)).toMatchObject({ name: 'user-class', value: ['iPXE'] });
    expect(o.get(Opt.CLIENT_ID)).toMatchObject({ name: 'client-identifier', value: '01:52:54:00:20:00:11' });
    expect(o.get(Opt.REQUESTED_IP)).toMatchObject({ name: 'requested-address', value: '10.20.0.100' });
    expect(o.get(Opt.CLIENT_NDI)).toMatchObject({ name: 'client-ndi', value: { type: 1, major: 3, minor: 16 } });
    expect(o.get(Opt.MAX_MESSAGE_SIZE)).toMatchObject({ name: 'max-message-size', value: 1472 });
    expect((o.get(Opt.PARAMETER_LIST)!.value as { code: number; name: string | null }[]).slice(0, 3)).toEqual([
      { code: 1, name: 'subnet-mask' },
      { code: 3, name: 'routers' },
      { code: 6, name: 'domain-name-servers' },
    ]);
    // Not known to podboot: code and hex, nothing guessed.
    expect(o.get(150)).toEqual({ code: 150, name: null, value: null, hex: '0a630009' });
    expect(o.get(224)).toEqual({ code: 224, name: null, value: null, hex: Buffer.from('private').toString('hex') });
    expect(optionText(o.get(150)!)).toBe('hex 0a630009');
    expect(optionText(o.get(Opt.CLIENT_ARCH)!)).toBe('7 EFI BC');
    expect(optionText(o.get(Opt.CLIENT_NDI)!)).toBe('type 1 (UNDI) 3.16');
    expect(optionName(Opt.BOOTFILE)).toBe('bootfile-name');
    expect(optionName(150)).toBeUndefined();
  });

  it('names a malformed option and keeps its bytes', () => {
    const o = byCode(
      describeOptions(
        new Map([
          [Opt.SUBNET_MASK, Buffer.from([255, 255, 255])],
          [Opt.LEASE_TIME, Buffer.from([0, 1])],
          [Opt.RELAY_AGENT_INFO, Buffer.from([1, 9, 0x41])],
          [Opt.DNS, Buffer.from([10, 0, 0, 1, 10])],
        ]),
      ),
    );
    expect(o.get(Opt.SUBNET_MASK)).toEqual({ code: 1, name: 'subnet-mask', value: null, hex: 'ffffff', error: 'length 3, expected 4' });
    expect(o.get(Opt.LEASE_TIME)).toMatchObject({ value: null, error: 'length 2, expected 4' });
    expect(o.get(Opt.RELAY_AGENT_INFO)).toMatchObject({ value: null, error: 'sub-option 1 claims 9 bytes, only 1 left', hex: '010941' });
    expect(o.get(Opt.DNS)).toMatchObject({ value: null, error: 'length 5, expected a non-zero multiple of 4' });
    expect(optionText(o.get(Opt.SUBNET_MASK)!)).toBe('malformed: length 3, expected 4; hex ffffff');
  });

  it('reads option 43 as PXE sub-options only in a PXE exchange', () => {
    const vendor = encodeSubOptions([[6, Buffer.from([8])]]);
    expect(describeOptions(new Map([[Opt.VENDOR_SPECIFIC, vendor]]))[0]!.value).toEqual([{ code: 6, name: null, value: null, hex: '08' }]);
    const pxe = describeOptions(
      new Map([
        [Opt.VENDOR_CLASS, Buffer.from('PXEClient')],
        [Opt.VENDOR_SPECIFIC, vendor],
      ]),
    );
    expect(pxe[1]!.value).toEqual([{ code: 6, name: 'discovery-control', value: 8, hex: '08' }]);
  });

  it("decodes iPXE's own DISCOVER as captured: option 175 features, bus id and version, the SMBIOS UUID", () => {
    const o = byCode(describeOptions(captured('ipxe-efi-discover').options));
    expect(o.get(Opt.VENDOR_CLASS)?.value).toBe('PXEClient:Arch:00007:UNDI:003010');
    expect(o.get(Opt.CLIENT_UUID)?.value).toBe('8f3c2b1a-6d5e-4f70-9a81-b2c3d4e5f607');
    expect(o.get(Opt.CLIENT_NDI)?.value).toEqual({ type: 1, major: 3, minor: 10 });
    const ipxe = o.get(Opt.IPXE_ENCAP)!.value as OptionView[];
    expect(ipxe.map((s) => s.name)).toEqual(['bus-id', 'version', 'dns', 'efi', 'http', 'iscsi', 'menu', 'nfs', 'tftp', 'aoe']);
    expect(ipxe.find((s) => s.code === 235)?.value).toBe('1.0.0');
    expect(ipxe.find((s) => s.code === 177)).toEqual({ code: 177, name: 'bus-id', value: null, hex: '011af41000' });
    // Its parameter request list asks for options podboot does not know (128-135): named null, not guessed.
    expect((o.get(Opt.PARAMETER_LIST)!.value as { code: number; name: string | null }[]).find((c) => c.code === 128)).toEqual({ code: 128, name: null });
  });

  it("decodes Kea's relayed offer as captured, and prints it for a terminal", () => {
    const offer = captured('kea-offer-pxe-relayed-opt82');
    const o = byCode(describeOptions(offer.options));
    expect(o.get(Opt.RELAY_AGENT_INFO)?.value).toEqual([{ code: 1, name: 'circuit-id', value: 'br0', hex: '627230' }]);
    expect(o.get(Opt.LEASE_TIME)?.value).toBe(600);
    expect(o.get(Opt.CLIENT_ID)?.value).toBe('01:52:54:00:12:34:56');
    expect(replyText(describeReply(offer)).split('\n')).toEqual([
      'OFFER  xid 0x009a0512  yiaddr 10.20.0.101  siaddr 10.99.0.1  giaddr 10.20.0.1  hops 1  file pbf-boot.ipxe',
      '   53  message-type       OFFER',
      '    1  subnet-mask        255.255.255.0',
      '    3  routers            10.20.0.1',
      '   51  lease-time         600 s (10m)',
      '   54  server-identifier  10.99.0.1',
      '   58  renewal-time       300 s (5m)',
      '   59  rebinding-time     500 s (8m20s)',
      '   61  client-identifier  01:52:54:00:12:34:56',
      '   82  relay-agent-info   circuit-id br0',
    ]);
  });
});
