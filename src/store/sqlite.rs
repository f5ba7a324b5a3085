//! [`SqliteStore`]: a persistent, sealed, transactional store on an embedded SQLite
//! database (WAL mode).
//!
//! # What is sealed and what stays visible
//! Every value (identity keys, prekeys, signed prekeys, session records, trusted
//! identities, sender-key records, decrypted messages, privacy-model state, our
//! registration id) is sealed
//! with AES-256-GCM under a key derived (HKDF-SHA-256) from the app's 32-byte
//! [`StoreKey`]. The associated data is the table name and the row key, so a row moved
//! to another row or table fails to open ([`TamperedRow`]). Someone holding the file but
//! not the key still sees:
//!
//! - **row keys**: the remote addresses (name and device id) we have sessions with and
//!   trust identities for, the ids of our prekeys and signed prekeys, the `kind`/`key` of
//!   privacy-model state (for example a business id the app names a disclosure tracker
//!   after);
//! - **sender keys** (table `sender_key`): the address of each group member we hold a
//!   chain for (our own included) and the distribution id (16 bytes) of each of its
//!   groups, so rows sharing a distribution id show who sends in the same group. The
//!   record's size shows roughly how many chains and skipped message keys it keeps, and
//!   the row is rewritten at every group encrypt and every successful group decrypt, so
//!   someone watching the file sees when each member's messages arrived;
//! - per received message (1:1 and group alike, in one table): the sender's address,
//!   the time it was decrypted, its expiry time if the app set one, and whether the app
//!   has acknowledged it (the plaintext column is then empty); the message's row id is
//!   an HMAC under a derived key, so it cannot be matched against the ciphertexts a
//!   server saw, and a row does not say whether it was a 1:1 or a group message (though
//!   a group message's row appears in the same transaction as its sender-key rewrite);
//! - **sizes**: each sealed value is its plaintext size plus 28 bytes (12-byte nonce,
//!   16-byte tag), so message lengths and session-record sizes (which grow with skipped
//!   keys and kept states) show;
//! - **timing and counts**: how many rows each table has, the file's and WAL's
//!   modification times, and, to someone who watches the file over time, which rows
//!   change when (a session row is rewritten at every encrypt and decrypt);
//! - the schema version (`PRAGMA user_version`) and an open counter (`meta.generation`,
//!   part of the nonce).
//!
//! Not protected: rolling the whole file (or a single row) back to an older copy. A
//! rolled-back session would reuse message keys, so keep the file where an attacker
//! cannot write, and never restore a store from a backup (make new sessions instead).
//!
//! # Atomicity
//! [`SqliteStore`] implements [`TransactionalStore`]: [`crate::cipher`] commits each
//! operation in one `BEGIN IMMEDIATE` transaction with a compare-and-swap on the session
//! row (its nonce is its version). It also implements [`TransactionalGroupStore`]:
//! [`crate::device::Device`] commits each group operation the same way, with a
//! compare-and-swap on the sender-key row, and a group decrypt stores its message (under
//! [`MessageId::of_group`]) in the same transaction, so a redelivered group message
//! yields the stored plaintext marked as a redelivery. With [`Synchronous::Full`] a commit is on disk when
//! `commit` returns; with [`Synchronous::Normal`] WAL may lose the last commits on power
//! loss (never on a process crash) but never corrupts.
//!
//! # Schema
//! Versioned by `PRAGMA user_version` ([`SCHEMA_VERSION`]); [`SqliteStore::open`] runs
//! the migrations from the file's version up, each in its own transaction, and refuses
//! a file from a newer version ([`OpenError::NewerSchema`]). `tests/fixtures/sqlite/`
//! keeps a database written by each released schema, which must keep opening.

pub use super::rows::{StoreSummary, TamperedRow};
pub use super::seal::StoreKey;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rand_core::{CryptoRng, RngCore};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use zeroize::Zeroizing;

