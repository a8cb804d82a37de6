// The operator page (docs/web-page.md): a few static files from ui/ in the
// package, served without a token because they hold no data; the page asks
// the JSON API for everything, with the token the operator pastes in. Read at
// each request, so a new build on disk is what the next page load gets even
// though the supervisor itself keeps running.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { packageRoot } from '../package-root.js';
import type { UiAsset } from './routes.js';

const TYPES: Record<UiAsset, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
  'icon.svg': 'image/svg+xml',
};

/**
 * Only the page's own files may load, nothing inline (a value that reached
 * the page from a pod file or a log line cannot become script), and no other
 * site may frame it or receive a referrer.
 */
export const UI_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

export function uiDir(): string {
  return join(packageRoot(), 'ui');
}

export async function sendUiAsset(res: ServerResponse, asset: UiAsset, head: boolean): Promise<void> {
  const body = await readFile(join(uiDir(), asset));
  res.writeHead(200, { ...UI_HEADERS, 'content-type': TYPES[asset], 'content-length': body.length });
  res.end(head ? undefined : body);
}
