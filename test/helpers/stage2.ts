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
