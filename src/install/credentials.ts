// Install credentials and their one-way street:
//   boot config (clear text) ─ install token ─→ POST /v1/session (TLS) ─→ session
// The install token is minted only for a server the pod may provision and
// only handed to that server (boot-config-access.ts); it is good for exactly
// one exchange, from the server's own leased address. Its use is recorded in
// the pod's database before the session is answered, so a second use (a
// sniffed token, a replay after a restart) is refused with 401 and leaves an
// `install-token-replayed` event. Every other call wants the session (or, for
// the installed OS, its node token).
//
// A retried exchange (the answer was lost with a cut connection) from the
// same address within RETRY_WINDOW gets the same session again: sessions are
// derived from (mac, attempt, expires), and the expiry is what the use row
// keeps. See docs/trust-model.md, "Install credentials".
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { TokenClaims } from './token.js';
import { checkSession, isSessionToken, issueSession, sessionKey } from './session.js';
import type { Authorization, TokenAuthority } from './tokens.js';
import type { NodeStateStore } from '../store/types.js';
import type { TokenUse, TokenUseStore } from '../store/token-uses.js';
import { INSTALLED_STATES } from './state.js';

export const SESSION_ROUTE = 'POST /v1/session';

export interface CredentialOptions {
  pod: string;
  log: Logger;
  /** the pod's token secret (sessions are signed with a key derived from it) */
  secret: Buffer;
  tokens: TokenAuthority;
  nodes: NodeStateStore;
  uses: TokenUseStore;
  /** may the pod provision this server? (admission.ts) */
  mayProvision: (mac: string) => boolean;
  /** is `source` the server's own leased address? (boot-config-access.ts) */
  fromServer: (mac: string, source: string, nowSec: number) => boolean;
  /** session lifetime; the agent refreshes it while it works */
  sessionSec?: number;
  /** a repeated exchange from the same address within this many seconds is a retry */
  retryWindowSec?: number;
}

export type Exchange = { ok: true; session: string; mac: string; retried: boolean } | { ok: false; status: 401 | 403; reason: string; mac?: string };

export const DEFAULT_SESSION_SEC = 4 * 3600;
export const DEFAULT_RETRY_WINDOW_SEC = 120;

const digestOf = (token: string) => createHash('sha256').update(token).digest('hex');

export class InstallCredentials {
  private readonly key: Buffer;
  private readonly sessionSec: number;
  private readonly retryWindowSec: number;

  constructor(private readonly o: CredentialOptions) {
    this.key = sessionKey(o.secret);
    this.sessionSec = o.sessionSec ?? DEFAULT_SESSION_SEC;
    this.retryWindowSec = o.retryWindowSec ?? DEFAULT_RETRY_WINDOW_SEC;
  }

  /** An install token for a boot config, or undefined when the pod may not provision the server. */
  mint(mac: string, nowSec: number): string | undefined {
    return this.o.mayProvision(mac) ? this.o.tokens.issue(mac, 'install', nowSec) : undefined;
  }

  /** A fresh session for a server that already holds one (refresh, kickstart). */
  session(mac: string, nowSec: number): string {
    return this.sessionUntil(mac, nowSec + this.sessionSec);
  }

  private sessionUntil(mac: string, expires: number): string {
    const attempt = this.o.nodes.node(mac)?.attempt ?? 1;
    return issueSession(this.key, { mac, attempt, expires });
  }

