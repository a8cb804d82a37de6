import Database from 'better-sqlite3';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

export type Durability = 'process' | 'power';

/**
 * Schema history. Each entry runs once, in order, in its own transaction;
 * never edit an entry that has shipped: append a new one.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE leases (
     address    INTEGER PRIMARY KEY,
     client_key TEXT NOT NULL,
     mac        TEXT NOT NULL,
     hostname   TEXT,
     state      TEXT NOT NULL,
     starts     INTEGER NOT NULL,
     ends       INTEGER NOT NULL,
     subnet     TEXT NOT NULL
   );
   CREATE INDEX leases_client ON leases(client_key);
   CREATE TABLE nodes (
     mac        TEXT PRIMARY KEY,
     state      TEXT NOT NULL,
     updated_at INTEGER NOT NULL
   );
   CREATE TABLE events (
     id     INTEGER PRIMARY KEY AUTOINCREMENT,
     time   INTEGER NOT NULL,
     mac    TEXT NOT NULL,
     kind   TEXT NOT NULL,
     detail TEXT
   );
   CREATE INDEX events_mac ON events(mac, id);`,
  // Install attempts (tokens are bound to one), the reason of a failure, and
  // when the installed OS last reported in.
  `ALTER TABLE nodes ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
   ALTER TABLE nodes ADD COLUMN reason TEXT;
   ALTER TABLE nodes ADD COLUMN last_seen INTEGER;`,
  // Install tokens already exchanged for a session (src/install/credentials.ts):
  // a digest, never the token. Kept until the token would have expired anyway.
  `CREATE TABLE install_token_uses (
     digest          TEXT PRIMARY KEY,
     mac             TEXT NOT NULL,
     attempt         INTEGER NOT NULL,
     source          TEXT NOT NULL,
     used_at         INTEGER NOT NULL,
     session_expires INTEGER NOT NULL,
     token_expires   INTEGER NOT NULL
   );
   CREATE INDEX install_token_uses_expiry ON install_token_uses(token_expires);`,
  // The installed OS's liveness (src/install/liveness.ts) and its node agent's
  // last heartbeat: one row per server, replaced at every beat, so heartbeats
  // never pile up in events.
  `ALTER TABLE nodes ADD COLUMN liveness TEXT;
   CREATE TABLE heartbeats (
     mac           TEXT PRIMARY KEY,
     time          INTEGER NOT NULL,
     uptime        INTEGER,
     load1         REAL,
     load5         REAL,
     load15        REAL,
     mem_total     INTEGER,
     mem_available INTEGER,
     disk_size     INTEGER,
     disk_used     INTEGER
   );`,
  // Management addresses handed out from spec.managementNetwork.pool (F8):
  // one per server, kept so a server keeps its address across pod restarts;
  // UNIQUE so no two servers ever hold the same one.
  `CREATE TABLE management_addresses (
     mac          TEXT PRIMARY KEY,
     address      INTEGER NOT NULL UNIQUE,
     allocated_at INTEGER NOT NULL
   );`,
  // The image (name@version) the server's disk holds: set when stage1 reports
  // it installed, cleared when a new install starts writing the disk.
  `ALTER TABLE nodes ADD COLUMN image TEXT;`,
  // Remote tasks (src/tasks/): one row per task and server, the rendered
  // script kept so its sha256 can be checked; output lives in files under
  // STATE/<pod>/tasks/, indexed here chunk by chunk so both streams read back
  // in the order they arrived.
  `CREATE TABLE tasks (
     id             TEXT PRIMARY KEY,
     mac            TEXT NOT NULL,
     hostname       TEXT,
     template       TEXT NOT NULL,
     params         TEXT NOT NULL,
     rules          TEXT NOT NULL,
     script         TEXT NOT NULL,
     sha256         TEXT NOT NULL,
     state          TEXT NOT NULL,
     created_at     INTEGER NOT NULL,
     deadline       INTEGER NOT NULL,
     updated_at     INTEGER NOT NULL,
     started_at     INTEGER,
     finished_at    INTEGER,
     exit_code      INTEGER,
     reason         TEXT,
     rule_failed    INTEGER NOT NULL DEFAULT 0,
     captures       TEXT NOT NULL DEFAULT '{}',
     stdout_length  INTEGER NOT NULL DEFAULT 0,
     stderr_length  INTEGER NOT NULL DEFAULT 0,
     stdout_checked INTEGER NOT NULL DEFAULT 0,
     stderr_checked INTEGER NOT NULL DEFAULT 0,
     submitted_by   TEXT
   );
   CREATE INDEX tasks_mac ON tasks(mac, state, created_at);
   CREATE INDEX tasks_open ON tasks(state, deadline);
   CREATE TABLE task_output (
     seq    INTEGER PRIMARY KEY AUTOINCREMENT,
     task   TEXT NOT NULL,
     stream TEXT NOT NULL,
     offset INTEGER NOT NULL,
     length INTEGER NOT NULL,
     time   INTEGER NOT NULL
   );
   CREATE INDEX task_output_task ON task_output(task, seq);`,
  // The label selector a task was submitted with (`--select role=web`), so
  // what an operator asked for is kept beside the servers it resolved to.
  `ALTER TABLE tasks ADD COLUMN selector TEXT;`,
  // Image releases and rollouts (src/rollout/): which image version is the
  // pod's active one, the one before it, the one in canary or staged, each
  // change in a history row; a rollout and, per server it selected, its pass
  // (forward to the target, back to the previous release) and progress.
  `CREATE TABLE releases (
     ref        TEXT PRIMARY KEY,
     role       TEXT NOT NULL,
     changed_at INTEGER NOT NULL,
     changed_by TEXT NOT NULL,
     why        TEXT
   );
   CREATE TABLE release_history (
     id   INTEGER PRIMARY KEY AUTOINCREMENT,
     time INTEGER NOT NULL,
     ref  TEXT NOT NULL,
     role TEXT NOT NULL,
     by   TEXT NOT NULL,
     why  TEXT
   );
   CREATE TABLE rollouts (
     id             TEXT PRIMARY KEY,
     target         TEXT NOT NULL,
     previous       TEXT,
     selector       TEXT NOT NULL,
     canary         TEXT NOT NULL,
     batch          INTEGER NOT NULL,
     max_failures   INTEGER NOT NULL,
     server_timeout INTEGER NOT NULL,
     phase          TEXT NOT NULL,
     paused_from    TEXT,
     reason         TEXT,
     created_at     INTEGER NOT NULL,
     created_by     TEXT NOT NULL,
     updated_at     INTEGER NOT NULL
   );
   CREATE INDEX rollouts_created ON rollouts(created_at);
   CREATE TABLE rollout_servers (
     rollout     TEXT NOT NULL,
     pass        TEXT NOT NULL,
     mac         TEXT NOT NULL,
     ord         INTEGER NOT NULL,
     canary      INTEGER NOT NULL,
     image       TEXT NOT NULL,
     state       TEXT NOT NULL,
     batch       INTEGER,
     started_at  INTEGER,
     finished_at INTEGER,
     detail      TEXT,
     PRIMARY KEY (rollout, pass, mac)
   );
   CREATE INDEX rollout_servers_mac ON rollout_servers(mac, state);`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** A pod's database file in its state directory. */
