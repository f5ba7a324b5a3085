//! [`PostgresStore`]: the persistent, sealed, transactional store for the server side of
//! a business host, where many devices' sessions live in one shared (and typically
//! replicated) PostgreSQL database.
//!
//! One [`PostgresPool`] holds the host's connections; each device opens its own
//! [`PostgresStore`] on it with the name the host gives that device. Every row carries
//! that name (`owner`) in its key, so one database holds any number of devices, and a
//! store only ever reads and writes its own device's rows.
//!
//! # What is sealed and what stays visible
//! Values are sealed exactly as in the SQLite store: AES-256-GCM under a key derived
//! (HKDF-SHA-256, in a PostgreSQL-only domain) from the app's [`StoreKey`], with the
//! table, the owning device and the row key as associated data. A value moved to
//! another row, table or device fails to open ([`TamperedRow`]). Someone who can read
//! the database (or a replica, or a backup) but not the key still sees the device
//! names, the row keys (remote addresses, prekey ids, sender-key distribution ids,
//! privacy-state kinds and keys), per message the sender's address, receive time,
//! expiry and acknowledged flag (the message's row id is an HMAC under a derived key;
//! 1:1 and group messages share the table and a row does not say which it is, though
//! a group message's row appears in the same transaction as its sender-key rewrite),
//! every value's size (plaintext + 28 bytes), row counts, and which rows change when
//! (a sender-key row is rewritten at every group encrypt and group decrypt, so the
//! arrival times of each member's group messages show).
//! A server operator can also see every statement's timing. Rolling rows back is not
//! detected: a rolled-back session reuses message keys, so never restore this
//! database from a backup into service (make new sessions instead).
//!
//! # Atomicity
//! [`PostgresStore`] implements [`TransactionalStore`]: each [`crate::cipher`] operation
//! commits in one transaction: the decrypted message is inserted (a duplicate id
//! conflicts), the session row is replaced only if its sealed value still starts with
//! the nonce the operation loaded (a compare-and-swap in the `UPDATE`'s `WHERE`), and
//! the trusted identity and the consumed prekey change with it. A lost
//! compare-and-swap, a serialization failure (under `SERIALIZABLE`), a deadlock or a
//! unique violation all roll back and return [`CommitOutcome::Conflict`], and the
//! caller redoes the operation.
//!
//! It also implements [`TransactionalGroupStore`] the same way for
//! [`crate::device::Device`]'s group operations: each commits in one transaction with a
//! compare-and-swap on the sender-key row (an `INSERT ... ON CONFLICT DO NOTHING` when
//! the operation found no row), and a group decrypt inserts its message (under
//! [`MessageId::of_group`], sealed and bound to its row like a 1:1 message) in the same
//! transaction, so a redelivered group message yields the stored plaintext, and
//! [`PostgresStore::acknowledge`], [`PostgresStore::set_message_expiry`] and
//! [`PostgresStore::purge_messages`] cover group messages too. Two hosts serving one
//! device order their group operations through the same compare-and-swap, so no
//! chain step is used twice and no decrypted message is lost or decrypted twice.
//!
//! Durability is the server's: with the default
//! `synchronous_commit = on` a commit is flushed (and, with synchronous replication,
//! replicated) before `commit` returns.
//!
//! # Connections
//! [`PostgresPool::new`] connects without TLS (loopback or a Unix socket);
//! [`PostgresPool::with_tls`] takes any rust-postgres TLS connector for a server across
//! a network. Tables are created in the first schema of the connection's
//! `search_path`; give the configuration `options("-c search_path=NAME")` to keep them
//! in a schema of their own.
//!
//! # Schema
//! Tables are prefixed `confide_`. The version is in `confide_schema_version`
//! ([`SCHEMA_VERSION`]); [`PostgresStore::open`] runs the pending migrations in one
//! transaction under an advisory lock (so hosts starting together migrate once), and
//! refuses a database from a newer version ([`PostgresOpenError::NewerSchema`]).

mod pool;

/// The rust-postgres client this store is built on, for the host's connection
/// configuration (`client::Config`) and TLS setup, at the version the store uses.
pub use ::postgres as client;
pub use pool::{PoolError, PostgresPool};

pub use super::rows::{StoreSummary, TamperedRow};

use std::sync::{Mutex, MutexGuard};

use ::postgres::error::SqlState;
use ::postgres::types::ToSql;
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use self::pool::Conn;
use super::rows::{
    self, Columns, Local, RowKey, Rows, SealedCommit, SealedGroupCommit, SealedMessage, ms,
    tampered, text_row,
};
use super::seal::{self, Sealer};
use super::{
    Commit, CommitOutcome, DeliveredMessage, GroupCommit, IdentityStore, MessageId, PreKeyStore,
    RowVersion, SenderKeyStore, SessionStore, SignedPreKeyStore, StateStore, StateWrite, StoreKey,
    TransactionalGroupStore, TransactionalStore, VersionedState,
};
use crate::error::StoreError;
use crate::group::{DistributionId, SenderKeyRecord};
use crate::keys::{IdentityKey, IdentityKeyPair, PreKeyRecord, SignedPreKeyRecord};
use crate::session::SessionRecord;
use crate::{Address, Timestamp};

