import { describe, expect, it } from 'vitest';
import { loadPodText } from '../../../src/config/load.js';
import { formatProblem } from '../../../src/config/types.js';
import { smallPod } from './fixtures.js';
import { DEFAULT_SHARING } from '../../../src/share/service.js';

const pod = smallPod;

describe('spec.imageSharing', () => {
  it('is on by default, and takes peers, port and keep', () => {
    // absent: the pod instance runs with DEFAULT_SHARING
    expect(loadPodText(pod(''), 'p.yaml').pod?.imageSharing).toBeUndefined();
    expect(DEFAULT_SHARING).toEqual({ enabled: true, port: 8070, keepBytes: 128 * 1024 * 1024 });
    expect(loadPodText(pod('  imageSharing: { peers: false }\n'), 'p.yaml').pod?.imageSharing).toEqual({ ...DEFAULT_SHARING, enabled: false });
    expect(loadPodText(pod('  imageSharing: { port: 9443, keep: 1Gi }\n'), 'p.yaml').pod?.imageSharing).toEqual({ enabled: true, port: 9443, keepBytes: 1024 ** 3 });
  });

  it('names a bad switch, a privileged port and a keep too small to share a chunk', () => {
    const r = loadPodText(pod('  imageSharing: { peers: yes, port: 80, keep: 1Mi }\n'), 'p.yaml');
    expect(r.pod).toBeUndefined();
    expect(r.problems.map(formatProblem)).toEqual([
      'p.yaml:8:26: spec.imageSharing.peers: expected a boolean, found "yes"',
      'p.yaml:8:37: spec.imageSharing.port: 80 is outside 1024..65535',
      'p.yaml:8:47: spec.imageSharing.keep: 1048576 bytes is outside 32Mi..64Gi',
    ]);
    expect(loadPodText(pod('  imageSharing: { keep: lots }\n'), 'p.yaml').problems.map(formatProblem)).toEqual([
      'p.yaml:8:25: spec.imageSharing.keep: expected a size such as 128Mi or a number of bytes, found "lots"',
    ]);
  });
});
