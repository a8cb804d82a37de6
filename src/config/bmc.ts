// spec.nodes[].bmc: where a server's BMC answers Redfish, and with which
// credentials. The password is named by a file, never written in the pod
// file (pod files are copied, diffed and shown in review tools).
import { isAbsolute } from 'node:path';
import { BMC_SHAPE, fieldsOf } from './pod-shape.js';
import type { BmcConfig } from './types.js';
import type { Section } from './yaml-reader.js';

const BMC_FIELDS = fieldsOf(BMC_SHAPE);

export function readBmc(n: Section): BmcConfig | undefined {
  const b = n.section('bmc', BMC_FIELDS);
  if (!b) return undefined;
  const address = b.string('address');
  const username = b.string('username');
  const passwordFile = b.string('passwordFile');
  const caFile = b.string('caFile');
  const plainHttpMedia = b.boolean('plainHttpMedia') ?? false;
  let ok = true;
  if (address === undefined) {
    b.report('address', 'missing: the BMC’s Redfish base URL, e.g. https://10.0.0.5');
    ok = false;
  } else if (!/^https?:\/\/[^/\s]+\/?$/.test(address)) {
    b.report('address', `${address} is not a base URL (http:// or https://, a host and an optional port, no path)`);
    ok = false;
  }
  if (username === undefined || username === '') {
    b.report('username', 'missing: the BMC account podboot logs in as');
    ok = false;
  }
  for (const [key, value] of [
    ['passwordFile', passwordFile],
    ['caFile', caFile],
  ] as const) {
    if (value !== undefined && !isAbsolute(value)) {
      b.report(key, `${value} is not an absolute path`);
      ok = false;
    }
  }
  if (passwordFile === undefined) {
    b.report('passwordFile', 'missing: a file holding the BMC password (the password itself never goes in the pod file)');
    ok = false;
  }
  if (!ok) return undefined;
  return { address: address!.replace(/\/$/, ''), username: username!, passwordFile: passwordFile!, ...(caFile ? { caFile } : {}), plainHttpMedia };
}