/// The schema version this release writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Migrations, index `i` taking a database from version `i` to `i + 1`. All run in one
/// transaction (PostgreSQL's DDL is transactional).
const MIGRATIONS: &[&str] = &[
    // 1: the first release.
    "CREATE SEQUENCE confide_generation;
     CREATE TABLE confide_meta (owner TEXT NOT NULL, k TEXT NOT NULL, v BYTEA NOT NULL,
         PRIMARY KEY (owner, k));
     CREATE TABLE confide_identity (owner TEXT NOT NULL, name TEXT NOT NULL,
         device BIGINT NOT NULL, v BYTEA NOT NULL, PRIMARY KEY (owner, name, device));
     CREATE TABLE confide_pre_key (owner TEXT NOT NULL, id BIGINT NOT NULL,
         v BYTEA NOT NULL, PRIMARY KEY (owner, id));
     CREATE TABLE confide_signed_pre_key (owner TEXT NOT NULL, id BIGINT NOT NULL,
         v BYTEA NOT NULL, PRIMARY KEY (owner, id));
     CREATE TABLE confide_session (owner TEXT NOT NULL, name TEXT NOT NULL,
         device BIGINT NOT NULL, v BYTEA NOT NULL, PRIMARY KEY (owner, name, device));
     CREATE TABLE confide_message (owner TEXT NOT NULL, name TEXT NOT NULL,
         device BIGINT NOT NULL, id BYTEA NOT NULL, received_at BIGINT NOT NULL,
         expires_at BIGINT, v BYTEA, PRIMARY KEY (owner, name, device, id));
     CREATE INDEX confide_message_expiry ON confide_message (owner, expires_at)
         WHERE expires_at IS NOT NULL;
     CREATE TABLE confide_sender_key (owner TEXT NOT NULL, name TEXT NOT NULL,
         device BIGINT NOT NULL, distribution BYTEA NOT NULL, v BYTEA NOT NULL,
         PRIMARY KEY (owner, name, device, distribution));
     CREATE TABLE confide_state (owner TEXT NOT NULL, kind TEXT NOT NULL, k TEXT NOT NULL,
         v BYTEA NOT NULL, PRIMARY KEY (owner, kind, k));",
];

/// The advisory lock that orders migrations between hosts ("confide" in ASCII).
const MIGRATION_LOCK: i64 = 0x0063_6f6e_6669_6465;

/// A known plaintext sealed per device at its first open, to tell a wrong key from a
/// tampered row.
const KEY_CHECK: &[u8] = b"confide postgres key check v1";

/// The longest device name [`PostgresStore::open`] accepts, in bytes.
pub const MAX_DEVICE_NAME: usize = 256;

/// Opening a [`PostgresStore`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresOpenError {
    /// No connection could be had from the pool.
    #[error("no database connection")]
    Pool(#[source] PoolError),
    /// The server refused a statement (permissions, a broken connection, ...).
    #[error("database error")]
    Database(#[source] ::postgres::Error),
    /// The device name is empty, longer than [`MAX_DEVICE_NAME`] bytes or holds a NUL.
    #[error("invalid device name")]
    InvalidDevice,
    /// This device's rows were sealed with another key.
    #[error("the store key does not match this device's rows")]
    WrongKey,
    /// The database was written by a newer version of confide.
    #[error("database schema version {found} is newer than the supported {supported}")]
    NewerSchema {
        /// The database's version.
        found: u32,
        /// The newest version this release knows.
        supported: u32,
    },
    /// The device's rows lack their key check, or a stored row fails to load.
    #[error("database is corrupt ({table})")]
    Corrupt {
        /// The table at fault.
        table: &'static str,
    },
    /// The store key could not be expanded (never happens with a 32-byte key).
    #[error("store key derivation failed")]
    KeyDerivation,
    /// Reading the device's identity failed after the key check passed.
    #[error("loading the device's identity failed")]
    Load(#[source] StoreError),
}

impl From<::postgres::Error> for PostgresOpenError {
    fn from(e: ::postgres::Error) -> Self {
        Self::Database(e)
    }
}

impl From<PoolError> for PostgresOpenError {
    fn from(e: PoolError) -> Self {
        Self::Pool(e)
    }
}

/// A persistent [`super::ProtocolStore`] (and [`SenderKeyStore`], [`StateStore`]) for one
/// device, in a PostgreSQL database shared with other devices, sealed under a
/// [`StoreKey`]. See the [module docs](crate::store::postgres).
///
/// `Send + Sync`: operations take a connection from the [`PostgresPool`] for their
/// duration, so threads (and hosts) work on one device at once; the compare-and-swap
/// in each commit orders them.
pub struct PostgresStore {
    pool: PostgresPool,
    device: String,
    /// Seals rows with the device name (length-prefixed) before every row key.
    rows: Rows,
    local: Mutex<Option<Local>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

fn backend(e: ::postgres::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// A failure the caller may retry by redoing the operation: the transaction was
/// rolled back and nothing was written.
fn is_conflict(e: &::postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::UNIQUE_VIOLATION
    )
}

/// One row `verify` read: every bad column is reported as a tampered row of `table`.
struct VerifyRow<'a> {
    row: &'a ::postgres::Row,
    table: &'static str,
}

impl VerifyRow<'_> {
    fn get<'b, T: ::postgres::types::FromSql<'b>>(&'b self, i: usize) -> Result<T, StoreError> {
        self.row.try_get(i).map_err(|_| tampered(self.table))
    }
}

impl Columns for VerifyRow<'_> {
    fn text(&self, i: usize) -> Result<String, StoreError> {
        self.get(i)
    }

    fn number(&self, i: usize) -> Result<u32, StoreError> {
        let n: i64 = self.get(i)?;
        u32::try_from(n).map_err(|_| tampered(self.table))
    }

    fn bytes(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        self.get(i)
    }

    fn value(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(i)
    }
}

