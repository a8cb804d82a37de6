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

/** What the page says about this node before any token is given. */
export interface UiPageFacts {
  /** the file `podboot serve` reads the operator token from (absolute) */
  tokenFile?: string;
}

export function uiDir(): string {
  return join(packageRoot(), 'ui');
}

/** The element of ui/index.html that names the token file; its text as shipped is the generic path. */
const TOKEN_FILE_ELEMENT = /(<code id="token-file">)[^<]*(<\/code>)/g;

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * The page as this node serves it: the token prompt names the node's real
 * token file (where an operator runs `cat`), not STATE/…. A path is the
 * operator's to choose (--token-file), so it goes in as text, never markup.
 * No data is disclosed by it: the file is 0600 and the path is in the docs
 * or on the operator's own command line.
 */
export function renderIndex(html: string, facts: UiPageFacts): string {
  const file = facts.tokenFile;
  if (!file) return html;
  const text = file.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
  return html.replace(TOKEN_FILE_ELEMENT, (_m, open: string, close: string) => `${open}${text}${close}`);
}

export async function sendUiAsset(res: ServerResponse, asset: UiAsset, head: boolean, facts: UiPageFacts = {}): Promise<void> {
  const raw = await readFile(join(uiDir(), asset));
  const body = asset === 'index.html' ? Buffer.from(renderIndex(raw.toString('utf8'), facts)) : raw;
  res.writeHead(200, { ...UI_HEADERS, 'content-type': TYPES[asset], 'content-length': body.length });
  res.end(head ? undefined : body);
}