use super::rows::{self, Columns, Local, RowKey, Rows, SealedMessage, ms};
use super::seal::Sealer;
use super::{
    Commit, CommitOutcome, DeliveredMessage, GroupCommit, IdentityStore, MessageId, PreKeyStore,
    RowVersion, SenderKeyStore, SessionStore, SignedPreKeyStore, StateStore, StateWrite,
    TransactionalGroupStore, TransactionalStore, VersionedState,
};
use crate::error::StoreError;
use crate::group::{DistributionId, SenderKeyRecord};
use crate::keys::{IdentityKey, IdentityKeyPair, PreKeyRecord, SignedPreKeyRecord};
use crate::session::SessionRecord;
use crate::{Address, Timestamp};

/// The schema version this release writes.
pub const SCHEMA_VERSION: u32 = 2;

/// Migrations, index `i` taking a database from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the first release.
    "CREATE TABLE meta (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;
     CREATE TABLE identity (name TEXT NOT NULL, device INTEGER NOT NULL, v BLOB NOT NULL,
         PRIMARY KEY (name, device)) WITHOUT ROWID;
     CREATE TABLE pre_key (id INTEGER PRIMARY KEY, v BLOB NOT NULL);
     CREATE TABLE signed_pre_key (id INTEGER PRIMARY KEY, v BLOB NOT NULL);
     CREATE TABLE session (name TEXT NOT NULL, device INTEGER NOT NULL, v BLOB NOT NULL,
         PRIMARY KEY (name, device)) WITHOUT ROWID;
     CREATE TABLE message (name TEXT NOT NULL, device INTEGER NOT NULL, id BLOB NOT NULL,
         received_at INTEGER NOT NULL, expires_at INTEGER, v BLOB,
         PRIMARY KEY (name, device, id)) WITHOUT ROWID;
     CREATE INDEX message_expiry ON message (expires_at) WHERE expires_at IS NOT NULL;
     CREATE TABLE state (kind TEXT NOT NULL, k TEXT NOT NULL, v BLOB NOT NULL,
         PRIMARY KEY (kind, k)) WITHOUT ROWID;",
    // 2: sender keys of groups, one row per (sender, distribution id).
    "CREATE TABLE sender_key (name TEXT NOT NULL, device INTEGER NOT NULL,
         distribution BLOB NOT NULL, v BLOB NOT NULL,
         PRIMARY KEY (name, device, distribution)) WITHOUT ROWID;",
];

/// A known plaintext sealed at creation, to tell a wrong key from a tampered row.
const KEY_CHECK: &[u8] = b"confide sqlite key check v1";

/// How hard SQLite works to make each commit durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Synchronous {
    /// `synchronous=FULL`: every commit is fsynced before it returns. The default.
    #[default]
    Full,
    /// `synchronous=NORMAL`: WAL is fsynced at checkpoints only. A process crash loses
    /// nothing; a power loss may lose the latest commits (the database stays consistent,
    /// but a lost session commit can make the device reuse a message key: use only where
    /// the OS or storage guarantees write ordering across power loss).
    Normal,
}

/// Options for [`SqliteStore::open_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// Durability of each commit.
    pub synchronous: Synchronous,
    /// How long a writer waits for another process's transaction.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

impl SqliteOptions {
    /// Options with this durability.
    pub fn with_synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }
}

/// Opening a [`SqliteStore`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// SQLite failed (cannot open the file, I/O error, not a database).
    #[error("database error")]
    Database(#[source] rusqlite::Error),
    /// The database was sealed with another key.
    #[error("the store key does not match this database")]
    WrongKey,
    /// The database was written by a newer version of confide.
    #[error("database schema version {found} is newer than the supported {supported}")]
    NewerSchema {
        /// The file's version.
        found: u32,
        /// The newest version this release knows.
        supported: u32,
    },
    /// The database lacks its key check, or a stored row fails to load.
    #[error("database is corrupt ({table})")]
    Corrupt {
        /// The table at fault.
        table: &'static str,
    },
    /// The store key could not be expanded (never happens with a 32-byte key).
    #[error("store key derivation failed")]
    KeyDerivation,
}