impl PostgresStore {
    /// Opens the store of `device` (a name the host gives it, unique in the database):
    /// runs pending migrations, checks the key against the device's rows (setting it up
    /// on first open), and loads its identity if one was set. `rng` seeds this open's
    /// nonce salt.
    pub fn open<R: RngCore + CryptoRng>(
        pool: &PostgresPool,
        device: &str,
        key: &StoreKey,
        rng: &mut R,
    ) -> Result<Self, PostgresOpenError> {
        if device.is_empty() || device.len() > MAX_DEVICE_NAME || device.contains('\0') {
            return Err(PostgresOpenError::InvalidDevice);
        }
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        let sealer = Sealer::in_domain(key, salt, &seal::POSTGRES)
            .ok_or(PostgresOpenError::KeyDerivation)?;
        // Every row key starts with the device name, so a row never opens as another
        // device's.
        let rows = Rows::new(sealer, text_row(&[device]));

        let mut lease = pool.get()?;
        let conn = lease.conn().ok_or(PoolError::Poisoned)?;
        migrate(&mut conn.client)?;

        let mut tx = conn.client.transaction()?;
        // Unique per open across every host and device (a sequence never goes back,
        // not even when the transaction that drew from it rolls back).
        let generation: i64 = tx
            .query_one("SELECT nextval('confide_generation')", &[])?
            .try_get(0)?;
        rows.set_generation(u64::try_from(generation).unwrap_or(0));
        let select_check = |tx: &mut ::postgres::Transaction<'_>| {
            tx.query_opt(
                "SELECT v FROM confide_meta WHERE owner = $1 AND k = 'key_check'",
                &[&device],
            )?
            .map(|r| r.try_get::<_, Vec<u8>>(0))
            .transpose()
        };
        let mut check = select_check(&mut tx)?;
        if check.is_none() {
            // A new device. Another host opening it at the same moment may win the
            // insert: then its check (under its key) is the one to match.
            let inserted = tx.execute(
                "INSERT INTO confide_meta (owner, k, v) VALUES ($1, 'key_check', $2)
                 ON CONFLICT (owner, k) DO NOTHING",
                &[&device, &rows.seal("meta", b"key_check", KEY_CHECK)],
            )?;
            if inserted == 0 {
                check = select_check(&mut tx)?;
            } else {
                // Ours is the first key check: the device must have no rows yet (rows
                // without one mean the check was deleted).
                let count: i64 = tx
                    .query_one(
                        "SELECT (SELECT count(*) FROM confide_meta
                                 WHERE owner = $1 AND k <> 'key_check')
                              + (SELECT count(*) FROM confide_session WHERE owner = $1)",
                        &[&device],
                    )?
                    .try_get(0)?;
                if count > 0 {
                    return Err(PostgresOpenError::Corrupt { table: "meta" });
                }
            }
        }
        if let Some(sealed) = check {
            match rows.open("meta", b"key_check", &sealed) {
                Ok(v) if v.as_slice() == KEY_CHECK => {}
                _ => return Err(PostgresOpenError::WrongKey),
            }
        }
        tx.commit()?;
        drop(lease);
        let store = Self {
            pool: pool.clone(),
            device: device.to_owned(),
            rows,
            local: Mutex::new(None),
        };
        let local = store.load_local().map_err(|e| match e {
            StoreError::Backend(b) if b.is::<TamperedRow>() => {
                PostgresOpenError::Corrupt { table: "meta" }
            }
            e => PostgresOpenError::Load(e),
        })?;
        *store
            .local
            .lock()
            .map_err(|_| PostgresOpenError::Pool(PoolError::Poisoned))? = local;
        Ok(store)
    }

    /// The device name this store was opened for.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Runs `f` on a pooled connection.
    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T, ::postgres::Error>,
    ) -> Result<T, StoreError> {
        let mut lease = self
            .pool
            .get()
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        let conn = lease
            .conn()
            .ok_or_else(|| StoreError::Backend(Box::new(PoolError::Poisoned)))?;
        f(conn).map_err(backend)
    }

    /// The one sealed value `sql` selects (parameters after the owner), still sealed.
    fn get(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.with_conn(|c| {
            let st = c.stmts.get(&mut c.client, sql)?;
            let mut all: Vec<&(dyn ToSql + Sync)> = vec![&self.device];
            all.extend_from_slice(params);
            c.client
                .query_opt(&st, &all)?
                .map(|r| r.try_get(0))
                .transpose()
        })
    }

    /// Runs one statement (parameters after the owner); returns the rows it changed.
    fn put(&self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        self.with_conn(|c| {
            let st = c.stmts.get(&mut c.client, sql)?;
            let mut all: Vec<&(dyn ToSql + Sync)> = vec![&self.device];
            all.extend_from_slice(params);
            c.client.execute(&st, &all)
        })
    }

    fn local_guard(&self) -> Result<MutexGuard<'_, Option<Local>>, StoreError> {
        self.local
            .lock()
            .map_err(|_| StoreError::Backend("postgres store lock poisoned".into()))
    }

    fn load_local(&self) -> Result<Option<Local>, StoreError> {
        let identity = self
            .get(
                "SELECT v FROM confide_meta WHERE owner = $1 AND k = 'local_identity'",
                &[],
            )?
            .map(|v| self.rows.open("meta", b"local_identity", &v))
            .transpose()?;
        let reg = self
            .get(
                "SELECT v FROM confide_meta WHERE owner = $1 AND k = 'registration_id'",
                &[],
            )?
            .map(|v| self.rows.open("meta", b"registration_id", &v))
            .transpose()?;
        let (Some(identity), Some(reg)) = (identity, reg) else {
            return Ok(None);
        };
        Local::decode(&identity, &reg).map(Some)
    }

    /// Our identity, read from the database if another host set it since we opened.
    fn local(&self) -> Result<MutexGuard<'_, Option<Local>>, StoreError> {
        let mut guard = self.local_guard()?;
        if guard.is_none() {
            *guard = self.load_local()?;
        }
        Ok(guard)
    }

    /// Whether this device's identity has been set ([`PostgresStore::set_local_identity`]).
    pub fn has_local_identity(&self) -> Result<bool, StoreError> {
        Ok(self.local()?.is_some())
    }

    /// Sets (or replaces) this device's identity and registration id. Replacing an
    /// identity invalidates every session and bundle made with the old one.
    pub fn set_local_identity(
        &self,
        identity: &IdentityKeyPair,
        registration_id: u32,
    ) -> Result<(), StoreError> {
        let (sealed_identity, sealed_reg) = self.rows.seal_local(identity, registration_id);
        self.put(
            "INSERT INTO confide_meta (owner, k, v)
             VALUES ($1, 'local_identity', $2), ($1, 'registration_id', $3)
             ON CONFLICT (owner, k) DO UPDATE SET v = EXCLUDED.v",
            &[&sealed_identity, &sealed_reg],
        )?;
        *self.local_guard()? = Some(Local {
            identity: identity.clone(),
            registration_id,
        });
        Ok(())
    }

    /// The stored message with this id from `address`, 1:1 ([`MessageId::of`]) or group
    /// ([`MessageId::of_group`]) (see [`TransactionalStore::delivered`]).
    pub fn message(
        &self,
        address: &Address,
        id: &MessageId,
    ) -> Result<Option<DeliveredMessage>, StoreError> {
        self.delivered(address, id)
    }

    /// The app has the message (1:1 or group) safely: drop its plaintext and keep only
    /// the dedupe record, so a later redelivery is refused as a duplicate. Returns
    /// whether the message was stored.
    pub fn acknowledge(&self, address: &Address, id: &MessageId) -> Result<bool, StoreError> {
        let idx = self.rows.message_index(address, id);
        let n = self.put(
            "UPDATE confide_message SET v = NULL
             WHERE owner = $1 AND name = $2 AND device = $3 AND id = $4",
            &[&address.name(), &i64::from(address.device_id()), &&idx[..]],
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
            "UPDATE confide_message SET expires_at = $5
             WHERE owner = $1 AND name = $2 AND device = $3 AND id = $4",
            &[
                &address.name(),
                &i64::from(address.device_id()),
                &&idx[..],
                &expires_at.map(ms),
            ],
        )?;
        Ok(n > 0)
    }

    /// Deletes this device's messages whose expiry is at or before `now` (plaintext and
    /// dedupe record) and the dedupe records of acknowledged messages received before
    /// `forget_acknowledged_before`. Returns how many rows went.
    pub fn purge_messages(
        &self,
        now: Timestamp,
        forget_acknowledged_before: Timestamp,
    ) -> Result<u64, StoreError> {
        self.put(
            "DELETE FROM confide_message WHERE owner = $1 AND
                 ((expires_at IS NOT NULL AND expires_at <= $2)
                  OR (v IS NULL AND received_at < $3))",
            &[&ms(now), &ms(forget_acknowledged_before)],
        )
    }

    /// Opens every row of this device with the key: a consistency check for tests and
    /// for hosts after a failover.
    pub fn verify(&self) -> Result<StoreSummary, StoreError> {
        let passes: [(&str, &'static str, RowKey); 8] = [
            (
                "SELECT name, device, v FROM confide_identity WHERE owner = $1",
                "identity",
                RowKey::Address,
            ),
            (
                "SELECT id, v FROM confide_pre_key WHERE owner = $1",
                "pre_key",
                RowKey::Id,
            ),
            (
                "SELECT id, v FROM confide_signed_pre_key WHERE owner = $1",
                "signed_pre_key",
                RowKey::Id,
            ),
            (
                "SELECT name, device, v FROM confide_session WHERE owner = $1",
                "session",
                RowKey::Address,
            ),
            (
                "SELECT name, device, id, v FROM confide_message WHERE owner = $1",
                "message",
                RowKey::Message,
            ),
            (
                "SELECT name, device, distribution, v FROM confide_sender_key WHERE owner = $1",
                "sender_key",
                RowKey::SenderKey,
            ),
            (
                "SELECT kind, k, v FROM confide_state WHERE owner = $1",
                "state",
                RowKey::State,
            ),
            (
                "SELECT k, v FROM confide_meta WHERE owner = $1",
                "meta",
                RowKey::Meta,
            ),
        ];
        // One snapshot for all tables.
        let found = self.with_conn(|c| {
            let mut tx = c
                .client
                .build_transaction()
                .isolation_level(::postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            let mut all = Vec::with_capacity(passes.len());
            for (sql, _, _) in &passes {
                all.push(tx.query(*sql, &[&self.device])?);
            }
            tx.commit()?;
            Ok(all)
        })?;
        let mut summary = StoreSummary::default();
        for ((_, table, kind), found) in passes.iter().zip(&found) {
            for row in found {
                let row = VerifyRow { row, table };
                self.rows.verify_row(table, *kind, &row, &mut summary)?;
            }
        }
        Ok(summary)
    }
}

/// Brings the schema to [`SCHEMA_VERSION`], all in one transaction under an advisory
/// lock.
fn migrate(client: &mut ::postgres::Client) -> Result<(), PostgresOpenError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS confide_schema_version (
             one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
             version INTEGER NOT NULL)",
    )?;
    let found: i32 = match tx.query_opt("SELECT version FROM confide_schema_version", &[])? {
        Some(r) => r.try_get(0)?,
        None => 0,
    };
    let found = u32::try_from(found).map_err(|_| PostgresOpenError::Corrupt {
        table: "schema_version",
    })?;
    let supported = u32::try_from(MIGRATIONS.len()).unwrap_or(u32::MAX);
    if found > supported {
        return Err(PostgresOpenError::NewerSchema { found, supported });
    }
    if found == supported {
        // Nothing to do: end the transaction without writing.
        tx.rollback()?;
        return Ok(());
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.batch_execute(sql)?;
        let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO confide_schema_version (one, version) VALUES (TRUE, $1)
             ON CONFLICT (one) DO UPDATE SET version = EXCLUDED.version",
            &[&version],
        )?;
    }
    tx.commit()?;
    Ok(())
}

