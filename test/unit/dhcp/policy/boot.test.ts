// decideBoot: which boot file, if any, a client gets. One row per case.
import { describe, expect, it } from 'vitest';
import { MessageType } from '../../../../src/dhcp/codec/constants.js';
import { decideBoot, type BootContext } from '../../../../src/dhcp/policy/boot.js';
import { isRequestProblem, readRequest, type ClientRequest } from '../../../../src/dhcp/request.js';
import { requestPacket, type RequestSpec } from '../../../helpers/dhcp-packets.js';
import { testPod } from '../../../helpers/pods.js';

const MAC = '52:54:00:00:0f:01';
const pod = testPod();

function request(spec: Partial<RequestSpec>): ClientRequest {
  const r = readRequest(requestPacket({ type: MessageType.DISCOVER, mac: MAC, giaddr: 1, ...spec }));
  if (isRequestProblem(r)) throw new Error(r.reason);
  return r;
}

const PXE = 'PXEClient:Arch:00000:UNDI:002001';

describe('decideBoot', () => {
  it.each<[string, Partial<RequestSpec>, Partial<BootContext>, ReturnType<typeof decideBoot>]>([
    ['plain client: no boot file', {}, {}, { kind: 'none', reason: 'not-network-boot' }],
    ['BIOS PXE (arch 0)', { arch: 0, vendorClass: PXE }, {}, { kind: 'boot', file: 'undionly.kpxe', via: 'bios', vendorClass: 'PXEClient' }],
    ['old PXE ROM without option 93 is BIOS', { vendorClass: PXE }, {}, { kind: 'boot', file: 'undionly.kpxe', via: 'bios', vendorClass: 'PXEClient' }],
    ['UEFI x64 (arch 7)', { arch: 7, vendorClass: PXE }, {}, { kind: 'boot', file: 'snponly.efi', via: 'uefi', vendorClass: 'PXEClient' }],
    ['UEFI arm64 (arch 11)', { arch: 11, vendorClass: PXE }, {}, { kind: 'boot', file: 'snponly-arm64.efi', via: 'arm64', vendorClass: 'PXEClient' }],
    ['UEFI HTTP boot (arch 16)', { arch: 16, vendorClass: 'HTTPClient:Arch:00016' }, {}, { kind: 'boot', file: 'http://10.99.0.1:80/boot/ipxe.efi', via: 'httpBoot', vendorClass: 'HTTPClient' }],
    [
      'iPXE gets its per-server script',
      { arch: 0, vendorClass: PXE, userClass: 'iPXE' },
      {},
      { kind: 'boot', file: 'http://10.99.0.1:80/ipxe/52-54-00-00-0f-01.ipxe', via: 'ipxeScript', vendorClass: 'PXEClient' },
    ],
    ['unknown architecture', { arch: 99, vendorClass: PXE }, {}, { kind: 'none', reason: 'unknown-arch', detail: 'option 93 = 99' }],
    ['installed: boots its disk', { arch: 0, vendorClass: PXE }, { installState: 'installed' }, { kind: 'none', reason: 'installed', detail: 'installed' }],
    ['booted-from-disk: boots its disk', { arch: 7, vendorClass: PXE }, { installState: 'booted-from-disk' }, { kind: 'none', reason: 'installed', detail: 'booted-from-disk' }],
    ['degraded: no new install', { arch: 0, vendorClass: PXE }, { degraded: true, installState: 'discovered' }, { kind: 'none', reason: 'degraded' }],
    [
      'degraded: an install under way keeps its boot file',
      { arch: 0, vendorClass: PXE },
      { degraded: true, installState: 'installing' },
      { kind: 'boot', file: 'undionly.kpxe', via: 'bios', vendorClass: 'PXEClient' },
    ],
    ['failed: a new try', { arch: 0, vendorClass: PXE }, { installState: 'failed' }, { kind: 'boot', file: 'undionly.kpxe', via: 'bios', vendorClass: 'PXEClient' }],
    [
      "the node's own boot file wins",
      { arch: 0, vendorClass: PXE },
      { node: { mac: MAC, boot: { bios: 'custom-{pod}.kpxe' } } },
      { kind: 'boot', file: 'custom-rack-t.kpxe', via: 'bios', vendorClass: 'PXEClient' },
    ],
  ])('%s', (_name, spec, ctx, expected) => {
    expect(decideBoot(request(spec), { pod, ...ctx })).toEqual(expected);
  });
});
