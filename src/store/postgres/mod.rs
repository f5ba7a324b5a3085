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
//! Values are sealed exactly as in the SQLite store: AES-256-GCM-SIV under a key derived
//! (HKDF-SHA-256, in a PostgreSQL-only domain) from the app's [`StoreKey`] for the one
//! device (devices sharing a database and a key never share a sealing key), with the
//! table, the owning device and the row key as associated data. A value moved to another row,
//! table or device fails to open ([`StoreError::Tampered`](crate::StoreError::Tampered)).
//! Someone who can read the database (or a replica, or a backup) but not the key still sees
//! the device names, the row keys (remote addresses, prekey and Kyber prekey ids,
//! sender-key distribution ids, privacy-state kinds and keys), how many uses of each
//! last-resort Kyber prekey are recorded (the signed prekey and base key of each are
//! sealed, its row id an HMAC; one-time or last-resort is sealed too), per message the sender's address, receive time,
//! expiry and acknowledged flag (the message's row id is an HMAC under a derived key; 1:1
//! and group messages share the table and a row does not say which it is, though a group
//! message's row appears in the same transaction as its sender-key rewrite), every value's
//! size (plaintext + 28 bytes), row counts, and which rows change when (a sender-key row is
//! rewritten at every group encrypt and group decrypt, so the arrival times of each
//! member's group messages show). A server operator can also see every statement's timing.
//! A row of a device rolled back, deleted, re-inserted or edited is
//! [`StoreError::Tampered`](crate::StoreError::Tampered) at its next read, write or
//! `verify`, as in SQLite: each device has its own sealed integrity head recording every
//! row's version (writers of one device take turns on it with `SELECT ... FOR UPDATE`).
//! A whole device (or database) rolled back to an older consistent copy is seen only by a
//! store that saw the newer state, or with a rollback counter kept outside the database
//! ([`super::DurableStore::attach_rollback_counter`]): never restore this database from a
//! backup into service without one (make new sessions instead).
//!
//! # Atomicity
//! [`PostgresStore`] implements [`TransactionalStore`](super::TransactionalStore): each
//! session operation commits in one transaction: the decrypted message is inserted (a
//! duplicate id conflicts), the session row is replaced only if its sealed value still
//! starts with the nonce the operation loaded (a compare-and-swap in the `UPDATE`'s
//! `WHERE`), and the trusted identity and the consumed prekey change with it. A lost
//! compare-and-swap, a serialization failure (under `SERIALIZABLE`), a deadlock or a unique
//! violation all roll back and return
//! [`CommitOutcome::Conflict`](super::CommitOutcome::Conflict), and the caller redoes the
//! operation.
//!
//! It also implements [`TransactionalGroupStore`](super::TransactionalGroupStore) the same
//! way for [`crate::device::Device`]'s group operations: each commits in one transaction
//! with a compare-and-swap on the sender-key row (an `INSERT ... ON CONFLICT DO NOTHING`
//! when the operation found no row), and a group decrypt inserts its message (under
//! [`MessageId::of_group`](super::MessageId::of_group), sealed and bound to its row like a
//! 1:1 message) in the same transaction, so a redelivered group message yields the stored
//! plaintext, and [`TransactionalStore::acknowledge`](super::TransactionalStore::acknowledge),
//! [`DurableStore::set_message_expiry`](super::DurableStore::set_message_expiry) and
//! [`DurableStore::purge_messages`](super::DurableStore::purge_messages) cover group
//! messages too. Two hosts serving one device order their group operations through the same
//! compare-and-swap, so no chain step is used twice and no decrypted message is lost or
//! decrypted twice.
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
//! refuses a database from a newer version ([`OpenError::NewerSchema`]).

mod db;
mod pool;

/// The rust-postgres client this store is built on, for the host's connection
/// configuration (`client::Config`) and TLS setup, at the version the store uses.
pub use ::postgres as client;
pub use pool::{PoolError, PostgresPool};

pub use super::{StoreSummary, TamperedRow};

use rand_core::{CryptoRng, RngCore};

use super::durable::{Core, open_device};
use super::forward::{forward_durable, forward_kyber, forward_protocol};
use super::rows::{Rows, text_row};
use super::seal::{self, LegacySealer, Sealer};
use super::{OpenError, StoreKey};

/// The schema version this release writes.
pub const SCHEMA_VERSION: u32 = 3;

/// The longest device name [`PostgresStore::open`] accepts, in bytes.
pub const MAX_DEVICE_NAME: usize = 256;

/// A persistent [`super::ProtocolStore`] (and [`super::SenderKeyStore`],
/// [`super::StateStore`], [`super::DurableStore`]) for one device, in a PostgreSQL
/// database shared with other devices, sealed under a [`StoreKey`]. See the
/// [module docs](crate::store::postgres).
///
/// `Send + Sync`: operations take a connection from the [`PostgresPool`] for their
/// duration, so threads (and hosts) work on one device at once; the compare-and-swap
/// in each commit orders them.
pub struct PostgresStore {
    device: String,
    core: Core<db::Db>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Opens the store of `device` (a name the host gives it, unique in the database):
    /// runs pending migrations, checks the key against the device's rows (setting it up
    /// on first open, resealing a first-format device row by row), starts a new
    /// generation of nonces in its integrity head, and loads its identity if one was
    /// set. `rng` is not used since the second storage format (nonces are unique by
    /// construction); it stays so open code keeps compiling.
    pub fn open<R: RngCore + CryptoRng>(
        pool: &PostgresPool,
        device: &str,
        key: &StoreKey,
        rng: &mut R,
    ) -> Result<Self, OpenError> {
        if device.is_empty() || device.len() > MAX_DEVICE_NAME || device.contains('\0') {
            return Err(OpenError::InvalidDevice);
        }
        // Nonces come from the device's generation and a counter, not from the RNG; it
        // stays a parameter so an app's open code does not change with the format.
        let _ = rng;
        // Every row key starts with the device name, so a row never opens as another
        // device's; the device's sealing key is its own too.
        let owner = text_row(&[device]);
        let sealer = Sealer::new(key, &seal::POSTGRES, &owner).ok_or(OpenError::KeyDerivation)?;
        let legacy =
            LegacySealer::new(key, seal::POSTGRES.legacy).ok_or(OpenError::KeyDerivation)?;
        let rows = Rows::new(sealer, owner);
        let db = db::Db::open(pool, device)?;
        let seq = open_device(&db, &rows, &legacy, &db::KEY_CHECK)?;
        let core = Core::new(db, rows, seq, "postgres store").map_err(OpenError::loading)?;
        Ok(Self {
            device: device.to_owned(),
            core,
        })
    }

    /// The device name this store was opened for.
    pub fn device(&self) -> &str {
        &self.device
    }
}

forward_protocol!(PostgresStore, s => s.core);
forward_durable!(PostgresStore, s => s.core);
forward_kyber!(PostgresStore, s => s.core);
