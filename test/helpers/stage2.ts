// A signed stage2 as `podboot images onboard` leaves it in a pod's state:
// <state>/<pod>/images/<name>@<version>/{image,image.p7s,manifest.json,manifest.json.p7s}.
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

/** `signed` is the image path `podboot sign` was given (its .p7s and manifest files sit beside it). */
export function placeStage2(signed: string, podState: string, ref: string): string {
  const to = join(podState, 'images', ref);
  mkdirSync(to, { recursive: true });
  copyFileSync(signed, join(to, 'image'));
  copyFileSync(`${signed}.p7s`, join(to, 'image.p7s'));
  copyFileSync(`${signed}.manifest.json`, join(to, 'manifest.json'));
  copyFileSync(`${signed}.manifest.json.p7s`, join(to, 'manifest.json.p7s'));
  return to;
}

/**
 * A CA in `dir`/ca with a `ci` signer, and the cached lab stage2 signed with
 * it as lab-stage2@1.0 for `pod` and placed in `podState`: what a QEMU test
 * of one pod installs. `podboot` runs the CLI and throws on failure.
 */
export function signedLabStage2(o: { dir: string; cache: string; pod: string; podState: string; org: string; podboot: (...args: string[]) => unknown }): { ca: string } {
  const ca = join(o.dir, 'ca');
  o.podboot('ca', 'init', '--out', ca, '--org', o.org);
  o.podboot('ca', 'issue-signer', 'ci', '--ca', ca);
  const image = join(o.dir, 'lab-stage2.img');
  copyFileSync(join(o.cache, 'lab-stage2.img'), image);
  o.podboot('sign', image, '--cert', `${ca}/signers/ci.chain.pem`, '--key', `${ca}/signers/ci.key`, '--name', 'lab-stage2', '--version', '1.0', '--pods', o.pod, '--not-after', '7d');
  placeStage2(image, o.podState, 'lab-stage2@1.0');
  return { ca };
}