impl IdentityStore for PostgresStore {
    fn local_identity(&self) -> Result<IdentityKeyPair, StoreError> {
        rows::local_identity(self.local()?.as_ref())
    }

    fn local_registration_id(&self) -> Result<u32, StoreError> {
        rows::local_registration_id(self.local()?.as_ref())
    }

    fn identity(&self, address: &Address) -> Result<Option<IdentityKey>, StoreError> {
        let sealed = self.get(
            "SELECT v FROM confide_identity WHERE owner = $1 AND name = $2 AND device = $3",
            &[&address.name(), &i64::from(address.device_id())],
        )?;
        self.rows.open_identity(address, sealed)
    }

    fn save_identity(&self, address: &Address, key: &IdentityKey) -> Result<(), StoreError> {
        let sealed = self.rows.seal_identity(address, key);
        self.put(
            "INSERT INTO confide_identity (owner, name, device, v) VALUES ($1, $2, $3, $4)
             ON CONFLICT (owner, name, device) DO UPDATE SET v = EXCLUDED.v",
            &[&address.name(), &i64::from(address.device_id()), &sealed],
        )?;
        Ok(())
    }

    fn state_store(&self) -> Option<&dyn StateStore> {
        Some(self)
    }
}

impl PreKeyStore for PostgresStore {
    fn pre_key(&self, id: u32) -> Result<Option<PreKeyRecord>, StoreError> {
        let sealed = self.get(
            "SELECT v FROM confide_pre_key WHERE owner = $1 AND id = $2",
            &[&i64::from(id)],
        )?;
        self.rows.open_pre_key(id, sealed)
    }

