// The catalog's index: which name@version maps to which blobs. SQLite, so that
// a `podboot images pull` and the central node reading the catalog can run at
// the same time without losing an entry (see docs/decisions.md).
import Database from 'better-sqlite3';

export interface CatalogEntry {
  name: string;
  version: string;
  /** sha256 (hex) of each blob */
  image: string;
  signature: string;
  manifest: string;
  manifestSignature: string;
  size: number;
  signer: string;
  signerSerial: string;
  created: string;
  notAfter?: string;
  pods?: string[];
  source: string;
  pulledAt: string;
}

interface Row {
  name: string;
  version: string;
  image: string;
  signature: string;
  manifest: string;
  manifest_signature: string;
  size: number;
  signer: string;
  signer_serial: string;
  created: string;
  not_after: string | null;
  pods: string | null;
  source: string;
  pulled_at: string;
}

// Append-only: entry i moves the schema from user_version i to i + 1.
const MIGRATIONS = [
  `CREATE TABLE images (
     name TEXT NOT NULL,
     version TEXT NOT NULL,
     image TEXT NOT NULL,
     signature TEXT NOT NULL,
     manifest TEXT NOT NULL,
     manifest_signature TEXT NOT NULL,
     size INTEGER NOT NULL,
     signer TEXT NOT NULL,
     signer_serial TEXT NOT NULL,
     created TEXT NOT NULL,
     not_after TEXT,
     pods TEXT,
     source TEXT NOT NULL,
     pulled_at TEXT NOT NULL,
     PRIMARY KEY (name, version)
   )`,
];

function fromRow(r: Row): CatalogEntry {
  const e: CatalogEntry = {
    name: r.name,
    version: r.version,
    image: r.image,
    signature: r.signature,
    manifest: r.manifest,
    manifestSignature: r.manifest_signature,
    size: r.size,
    signer: r.signer,
    signerSerial: r.signer_serial,
    created: r.created,
    source: r.source,
    pulledAt: r.pulled_at,
  };
  if (r.not_after) e.notAfter = r.not_after;
  if (r.pods) e.pods = JSON.parse(r.pods) as string[];
  return e;
}

export class CatalogIndex {
  private readonly db: Database.Database;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL'); // an admitted image must survive a power cut
    this.db.pragma('busy_timeout = 10000');
    const version = this.db.pragma('user_version', { simple: true }) as number;
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db
        .transaction(() => {
          this.db.exec(MIGRATIONS[v]!);
          this.db.pragma(`user_version = ${v + 1}`);
        })
        .immediate();
    }
  }

  close(): void {
    this.db.close();
  }

  list(): CatalogEntry[] {
    return (this.db.prepare('SELECT * FROM images ORDER BY name, version').all() as Row[]).map(fromRow);
  }

  get(name: string, version: string): CatalogEntry | undefined {
    const r = this.db.prepare('SELECT * FROM images WHERE name = ? AND version = ?').get(name, version) as Row | undefined;
    return r ? fromRow(r) : undefined;
  }

  versions(name: string): CatalogEntry[] {
    return (this.db.prepare('SELECT * FROM images WHERE name = ? ORDER BY version').all(name) as Row[]).map(fromRow);
  }

  /** Whether any entry refers to blob `hex` in any role. */
  references(hex: string): boolean {
    return !!this.db.prepare('SELECT 1 FROM images WHERE ? IN (image, signature, manifest, manifest_signature) LIMIT 1').get(hex);
  }

  insert(e: CatalogEntry): void {
    this.db
      .prepare(
        `INSERT INTO images (name, version, image, signature, manifest, manifest_signature, size, signer, signer_serial, created, not_after, pods, source, pulled_at)
         VALUES (@name, @version, @image, @signature, @manifest, @manifestSignature, @size, @signer, @signerSerial, @created, @notAfter, @pods, @source, @pulledAt)`,
      )
      .run({ ...e, notAfter: e.notAfter ?? null, pods: e.pods ? JSON.stringify(e.pods) : null });
  }

  delete(name: string, version: string): void {
    this.db.prepare('DELETE FROM images WHERE name = ? AND version = ?').run(name, version);
  }

  /** Runs `fn` holding SQLite's write lock, so blob renames and unlinks serialise with other processes. */
  exclusive<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }
}
