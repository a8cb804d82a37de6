import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../../src/config/duration.js';
import { closestName } from '../../../src/config/suggest.js';
import { isDnsName, isPodName, normalizeUuid, notUnicast, parsePool } from '../../../src/config/syntax.js';
import { ip } from '../../helpers/pods.js';

describe('value syntax', () => {
  it('reads durations as whole seconds', () => {
    expect(['90s', '30m', '1h', '1d', ' 2h ', '45', 600].map(parseDuration)).toEqual([90, 1800, 3600, 86400, 7200, 45, 600]);
    for (const bad of ['0', 0, '1 week', '1.5h', 1.5, -5, '-5s', 'h', '', null, true, '1h30m']) expect(parseDuration(bad)).toBeUndefined();
  });

  it('reads pools as first-last ranges', () => {
    expect(parsePool('10.0.0.1-10.0.0.9')).toEqual({ start: ip('10.0.0.1'), end: ip('10.0.0.9') });
    expect(parsePool('10.0.0.1 - 10.0.0.1')).toEqual({ start: ip('10.0.0.1'), end: ip('10.0.0.1') });
    expect(parsePool('10.0.0.9-10.0.0.1')).toEqual({ error: 'pool start 10.0.0.9 is after its end 10.0.0.1' });
    expect(parsePool('10.0.0.1-10.0.0.2-10.0.0.3')).toHaveProperty('error');
    expect(parsePool('10.0.0/24-10.0.0.9')).toEqual({ error: 'pool start 10.0.0/24 is not an IPv4 address' });
  });

  it('tells pod names, host names and UUIDs apart from near misses', () => {
    expect(['rack-a', 'a', 'r1', 'x'.repeat(63)].every(isPodName)).toBe(true);
    expect(['Rack-a', '-rack', 'rack-', 'rack_a', 'rack.a', '', 'x'.repeat(64)].some(isPodName)).toBe(false);
    expect(['n1', 'N1', 'a-r01-u01.dc1.example', '1234'].every(isDnsName)).toBe(true);
    expect(['n_1', '-n1', 'n1-', 'a..b', '.a', `${'x'.repeat(64)}.example`, ''].some(isDnsName)).toBe(false);
    expect(normalizeUuid('4C4C4544-0042-3010-8031-B4C04F334C31')).toBe('4c4c4544-0042-3010-8031-b4c04f334c31');
    expect(normalizeUuid('4c4c45440042301080317b4c04f334c31')).toBeUndefined();
  });

  it('refuses addresses a host cannot have', () => {
    expect(notUnicast(ip('10.0.0.1'))).toBeUndefined();
    expect(notUnicast(ip('127.0.0.1'))).toBeUndefined();
    expect([ip('0.0.0.0'), ip('224.0.0.5'), ip('239.255.255.255'), ip('240.0.0.1'), ip('255.255.255.255')].map((a) => notUnicast(a) !== undefined)).toEqual([true, true, true, true, true]);
  });

  it('suggests the closest field name only when it is close', () => {
    const fields = ['listen', 'relays', 'subnets', 'nodes', 'unknownNodes'];
    expect(closestName('relay', fields)).toBe('relays');
    expect(closestName('unknownnodes', fields)).toBe('unknownNodes');
    expect(closestName('lisen', fields)).toBe('listen');
    expect(closestName('storage', fields)).toBeUndefined();
  });
});