    fn save_pre_key(&self, record: &PreKeyRecord) -> Result<(), StoreError> {
        let sealed = self.rows.seal_pre_key(record);
        self.put(
            "INSERT INTO confide_pre_key (owner, id, v) VALUES ($1, $2, $3)
             ON CONFLICT (owner, id) DO UPDATE SET v = EXCLUDED.v",
            &[&i64::from(record.id()), &sealed],
        )?;
        Ok(())
    }

    fn remove_pre_key(&self, id: u32) -> Result<(), StoreError> {
        self.put(
            "DELETE FROM confide_pre_key WHERE owner = $1 AND id = $2",
            &[&i64::from(id)],
        )?;
        Ok(())
    }
}

impl SignedPreKeyStore for PostgresStore {
    fn signed_pre_key(&self, id: u32) -> Result<Option<SignedPreKeyRecord>, StoreError> {
        let sealed = self.get(
            "SELECT v FROM confide_signed_pre_key WHERE owner = $1 AND id = $2",
            &[&i64::from(id)],
        )?;
        self.rows.open_signed_pre_key(id, sealed)
    }

    fn save_signed_pre_key(&self, record: &SignedPreKeyRecord) -> Result<(), StoreError> {
        let sealed = self.rows.seal_signed_pre_key(record);
        self.put(
            "INSERT INTO confide_signed_pre_key (owner, id, v) VALUES ($1, $2, $3)
             ON CONFLICT (owner, id) DO UPDATE SET v = EXCLUDED.v",
            &[&i64::from(record.id()), &sealed],
        )?;
        Ok(())
    }
}