export function podDatabaseFile(stateDir: string): string {
  return join(stateDir, 'pod.db');
}

/**
 * Opens (creating if needed) one pod's database. WAL keeps readers off the
 * writer's back; 'process' durability (synchronous=NORMAL) makes a commit
 * survive kill -9 of the instance, 'power' (FULL) also a power cut.
 */
export function openPodDatabase(stateDir: string, durability: Durability = 'process'): Database.Database {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const db = new Database(podDatabaseFile(stateDir));
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${durability === 'power' ? 'FULL' : 'NORMAL'}`);
  db.pragma('busy_timeout = 5000');
  // After a storm the WAL is cut back to this size once checkpoints catch up.
  db.pragma('journal_size_limit = 33554432');
  migrate(db);
  return db;
}

export function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(`database schema version ${current} is newer than this podboot (${MIGRATIONS.length}); refusing to touch it`);
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

/**
 * Opens a pod's existing database from another process (the central node,
 * `podboot nodes`, the lab), or undefined when the pod has none yet. Read-only
 * opens never write, create tables nor migrate; read-write ones (an operator's
 * reinstall) migrate as the pod would. The pod runs as its own user and must
 * still write the WAL and its index after root read them: SQLite run as root
 * gives the files it creates beside a database that database's owner
 * (test/integration/store/pod-state-owner.test.ts).
 */
export function openExistingPodDatabase(stateDir: string, readonly: boolean): Database.Database | undefined {
  const file = podDatabaseFile(stateDir);
  if (!existsSync(file)) return undefined;
  const db = new Database(file, { readonly, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    if (!readonly) {
      db.pragma('synchronous = NORMAL');
      migrate(db);
    }
    const version = db.pragma('user_version', { simple: true }) as number;
    // A pod creating its database right now: nothing in it to read yet.
    if (version === 0 && readonly) {
      db.close();
      return undefined;
    }
    if (version !== MIGRATIONS.length) {
      throw new Error(
        version > MIGRATIONS.length
          ? `database schema version ${version} is newer than this podboot (${MIGRATIONS.length}); refusing to touch it`
          : `${file}: schema version ${version} predates this podboot (${MIGRATIONS.length}); the pod upgrades it when it starts`,
      );
    }
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}