  /**
   * Every /v1 call but the exchange: a session (install role) or a node token.
   * An install token here is refused: before its exchange it is "exchange
   * first", after it a replay.
   */
  authorize(token: string | undefined, source: string, nowSec: number): Authorization {
    if (token !== undefined && isSessionToken(token)) {
      const c = checkSession(this.key, token, nowSec);
      if (!c.ok) return { ok: false, status: 401, reason: `session ${c.reason}` };
      const node = this.o.nodes.node(c.claims.mac);
      const attempt = node?.attempt ?? 1;
      if (c.claims.attempt !== attempt) return { ok: false, status: 403, reason: `session of install attempt ${c.claims.attempt}, current is ${attempt}`, mac: c.claims.mac };
      const claims: TokenClaims = { scope: 'install', mac: c.claims.mac, attempt: c.claims.attempt, expires: c.claims.expires };
      return { ok: true, claims, node };
    }
    const auth = this.o.tokens.authorize(token, nowSec);
    if (!auth.ok || auth.claims.scope !== 'install') return auth;
    const prior = this.o.uses.find(digestOf(token!));
    if (prior) return this.replayed(auth.claims.mac, source, prior.source, prior.usedAt, nowSec);
    return { ok: false, status: 401, reason: `an install token is only good for ${SESSION_ROUTE}`, mac: auth.claims.mac };
  }

  /** POST /v1/session: the install token's one use. */
  exchange(token: string | undefined, source: string, nowSec: number): Exchange {
    const auth = this.o.tokens.authorize(token, nowSec);
    if (!auth.ok) return auth;
    const { claims, node } = auth;
    const mac = claims.mac;
    if (claims.scope !== 'install') return { ok: false, status: 403, reason: `a ${claims.scope} token cannot be exchanged`, mac };
    if (node && INSTALLED_STATES.has(node.state)) {
      this.o.nodes.addEvent({ time: nowSec, mac, kind: 'install-request-after-install', detail: `${SESSION_ROUTE} refused: server is ${node.state}` });
      return { ok: false, status: 403, reason: `server is ${node.state}; an operator must ask for a reinstall`, mac };
    }
    const digest = digestOf(token!);
    // A used token is a replay whoever sends it (a sniffer is rarely at the server's address): 401 and an event.
    const used = this.o.uses.find(digest);
    if (used) return this.again(used, mac, source, nowSec);
    // Not consumed: a stranger holding a sniffed token cannot burn it for the server.
    if (!this.o.fromServer(mac, source, nowSec)) return { ok: false, status: 403, reason: `${source} is not the address leased to ${mac}`, mac };
    const sessionExpires = nowSec + this.sessionSec;
    const r = this.o.uses.claim({ digest, mac, attempt: claims.attempt, source, usedAt: nowSec, sessionExpires, tokenExpires: claims.expires });
    // Two exchanges raced and the other one won: this one is its retry or a replay.
    if (!r.first) return this.again(r.prior, mac, source, nowSec);
    this.o.nodes.addEvent({ time: nowSec, mac, kind: 'install-token-exchanged', detail: `from ${source}` });
    this.o.log.info({ node: mac, source }, 'install token exchanged for a session');
    return { ok: true, session: this.sessionUntil(mac, sessionExpires), mac, retried: false };
  }

  /** A token seen before: the retry of a lost answer (same address, short window) or a replay. */
  private again(prior: TokenUse, mac: string, source: string, nowSec: number): Exchange {
    if (prior.source === source && nowSec - prior.usedAt <= this.retryWindowSec && prior.sessionExpires > nowSec) {
      // The first answer was lost on the way: the same session again, nothing new handed out.
      this.o.log.info({ node: mac, source, firstAt: prior.usedAt }, 'session exchange retried: same session');
      return { ok: true, session: this.sessionUntil(mac, prior.sessionExpires), mac, retried: true };
    }
    return this.replayed(mac, source, prior.source, prior.usedAt, nowSec);
  }

  private replayed(mac: string, source: string, firstSource: string, firstAt: number, nowSec: number): { ok: false; status: 401; reason: string; mac: string } {
    const detail = `from ${source}; exchanged from ${firstSource} at ${new Date(firstAt * 1000).toISOString()}`;
    this.o.nodes.addEvent({ time: nowSec, mac, kind: 'install-token-replayed', detail });
    this.o.log.warn({ node: mac, source, firstSource, firstAt }, 'install token replayed');
    return { ok: false, status: 401, reason: 'install token already used', mac };
  }
}