impl SessionStore for PostgresStore {
    fn session(&self, address: &Address) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.load_session(address)?.0)
    }

    fn save_session(&self, address: &Address, record: &SessionRecord) -> Result<(), StoreError> {
        let sealed = self.rows.seal_session(address, record);
        self.put(
            "INSERT INTO confide_session (owner, name, device, v) VALUES ($1, $2, $3, $4)
             ON CONFLICT (owner, name, device) DO UPDATE SET v = EXCLUDED.v",
            &[&address.name(), &i64::from(address.device_id()), &sealed],
        )?;
        Ok(())
    }

    fn transactional(&self) -> Option<&dyn TransactionalStore> {
        Some(self)
    }
}

/// The compare-and-swap that writes a commit's row: `insert` when the operation found
/// no row, else `update` (which takes the expected nonce as its last parameter after
/// `params`, and matches only while the row's sealed value still starts with it).
struct Swap<'a> {
    expected: RowVersion,
    insert: &'static str,
    update: &'static str,
    params: &'a [&'a (dyn ToSql + Sync)],
}

/// Starts a commit's transaction: inserts the decrypted message (1:1 and group
/// messages alike), if any, then runs the compare-and-swap. `None`, after a rollback,
/// if the message id was already stored or the row changed since the operation read it.
/// A concurrent insert of the same id, or a concurrent writer's `UPDATE` of the row,
/// makes this one wait and then see the committed row, so two commits from one
/// version never both succeed.
fn begin_commit<'c>(
    client: &'c mut ::postgres::Client,
    stmts: &mut pool::Stmts,
    owner: &str,
    sender: &Address,
    message: Option<&SealedMessage>,
    swap: &Swap<'_>,
) -> Result<Option<::postgres::Transaction<'c>>, ::postgres::Error> {
    let mut tx = client.transaction()?;
    if let Some(m) = message {
        let st = stmts.get(
            &mut tx,
            "INSERT INTO confide_message (owner, name, device, id, received_at, v)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )?;
        let device = i64::from(sender.device_id());
        let idx = &m.idx[..];
        let n = tx.execute(
            &st,
            &[
                &owner,
                &sender.name(),
                &device,
                &idx,
                &m.received_at,
                &m.sealed,
            ],
        )?;
        if n == 0 {
            tx.rollback()?;
            return Ok(None);
        }
    }
    let n = match swap.expected.token() {
        None => {
            let st = stmts.get(&mut tx, swap.insert)?;
            tx.execute(&st, swap.params)?
        }
        Some(token) => {
            let st = stmts.get(&mut tx, swap.update)?;
            let token = &token[..];
            let mut all = swap.params.to_vec();
            all.push(&token);
            tx.execute(&st, &all)?
        }
    };
    if n == 0 {
        tx.rollback()?;
        return Ok(None);
    }
    Ok(Some(tx))
}

