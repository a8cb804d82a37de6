// Which install tokens have been exchanged for a session. In the pod's SQLite
// database, committed before the session is answered, so a restarted instance
// refuses a replay just as the running one does. Only a SHA-256 digest of the
// token is kept: the table is worth nothing to whoever reads it.
import type Database from 'better-sqlite3';

export interface TokenUse {
  /** SHA-256 of the install token, hex */
  digest: string;
  mac: string;
  attempt: number;
  /** the address that exchanged it */
  source: string;
  /** unix seconds */
  usedAt: number;
  /** when the session handed out for it expires (it is re-derived from this on a retry) */
  sessionExpires: number;
  /** when the install token itself expires: after that the row is useless and pruned */
  tokenExpires: number;
}

export type ClaimResult = { first: true } | { first: false; prior: TokenUse };

export interface TokenUseStore {
  /** Records the first use of a token, atomically; a later claim gets the first one back. */
  claim(use: TokenUse): ClaimResult;
  /** The recorded use of a token, if any. */
  find(digest: string): TokenUse | undefined;
}

interface Row {
  digest: string;
  mac: string;
  attempt: number;
  source: string;
  used_at: number;
  session_expires: number;
  token_expires: number;
}

const toUse = (r: Row): TokenUse => ({
  digest: r.digest,
  mac: r.mac,
  attempt: r.attempt,
  source: r.source,
  usedAt: r.used_at,
  sessionExpires: r.session_expires,
  tokenExpires: r.token_expires,
});

export class SqliteTokenUseStore implements TokenUseStore {
  private readonly insert: Database.Statement;
  private readonly get: Database.Statement;
  private readonly prune: Database.Statement;
  private readonly doClaim: (use: TokenUse) => ClaimResult;

  constructor(db: Database.Database) {
    this.insert = db.prepare(
      `INSERT OR IGNORE INTO install_token_uses (digest, mac, attempt, source, used_at, session_expires, token_expires)
       VALUES (@digest, @mac, @attempt, @source, @usedAt, @sessionExpires, @tokenExpires)`,
    );
    this.get = db.prepare('SELECT * FROM install_token_uses WHERE digest = ?');
    // An expired token is refused before its row is looked at: the row can go.
    this.prune = db.prepare('DELETE FROM install_token_uses WHERE token_expires < ?');
    this.doClaim = db.transaction((use: TokenUse): ClaimResult => {
      this.prune.run(use.usedAt);
      if (this.insert.run(use).changes === 1) return { first: true };
      return { first: false, prior: toUse(this.get.get(use.digest) as Row) };
    });
  }

  claim(use: TokenUse): ClaimResult {
    return this.doClaim(use);
  }

  find(digest: string): TokenUse | undefined {
    const row = this.get.get(digest) as Row | undefined;
    return row && toUse(row);
  }
}
