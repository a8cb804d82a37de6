// Who a pod's HTTP(S) server answers: its rack subnets, itself, and (once a
// management network is set) the installed servers on it; nobody else.
import { describe, expect, it } from 'vitest';
import { podSources } from '../../../src/pod/boot-services.js';
import { ip, testPod } from '../../helpers/pods.js';

describe('podSources', () => {
  const mgmt = { cidr: '10.30.0.0/24', network: ip('10.30.0.0'), prefix: 24, dns: [] };

  it('answers the pod’s subnets and its own addresses', () => {
    const allow = podSources(testPod());
    expect(allow(ip('10.20.0.57'))).toBe(true);
    expect(allow(ip('10.99.0.1'))).toBe(true);
    expect(allow(ip('10.30.0.10'))).toBe(false);
    expect(allow(ip('192.0.2.1'))).toBe(false);
  });

  it('answers the management network of its installed servers too, and only that network', () => {
    const allow = podSources(testPod({ managementNetwork: mgmt }));
    expect(allow(ip('10.30.0.10'))).toBe(true);
    expect(allow(ip('10.30.0.255'))).toBe(true);
    expect(allow(ip('10.30.1.10'))).toBe(false);
    expect(allow(ip('10.29.255.255'))).toBe(false);
    expect(allow(ip('10.20.0.57'))).toBe(true);
  });
});