impl PostgresStore {
    /// The transaction behind [`TransactionalStore::commit`]; `Ok(Conflict)` after a
    /// rollback.
    fn commit_in(
        &self,
        c: &mut Conn,
        commit: &Commit<'_>,
        sealed: &SealedCommit,
    ) -> Result<CommitOutcome, ::postgres::Error> {
        let name = commit.address.name();
        let device = i64::from(commit.address.device_id());
        let swap = Swap {
            expected: commit.expected,
            insert: "INSERT INTO confide_session (owner, name, device, v)
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            update: "UPDATE confide_session SET v = $4
                     WHERE owner = $1 AND name = $2 AND device = $3
                       AND substring(v from 1 for 12) = $5",
            params: &[&self.device, &name, &device, &sealed.session],
        };
        let Some(mut tx) = begin_commit(
            &mut c.client,
            &mut c.stmts,
            &self.device,
            commit.address,
            sealed.message.as_ref(),
            &swap,
        )?
        else {
            return Ok(CommitOutcome::Conflict);
        };
        if let Some(v) = &sealed.identity {
            let st = c.stmts.get(
                &mut tx,
                "INSERT INTO confide_identity (owner, name, device, v) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (owner, name, device) DO UPDATE SET v = EXCLUDED.v",
            )?;
            tx.execute(&st, &[&self.device, &name, &device, v])?;
        }
        if let Some(id) = commit.remove_pre_key {
            let st = c.stmts.get(
                &mut tx,
                "DELETE FROM confide_pre_key WHERE owner = $1 AND id = $2",
            )?;
            tx.execute(&st, &[&self.device, &i64::from(id)])?;
        }
        tx.commit()?;
        Ok(CommitOutcome::Committed)
    }

    /// The transaction behind [`TransactionalGroupStore::commit_group`]; `Ok(Conflict)`
    /// after a rollback.
    fn commit_group_in(
        &self,
        c: &mut Conn,
        commit: &GroupCommit<'_>,
        sealed: &SealedGroupCommit,
    ) -> Result<CommitOutcome, ::postgres::Error> {
        let name = commit.sender.name();
        let device = i64::from(commit.sender.device_id());
        let distribution = &commit.distribution_id.as_bytes()[..];
        let swap = Swap {
            expected: commit.expected,
            insert: "INSERT INTO confide_sender_key (owner, name, device, distribution, v)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            update: "UPDATE confide_sender_key SET v = $5
                     WHERE owner = $1 AND name = $2 AND device = $3 AND distribution = $4
                       AND substring(v from 1 for 12) = $6",
            params: &[&self.device, &name, &device, &distribution, &sealed.record],
        };
        let Some(tx) = begin_commit(
            &mut c.client,
            &mut c.stmts,
            &self.device,
            commit.sender,
            sealed.message.as_ref(),
            &swap,
        )?
        else {
            return Ok(CommitOutcome::Conflict);
        };
        tx.commit()?;
        Ok(CommitOutcome::Committed)
    }

    /// Runs one commit's transaction on a pooled connection. A serialization failure,
    /// a deadlock or a unique violation means the server rolled it back and nothing was
    /// written: reported as [`CommitOutcome::Conflict`], so the caller redoes the
    /// operation.
    fn transact(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<CommitOutcome, ::postgres::Error>,
    ) -> Result<CommitOutcome, StoreError> {
        let mut lease = self
            .pool
            .get()
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        let conn = lease
            .conn()
            .ok_or_else(|| StoreError::Backend(Box::new(PoolError::Poisoned)))?;
        match f(conn) {
            Ok(outcome) => Ok(outcome),
            Err(e) if is_conflict(&e) => Ok(CommitOutcome::Conflict),
            Err(e) => Err(backend(e)),
        }
    }

    /// The message row for (`address`, `id`), 1:1 or group alike.
    fn stored_message(
        &self,
        address: &Address,
        id: &MessageId,
    ) -> Result<Option<DeliveredMessage>, StoreError> {
        let idx = self.rows.message_index(address, id);
        let found: Option<(i64, Option<Vec<u8>>)> = self.with_conn(|c| {
            let st = c.stmts.get(
                &mut c.client,
                "SELECT received_at, v FROM confide_message
                 WHERE owner = $1 AND name = $2 AND device = $3 AND id = $4",
            )?;
            c.client
                .query_opt(
                    &st,
                    &[
                        &self.device,
                        &address.name(),
                        &i64::from(address.device_id()),
                        &&idx[..],
                    ],
                )?
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .transpose()
        })?;
        found
            .map(|(received_at, sealed)| self.rows.open_message(address, &idx, received_at, sealed))
            .transpose()
    }
}

