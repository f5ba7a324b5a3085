//! [`SqliteStore`]: a persistent, sealed, transactional store on an embedded SQLite
//! database (WAL mode).
//!
//! # What is sealed and what stays visible
//! Every value (identity keys, prekeys, signed prekeys, session records, trusted
//! identities, sender-key records, decrypted messages and their metadata, privacy-model
//! state, our registration id) is sealed with AES-256-GCM-SIV under a key derived
//! (HKDF-SHA-256) from the app's 32-byte [`StoreKey`]. The associated data is the table
//! name and the row key, so a row moved to another row or table fails to open
//! ([`StoreError::Tampered`](crate::StoreError::Tampered)); the integrity head (table
//! `integrity`, see below) records every row's version. Someone holding the file but not
//! the key still sees:
//!
//! - **row keys**: the remote addresses (name and device id) we have sessions with and
//!   trust identities for, the ids of our prekeys, signed prekeys and Kyber prekeys, the
//!   `kind`/`key` of privacy-model state (for example a business id the app names a
//!   disclosure tracker after);
//! - **Kyber prekey uses** (table `kyber_pre_key_use`): how many sessions began from
//!   each last-resort Kyber prekey, and when (a row appears in the session's commit).
//!   Which signed prekey and base key each used is sealed, and the row id is an HMAC
//!   under a derived key; whether a Kyber prekey is one-time or last-resort is sealed
//!   with its record (a one-time key's row disappears at its use);
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
//!   keys and kept states) show, and the integrity buckets' sizes show roughly how many
//!   rows the file holds;
//! - **timing and counts**: how many rows each table has, the file's and WAL's
//!   modification times, and, to someone who watches the file over time, which rows
//!   change when (a session row is rewritten at every encrypt and decrypt);
//! - the schema version (`PRAGMA user_version`), and from every nonce how many times the
//!   file was opened and how many values were sealed since.
//!
//! # Rollback and deletion
//! A row put back to an older copy, deleted, re-inserted after its deletion or edited
//! (its plain message columns included) is [`StoreError::Tampered`](crate::StoreError::Tampered)
//! at its next read, write or [`super::DurableStore::verify`]: every row's nonce is its
//! version, and the sealed integrity head records each row's current one. The whole file
//! put back to an older copy cannot be seen from inside it: a store that is open refuses
//! a head older than one it saw ([`StoreError::RolledBack`](crate::StoreError::RolledBack)),
//! and across restarts only a counter kept outside the file can tell
//! ([`super::DurableStore::attach_rollback_counter`]). A rolled-back session would reuse
//! message keys, so without such a counter never restore a store from a backup (make new
//! sessions instead).
//!
//! # Atomicity
//! [`SqliteStore`] implements [`TransactionalStore`](super::TransactionalStore): the
//! session operations commit each operation in one `BEGIN IMMEDIATE` transaction with a
//! compare-and-swap on the session row (its nonce is its version). It also implements
//! [`TransactionalGroupStore`](super::TransactionalGroupStore): [`crate::device::Device`]
//! commits each group operation the same way, with a compare-and-swap on the sender-key
//! row, and a group decrypt stores its message (under
//! [`MessageId::of_group`](super::MessageId::of_group)) in the same transaction, so a
//! redelivered group message yields the stored plaintext marked as a redelivery. With
//! [`Synchronous::Full`] a commit is on disk when `commit` returns; with
//! [`Synchronous::Normal`] WAL may lose the last commits on power loss (never on a process
//! crash) but never corrupts.
//!
//! # Schema
//! Versioned by `PRAGMA user_version` ([`SCHEMA_VERSION`]); [`SqliteStore::open`] runs
//! the migrations from the file's version up, each in its own transaction, and refuses
//! a file from a newer version ([`OpenError::NewerSchema`]). `tests/fixtures/sqlite/`
//! keeps a database written by each released schema, which must keep opening.

mod db;

pub use super::StoreKey;
pub use super::{StoreSummary, TamperedRow};

use std::path::Path;
use std::time::Duration;

use rand_core::{CryptoRng, RngCore};

use super::OpenError;
use super::durable::{Core, open_device};
use super::forward::{forward_durable, forward_kyber, forward_protocol};
use super::rows::Rows;
use super::seal::{self, LegacySealer, Sealer};

/// The schema version this release writes.
pub const SCHEMA_VERSION: u32 = 4;

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

/// A persistent [`super::ProtocolStore`] on SQLite, sealed under a [`StoreKey`]. See the
/// [module docs](crate::store::sqlite) for what stays visible and how commits are made
/// atomic; [`super::DurableStore`] has its identity bootstrap, message lifecycle and
/// `verify`.
///
/// `Send + Sync`: one connection behind a mutex serves all threads; several processes
/// may open the same file (SQLite's locking orders their transactions).
pub struct SqliteStore {
    core: Core<db::Db>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path` with default options
    /// ([`Synchronous::Full`]). `rng` is not used since the second storage format
    /// (nonces are unique by construction); it stays so open code keeps compiling.
    pub fn open<P: AsRef<Path>, R: RngCore + CryptoRng>(
        path: P,
        key: &StoreKey,
        rng: &mut R,
    ) -> Result<Self, OpenError> {
        Self::open_with(path, key, SqliteOptions::default(), rng)
    }

    /// Opens (creating if needed) the store at `path`: runs pending migrations, checks
    /// the key, starts a new generation of nonces in the integrity head (resealing a
    /// first-format file row by row), and loads our identity if one was set.
    pub fn open_with<P: AsRef<Path>, R: RngCore + CryptoRng>(
        path: P,
        key: &StoreKey,
        options: SqliteOptions,
        rng: &mut R,
    ) -> Result<Self, OpenError> {
        // Nonces come from the device's generation and a counter, not from the RNG; it
        // stays a parameter so an app's open code does not change with the format.
        let _ = rng;
        let sealer = Sealer::new(key, &seal::SQLITE, &[]).ok_or(OpenError::KeyDerivation)?;
        let legacy = LegacySealer::new(key, seal::SQLITE.legacy).ok_or(OpenError::KeyDerivation)?;
        // SQLite row keys have no owner prefix: the file holds one device.
        let rows = Rows::new(sealer, Vec::new());
        let db = db::Db::open(path.as_ref(), options)?;
        let seq = open_device(&db, &rows, &legacy, &db::KEY_CHECK)?;
        let core = Core::new(db, rows, seq, "sqlite store").map_err(OpenError::loading)?;
        Ok(Self { core })
    }
}

forward_protocol!(SqliteStore, s => s.core);
forward_durable!(SqliteStore, s => s.core);
forward_kyber!(SqliteStore, s => s.core);