impl From<rusqlite::Error> for OpenError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Database(e)
    }
}

/// A persistent [`super::ProtocolStore`] on SQLite, sealed under a [`StoreKey`]. See the
/// [module docs](crate::store::sqlite) for what stays visible and how commits are made atomic.
///
/// `Send + Sync`: one connection behind a mutex serves all threads; several processes
/// may open the same file (SQLite's locking orders their transactions).
pub struct SqliteStore {
    conn: Mutex<Connection>,
    rows: Rows,
    local: Mutex<Option<Local>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// One row `verify` read, its columns typed as SQLite stores them.
struct VerifyRow<'a, 'b>(&'a rusqlite::Row<'b>);

impl Columns for VerifyRow<'_, '_> {
    fn text(&self, i: usize) -> Result<String, StoreError> {
        self.0.get(i).map_err(backend)
    }

    fn number(&self, i: usize) -> Result<u32, StoreError> {
        self.0.get(i).map_err(backend)
    }

    fn bytes(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        self.0.get(i).map_err(backend)
    }

    fn value(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.get(i).map_err(backend)
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path` with default options
    /// ([`Synchronous::Full`]). `rng` seeds this open's nonce salt.
    pub fn open<P: AsRef<Path>, R: RngCore + CryptoRng>(
        path: P,
        key: &StoreKey,
        rng: &mut R,
    ) -> Result<Self, OpenError> {
        Self::open_with(path, key, SqliteOptions::default(), rng)
    }

    /// Opens (creating if needed) the store at `path`: runs pending migrations, checks
    /// the key, and loads our identity if one was set.
    pub fn open_with<P: AsRef<Path>, R: RngCore + CryptoRng>(
        path: P,
        key: &StoreKey,
        options: SqliteOptions,
        rng: &mut R,
    ) -> Result<Self, OpenError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(options.busy_timeout)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        let sync = match options.synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync)?;
        migrate(&mut conn)?;

        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        let sealer = Sealer::new(key, salt).ok_or(OpenError::KeyDerivation)?;
        // SQLite row keys have no owner prefix: the file holds one device.
        let rows = Rows::new(sealer, Vec::new());

        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let generation: Option<Vec<u8>> = tx
            .query_row("SELECT v FROM meta WHERE k = 'generation'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let generation = match generation {
            None => 1,
            Some(v) => {
                let bytes: [u8; 8] = v
                    .as_slice()
                    .try_into()
                    .map_err(|_| OpenError::Corrupt { table: "meta" })?;
                u64::from_be_bytes(bytes).saturating_add(1)
            }
        };
        tx.execute(
            "INSERT OR REPLACE INTO meta (k, v) VALUES ('generation', ?1)",
            params![generation.to_be_bytes().to_vec()],
        )?;
        rows.set_generation(generation);
        let check: Option<Vec<u8>> = tx
            .query_row("SELECT v FROM meta WHERE k = 'key_check'", [], |r| r.get(0))
            .optional()?;
        match check {
            Some(sealed) => match rows.open("meta", b"key_check", &sealed) {
                Ok(v) if v.as_slice() == KEY_CHECK => {}
                _ => return Err(OpenError::WrongKey),
            },
            None => {
                let count: i64 = tx.query_row(
                    "SELECT (SELECT count(*) FROM meta) + (SELECT count(*) FROM session)",
                    [],
                    |r| r.get(0),
                )?;
                if count > 1 {
                    return Err(OpenError::Corrupt { table: "meta" });
                }
                tx.execute(
                    "INSERT INTO meta (k, v) VALUES ('key_check', ?1)",
                    params![rows.seal("meta", b"key_check", KEY_CHECK)],
                )?;
            }
        }
        let local = load_local(&tx, &rows)?;
        tx.commit()?;
        Ok(Self {
            conn: Mutex::new(conn),
            rows,
            local: Mutex::new(local),
        })
    }

    fn conn(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn
            .lock()
            .map_err(|_| StoreError::Backend("sqlite store lock poisoned".into()))
    }

    fn local_guard(&self) -> Result<MutexGuard<'_, Option<Local>>, StoreError> {
        self.local
            .lock()
            .map_err(|_| StoreError::Backend("sqlite store lock poisoned".into()))
    }

    /// Whether our identity has been set ([`SqliteStore::set_local_identity`]).
    pub fn has_local_identity(&self) -> Result<bool, StoreError> {
        Ok(self.local_guard()?.is_some())
    }

    /// Sets (or replaces) our identity and registration id. Replacing an identity
    /// invalidates every session and bundle made with the old one.
    pub fn set_local_identity(
        &self,
        identity: &IdentityKeyPair,
        registration_id: u32,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let (sealed_identity, sealed_reg) = self.rows.seal_local(identity, registration_id);
        tx.execute(
            "INSERT OR REPLACE INTO meta (k, v) VALUES ('local_identity', ?1), ('registration_id', ?2)",
            params![sealed_identity, sealed_reg],
        )
        .map_err(backend)?;
        tx.commit().map_err(backend)?;
        *self.local_guard()? = Some(Local {
            identity: identity.clone(),
            registration_id,
        });
        Ok(())
    }

    /// The stored message with this id from `address` (see
    /// [`TransactionalStore::delivered`]).
    pub fn message(
        &self,
        address: &Address,
        id: &MessageId,
    ) -> Result<Option<DeliveredMessage>, StoreError> {
        self.stored_message(address, id)
    }

    /// The app has the message safely: drop its plaintext and keep only the dedupe
    /// record, so a later redelivery is refused as a duplicate. Returns whether the
    /// message was stored. For a group message `address` is the sender and `id` is
    /// [`MessageId::of_group`].
    pub fn acknowledge(&self, address: &Address, id: &MessageId) -> Result<bool, StoreError> {
        let idx = self.rows.message_index(address, id);
        let n = self.put(
            "UPDATE message SET v = NULL WHERE name = ?1 AND device = ?2 AND id = ?3",
            params![address.name(), address.device_id(), &idx[..]],
        )?;
        Ok(n > 0)
    }

    /// Sets when a stored message disappears (its disappearing-message expiry), or
    /// `None` to keep it until acknowledged. Returns whether the message was stored.
    pub fn set_message_expiry(
        &self,
        address: &Address,
        id: &MessageId,
        expires_at: Option<Timestamp>,
    ) -> Result<bool, StoreError> {
        let idx = self.rows.message_index(address, id);
        let n = self.put(
            "UPDATE message SET expires_at = ?4 WHERE name = ?1 AND device = ?2 AND id = ?3",
            params![
                address.name(),
                address.device_id(),
                &idx[..],
                expires_at.map(ms)
            ],
        )?;
        Ok(n > 0)
    }

    /// Deletes every message whose expiry is at or before `now` (plaintext and dedupe
    /// record: the message key is long gone, so a redelivery fails as a duplicate) and
    /// the dedupe records of acknowledged messages received before
    /// `forget_acknowledged_before`. Returns how many rows went.
    pub fn purge_messages(
        &self,
        now: Timestamp,
        forget_acknowledged_before: Timestamp,
    ) -> Result<usize, StoreError> {
        let conn = self.conn()?;
        let expired = conn
            .execute(
                "DELETE FROM message WHERE expires_at IS NOT NULL AND expires_at <= ?1",
                params![ms(now)],
            )
            .map_err(backend)?;
        let old = conn
            .execute(
                "DELETE FROM message WHERE v IS NULL AND received_at < ?1",
                params![ms(forget_acknowledged_before)],
            )
            .map_err(backend)?;
        Ok(expired + old)
    }

    /// Opens every row with the key (and checks SQLite's own `integrity_check`): a
    /// consistency check for tests and for apps after a restore.
    pub fn verify(&self) -> Result<StoreSummary, StoreError> {
        let conn = self.conn()?;
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(backend)?;
        if ok != "ok" {
            return Err(rows::tampered("integrity_check"));
        }
        let passes: [(&str, &'static str, RowKey); 7] = [
            (
                "SELECT name, device, v FROM identity",
                "identity",
                RowKey::Address,
            ),
            (
                "SELECT name, device, v FROM session",
                "session",
                RowKey::Address,
            ),
            ("SELECT id, v FROM pre_key", "pre_key", RowKey::Id),
            (
                "SELECT id, v FROM signed_pre_key",
                "signed_pre_key",
                RowKey::Id,
            ),
            (
                "SELECT name, device, id, v FROM message",
                "message",
                RowKey::Message,
            ),
            ("SELECT kind, k, v FROM state", "state", RowKey::State),
            (
                "SELECT name, device, distribution, v FROM sender_key",
                "sender_key",
                RowKey::SenderKey,
            ),
        ];
        let mut summary = StoreSummary::default();
        for (sql, table, kind) in passes {
            let mut stmt = conn.prepare(sql).map_err(backend)?;
            let mut found = stmt.query([]).map_err(backend)?;
            while let Some(r) = found.next().map_err(backend)? {
                self.rows
                    .verify_row(table, kind, &VerifyRow(r), &mut summary)?;
            }
        }
        Ok(summary)
    }

    /// The one sealed value `sql` selects, still sealed.
    fn get(&self, sql: &str, params: impl rusqlite::Params) -> Result<Option<Vec<u8>>, StoreError> {
        let conn = self.conn()?;
        conn.prepare_cached(sql)
            .and_then(|mut s| s.query_row(params, |r| r.get(0)).optional())
            .map_err(backend)
    }

    /// Runs one statement; returns the rows it changed.
    fn put(&self, sql: &str, params: impl rusqlite::Params) -> Result<usize, StoreError> {
        let conn = self.conn()?;
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute(params))
            .map_err(backend)
    }
}

fn migrate(conn: &mut Connection) -> Result<(), OpenError> {
    let found: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let supported = u32::try_from(MIGRATIONS.len()).unwrap_or(u32::MAX);
    if found > supported {
        return Err(OpenError::NewerSchema { found, supported });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the lock.
        let now: u32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if now as usize > i {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

fn load_local(conn: &Connection, rows: &Rows) -> Result<Option<Local>, OpenError> {
    let get = |k: &str| -> Result<Option<Vec<u8>>, OpenError> {
        Ok(conn
            .query_row("SELECT v FROM meta WHERE k = ?1", params![k], |r| r.get(0))
            .optional()?)
    };
    let (Some(identity), Some(reg)) = (get("local_identity")?, get("registration_id")?) else {
        return Ok(None);
    };
    let opened = || -> Result<Local, StoreError> {
        let identity = rows.open("meta", b"local_identity", &identity)?;
        let reg = rows.open("meta", b"registration_id", &reg)?;
        Local::decode(&identity, &reg)
    };
    opened()
        .map(Some)
        .map_err(|_| OpenError::Corrupt { table: "meta" })
}

impl IdentityStore for SqliteStore {
    fn local_identity(&self) -> Result<IdentityKeyPair, StoreError> {
        rows::local_identity(self.local_guard()?.as_ref())
    }

    fn local_registration_id(&self) -> Result<u32, StoreError> {
        rows::local_registration_id(self.local_guard()?.as_ref())
    }

    fn identity(&self, address: &Address) -> Result<Option<IdentityKey>, StoreError> {
        let sealed = self.get(
            "SELECT v FROM identity WHERE name = ?1 AND device = ?2",
            params![address.name(), address.device_id()],
        )?;
        self.rows.open_identity(address, sealed)
    }

    fn save_identity(&self, address: &Address, key: &IdentityKey) -> Result<(), StoreError> {
        let sealed = self.rows.seal_identity(address, key);
        self.put(
            "INSERT OR REPLACE INTO identity (name, device, v) VALUES (?1, ?2, ?3)",
            params![address.name(), address.device_id(), sealed],
        )?;
        Ok(())
    }

    fn state_store(&self) -> Option<&dyn StateStore> {
        Some(self)
    }
}

impl PreKeyStore for SqliteStore {
    fn pre_key(&self, id: u32) -> Result<Option<PreKeyRecord>, StoreError> {
        let sealed = self.get("SELECT v FROM pre_key WHERE id = ?1", params![id])?;
        self.rows.open_pre_key(id, sealed)
    }

    fn save_pre_key(&self, record: &PreKeyRecord) -> Result<(), StoreError> {
        let sealed = self.rows.seal_pre_key(record);
        self.put(
            "INSERT OR REPLACE INTO pre_key (id, v) VALUES (?1, ?2)",
            params![record.id(), sealed],
        )?;
        Ok(())
    }

    fn remove_pre_key(&self, id: u32) -> Result<(), StoreError> {
        self.put("DELETE FROM pre_key WHERE id = ?1", params![id])?;
        Ok(())
    }
}

impl SignedPreKeyStore for SqliteStore {
    fn signed_pre_key(&self, id: u32) -> Result<Option<SignedPreKeyRecord>, StoreError> {
        let sealed = self.get("SELECT v FROM signed_pre_key WHERE id = ?1", params![id])?;
        self.rows.open_signed_pre_key(id, sealed)
    }

    fn save_signed_pre_key(&self, record: &SignedPreKeyRecord) -> Result<(), StoreError> {
        let sealed = self.rows.seal_signed_pre_key(record);
        self.put(
            "INSERT OR REPLACE INTO signed_pre_key (id, v) VALUES (?1, ?2)",
            params![record.id(), sealed],
        )?;
        Ok(())
    }
}

impl SessionStore for SqliteStore {
    fn session(&self, address: &Address) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.load_session(address)?.0)
    }

    fn save_session(&self, address: &Address, record: &SessionRecord) -> Result<(), StoreError> {
        let sealed = self.rows.seal_session(address, record);
        self.put(
            "INSERT OR REPLACE INTO session (name, device, v) VALUES (?1, ?2, ?3)",
            params![address.name(), address.device_id(), sealed],
        )?;
        Ok(())
    }

    fn transactional(&self) -> Option<&dyn TransactionalStore> {
        Some(self)
    }
}

impl TransactionalStore for SqliteStore {
    fn load_session(
        &self,
        address: &Address,
    ) -> Result<(Option<SessionRecord>, RowVersion), StoreError> {
        let sealed = self.get(
            "SELECT v FROM session WHERE name = ?1 AND device = ?2",
            params![address.name(), address.device_id()],
        )?;
        self.rows.open_session(address, sealed)
    }

    fn delivered(
        &self,
        address: &Address,
        id: &MessageId,
    ) -> Result<Option<DeliveredMessage>, StoreError> {
        self.stored_message(address, id)
    }

    fn commit(&self, commit: &Commit<'_>) -> Result<CommitOutcome, StoreError> {
        let address = commit.address;
        // Seal outside the lock: the transaction holds only SQL.
        let sealed = self.rows.seal_commit(commit);

        let mut conn = self.conn()?;
        let Some(tx) = begin_commit(
            &mut conn,
            "SELECT substr(v, 1, 12) FROM session WHERE name = ?1 AND device = ?2",
            params![address.name(), address.device_id()],
            commit.expected,
            address,
            sealed.message.as_ref(),
        )?
        else {
            return Ok(CommitOutcome::Conflict);
        };
        tx.prepare_cached("INSERT OR REPLACE INTO session (name, device, v) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| {
                s.execute(params![address.name(), address.device_id(), sealed.session])
            })
            .map_err(backend)?;
        if let Some(identity) = &sealed.identity {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO identity (name, device, v) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut s| s.execute(params![address.name(), address.device_id(), identity]))
            .map_err(backend)?;
        }
        if let Some(id) = commit.remove_pre_key {
            tx.prepare_cached("DELETE FROM pre_key WHERE id = ?1")
                .and_then(|mut s| s.execute(params![id]))
                .map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
        Ok(CommitOutcome::Committed)
    }
}

/// Whether the version a commit expects is the row's current one (`current` is the
/// first 12 bytes of the sealed value, its nonce, or `None` for no row).
fn version_matches(current: Option<&[u8]>, expected: RowVersion) -> bool {
    match (current, expected.token()) {
        (None, None) => true,
        (Some(cur), Some(exp)) => cur == exp.as_slice(),
        _ => false,
    }
}

/// Starts a commit's `BEGIN IMMEDIATE` transaction: checks the compare-and-swap
/// (`current` selects the row's version, the first 12 bytes of its sealed value) and
/// inserts the decrypted message from `sender`, if any. `None`, after a rollback, if the
/// row changed since the operation read it or the message id is already stored.
fn begin_commit<'c>(
    conn: &'c mut Connection,
    current: &str,
    params: impl rusqlite::Params,
    expected: RowVersion,
    sender: &Address,
    message: Option<&SealedMessage>,
) -> Result<Option<rusqlite::Transaction<'c>>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    let current: Option<Vec<u8>> = tx
        .prepare_cached(current)
        .and_then(|mut s| s.query_row(params, |r| r.get(0)).optional())
        .map_err(backend)?;
    if !version_matches(current.as_deref(), expected) {
        return Ok(None);
    }
    if let Some(message) = message {
        if !insert_message(&tx, sender, message)? {
            return Ok(None);
        }
    }
    Ok(Some(tx))
}

/// Inserts a message row unless one with its id exists; returns whether it inserted.
fn insert_message(
    tx: &rusqlite::Transaction<'_>,
    address: &Address,
    message: &SealedMessage,
) -> Result<bool, StoreError> {
    let inserted = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO message (name, device, id, received_at, expires_at, v)
             VALUES (?1, ?2, ?3, ?4, NULL, ?5)",
        )
        .and_then(|mut s| {
            s.execute(params![
                address.name(),
                address.device_id(),
                &message.idx[..],
                message.received_at,
                message.sealed
            ])
        })
        .map_err(backend)?;
    Ok(inserted > 0)
}

impl SqliteStore {
    /// The message row for (`address`, `id`), 1:1 or group alike.
    fn stored_message(
        &self,
        address: &Address,
        id: &MessageId,
    ) -> Result<Option<DeliveredMessage>, StoreError> {
        let idx = self.rows.message_index(address, id);
        let conn = self.conn()?;
        let found: Option<(i64, Option<Vec<u8>>)> = conn
            .prepare_cached(
                "SELECT received_at, v FROM message WHERE name = ?1 AND device = ?2 AND id = ?3",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![address.name(), address.device_id(), &idx[..]],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
            })
            .map_err(backend)?;
        drop(conn);
        found
            .map(|(received_at, sealed)| self.rows.open_message(address, &idx, received_at, sealed))
            .transpose()
    }
}

impl StateStore for SqliteStore {
    fn state(&self, kind: &str, key: &str) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let sealed = self.get(
            "SELECT v FROM state WHERE kind = ?1 AND k = ?2",
            params![kind, key],
        )?;
        self.rows.open_state(kind, key, sealed)
    }

    fn save_state(&self, kind: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let sealed = self.rows.seal_state(kind, key, value);
        self.put(
            "INSERT OR REPLACE INTO state (kind, k, v) VALUES (?1, ?2, ?3)",
            params![kind, key, sealed],
        )?;
        Ok(())
    }

    fn remove_state(&self, kind: &str, key: &str) -> Result<(), StoreError> {
        self.put(
            "DELETE FROM state WHERE kind = ?1 AND k = ?2",
            params![kind, key],
        )?;
        Ok(())
    }

    fn load_state(&self, kind: &str, key: &str) -> Result<VersionedState, StoreError> {
        let sealed = self.get(
            "SELECT v FROM state WHERE kind = ?1 AND k = ?2",
            params![kind, key],
        )?;
        self.rows.open_state_versioned(kind, key, sealed)
    }

    fn commit_state(&self, writes: &[StateWrite<'_>]) -> Result<CommitOutcome, StoreError> {
        // Seal outside the lock: the transaction holds only SQL.
        let sealed = self.rows.seal_states(writes);
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        for (w, sealed) in writes.iter().zip(&sealed) {
            let current: Option<Vec<u8>> = tx
                .prepare_cached("SELECT substr(v, 1, 12) FROM state WHERE kind = ?1 AND k = ?2")
                .and_then(|mut s| s.query_row(params![w.kind, w.key], |r| r.get(0)).optional())
                .map_err(backend)?;
            if !version_matches(current.as_deref(), w.expected) {
                // Dropping the transaction rolls back the entries written so far.
                return Ok(CommitOutcome::Conflict);
            }
            tx.prepare_cached("INSERT OR REPLACE INTO state (kind, k, v) VALUES (?1, ?2, ?3)")
                .and_then(|mut s| s.execute(params![w.kind, w.key, sealed]))
                .map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
        Ok(CommitOutcome::Committed)
    }
}

impl SenderKeyStore for SqliteStore {
    fn sender_key(
        &self,
        sender: &Address,
        distribution_id: DistributionId,
    ) -> Result<Option<SenderKeyRecord>, StoreError> {
        Ok(self.load_sender_key(sender, distribution_id)?.0)
    }

    fn save_sender_key(
        &self,
        sender: &Address,
        distribution_id: DistributionId,
        record: &SenderKeyRecord,
    ) -> Result<(), StoreError> {
        let sealed = self.rows.seal_sender_key(sender, distribution_id, record);
        self.put(
            "INSERT OR REPLACE INTO sender_key (name, device, distribution, v)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                sender.name(),
                sender.device_id(),
                &distribution_id.as_bytes()[..],
                sealed
            ],
        )?;
        Ok(())
    }

    fn transactional_group(&self) -> Option<&dyn TransactionalGroupStore> {
        Some(self)
    }
}

impl TransactionalGroupStore for SqliteStore {
    fn load_sender_key(
        &self,
        sender: &Address,
        distribution_id: DistributionId,
    ) -> Result<(Option<SenderKeyRecord>, RowVersion), StoreError> {
        let sealed = self.get(
            "SELECT v FROM sender_key WHERE name = ?1 AND device = ?2 AND distribution = ?3",
            params![
                sender.name(),
                sender.device_id(),
                &distribution_id.as_bytes()[..]
            ],
        )?;
        self.rows.open_sender_key(sender, distribution_id, sealed)
    }

    fn group_delivered(
        &self,
        sender: &Address,
        id: &MessageId,
    ) -> Result<Option<DeliveredMessage>, StoreError> {
        self.stored_message(sender, id)
    }

    fn commit_group(&self, commit: &GroupCommit<'_>) -> Result<CommitOutcome, StoreError> {
        let sender = commit.sender;
        let distribution = &commit.distribution_id.as_bytes()[..];
        // Seal outside the lock: the transaction holds only SQL.
        let sealed = self.rows.seal_group_commit(commit);

        let mut conn = self.conn()?;
        let Some(tx) = begin_commit(
            &mut conn,
            "SELECT substr(v, 1, 12) FROM sender_key
             WHERE name = ?1 AND device = ?2 AND distribution = ?3",
            params![sender.name(), sender.device_id(), distribution],
            commit.expected,
            sender,
            sealed.message.as_ref(),
        )?
        else {
            return Ok(CommitOutcome::Conflict);
        };
        tx.prepare_cached(
            "INSERT OR REPLACE INTO sender_key (name, device, distribution, v)
             VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut s| {
            s.execute(params![
                sender.name(),
                sender.device_id(),
                distribution,
                sealed.record
            ])
        })
        .map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok(CommitOutcome::Committed)
    }
}