impl TransactionalStore for PostgresStore {
    fn load_session(
        &self,
        address: &Address,
    ) -> Result<(Option<SessionRecord>, RowVersion), StoreError> {
        let sealed = self.get(
            "SELECT v FROM confide_session WHERE owner = $1 AND name = $2 AND device = $3",
            &[&address.name(), &i64::from(address.device_id())],
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
        // Seal outside the transaction: it holds only SQL.
        let sealed = self.rows.seal_commit(commit);
        self.transact(|c| self.commit_in(c, commit, &sealed))
    }
}

impl SenderKeyStore for PostgresStore {
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
            "INSERT INTO confide_sender_key (owner, name, device, distribution, v)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (owner, name, device, distribution) DO UPDATE SET v = EXCLUDED.v",
            &[
                &sender.name(),
                &i64::from(sender.device_id()),
                &&distribution_id.as_bytes()[..],
                &sealed,
            ],
        )?;
        Ok(())
    }

    fn transactional_group(&self) -> Option<&dyn TransactionalGroupStore> {
        Some(self)
    }
}

impl TransactionalGroupStore for PostgresStore {
    fn load_sender_key(
        &self,
        sender: &Address,
        distribution_id: DistributionId,
    ) -> Result<(Option<SenderKeyRecord>, RowVersion), StoreError> {
        let sealed = self.get(
            "SELECT v FROM confide_sender_key
             WHERE owner = $1 AND name = $2 AND device = $3 AND distribution = $4",
            &[
                &sender.name(),
                &i64::from(sender.device_id()),
                &&distribution_id.as_bytes()[..],
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
        // Seal outside the transaction: it holds only SQL.
        let sealed = self.rows.seal_group_commit(commit);
        self.transact(|c| self.commit_group_in(c, commit, &sealed))
    }
}

impl StateStore for PostgresStore {
    fn state(&self, kind: &str, key: &str) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let sealed = self.get(
            "SELECT v FROM confide_state WHERE owner = $1 AND kind = $2 AND k = $3",
            &[&kind, &key],
        )?;
        self.rows.open_state(kind, key, sealed)
    }

    fn save_state(&self, kind: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let sealed = self.rows.seal_state(kind, key, value);
        self.put(
            "INSERT INTO confide_state (owner, kind, k, v) VALUES ($1, $2, $3, $4)
             ON CONFLICT (owner, kind, k) DO UPDATE SET v = EXCLUDED.v",
            &[&kind, &key, &sealed],
        )?;
        Ok(())
    }

    fn remove_state(&self, kind: &str, key: &str) -> Result<(), StoreError> {
        self.put(
            "DELETE FROM confide_state WHERE owner = $1 AND kind = $2 AND k = $3",
            &[&kind, &key],
        )?;
        Ok(())
    }

    fn load_state(&self, kind: &str, key: &str) -> Result<VersionedState, StoreError> {
        let sealed = self.get(
            "SELECT v FROM confide_state WHERE owner = $1 AND kind = $2 AND k = $3",
            &[&kind, &key],
        )?;
        self.rows.open_state_versioned(kind, key, sealed)
    }

    fn commit_state(&self, writes: &[StateWrite<'_>]) -> Result<CommitOutcome, StoreError> {
        // Seal outside the transaction: it holds only SQL.
        let sealed = self.rows.seal_states(writes);
        self.transact(|c| self.commit_state_in(c, writes, &sealed))
    }
}

impl PostgresStore {
    /// The transaction behind [`StateStore::commit_state`]: a compare-and-swap per
    /// entry (an insert that does nothing if a row appeared, or an update that matches
    /// only while the row's sealed value starts with the expected nonce); `Ok(Conflict)`
    /// after a rollback.
    fn commit_state_in(
        &self,
        c: &mut Conn,
        writes: &[StateWrite<'_>],
        sealed: &[Vec<u8>],
    ) -> Result<CommitOutcome, ::postgres::Error> {
        let mut tx = c.client.transaction()?;
        for (w, v) in writes.iter().zip(sealed) {
            let n = match w.expected.token() {
                None => {
                    let st = c.stmts.get(
                        &mut tx,
                        "INSERT INTO confide_state (owner, kind, k, v) VALUES ($1, $2, $3, $4)
                         ON CONFLICT DO NOTHING",
                    )?;
                    tx.execute(&st, &[&self.device, &w.kind, &w.key, v])?
                }
                Some(token) => {
                    let st = c.stmts.get(
                        &mut tx,
                        "UPDATE confide_state SET v = $4
                         WHERE owner = $1 AND kind = $2 AND k = $3
                           AND substring(v from 1 for 12) = $5",
                    )?;
                    let token = &token[..];
                    tx.execute(&st, &[&self.device, &w.kind, &w.key, v, &token])?
                }
            };
            if n == 0 {
                tx.rollback()?;
                return Ok(CommitOutcome::Conflict);
            }
        }
        tx.commit()?;
        Ok(CommitOutcome::Committed)
    }
}
