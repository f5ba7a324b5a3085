//! One error enum per operation. `Display` texts never contain keys, plaintext or
//! addresses, so they are safe to log; the structured fields are for code.

use crate::keys::IdentityKey;
use crate::session::ProtocolVersion;

/// Defined in [`keys`](crate::keys), beside the types whose encodings they check; kept
/// here so `confide::error::KeyError` and `confide::error::RecordError` stay valid.
pub use crate::keys::{KeyError, RecordError};

/// Wire bytes that are not a valid v3 or v4 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Fewer bytes than the smallest valid message.
    #[error("message too short ({len} bytes)")]
    TooShort {
        /// Length given.
        len: usize,
    },
    /// The version byte is not `0x33` or `0x44`.
    #[error("unsupported message version byte {found:#04x}")]
    UnsupportedVersion {
        /// The version byte found.
        found: u8,
    },
    /// The protobuf body does not decode.
    #[error("malformed message body")]
    Malformed,
    /// A required field is absent.
    #[error("message lacks field {field}")]
    MissingField {
        /// The field's name in `wire.proto`.
        field: &'static str,
    },
    /// A key field does not hold a valid public key.
    #[error("message field {field} is not a valid key: {source}")]
    InvalidKey {
        /// The field's name in `wire.proto`.
        field: &'static str,
        /// Why the key was refused.
        source: KeyError,
    },
    /// A field the message's version does not have (a v3 message with a v4 field).
    #[error("message has field {field}, which its version lacks")]
    UnexpectedField {
        /// The field's name in `wire.proto`.
        field: &'static str,
    },
    /// A fixed-size field has another length.
    #[error("message field {field} has the wrong length ({found} bytes)")]
    InvalidLength {
        /// The field's name in `wire.proto`.
        field: &'static str,
        /// Its length.
        found: usize,
    },
    /// The message type number is not one this operation takes.
    #[error("unexpected message type {found}")]
    UnexpectedType {
        /// The type number given.
        found: u8,
    },
}

/// A row failed authentication: edited, moved to another row or table (or, in
/// `PostgresStore`, to another device), sealed under another key, or corrupt. Reported
/// as [`StoreError::Tampered`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("row in table {table} failed authentication")]
#[non_exhaustive]
pub struct TamperedRow {
    /// The table.
    pub table: &'static str,
}

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A stored value could not be loaded.
    #[error("stored record is corrupt: {0}")]
    Corrupt(#[from] RecordError),
    /// A sealed row failed authentication: edited, moved to another row, table or
    /// device, sealed under another key, or corrupt.
    #[error("{0}")]
    Tampered(#[from] TamperedRow),
    /// The store has no local identity yet.
    #[error("the store has no local identity")]
    NoLocalIdentity,
    /// A transactional store kept conflicting: concurrent operations on the same row won
    /// every one of the attempts made.
    #[error("commit kept conflicting with concurrent operations ({attempts} attempts)")]
    Contention {
        /// Attempts made.
        attempts: usize,
    },
    /// A lock inside the store or device was poisoned by a thread that panicked while
    /// holding it.
    #[error("{what} lock poisoned")]
    Poisoned {
        /// Which lock.
        what: &'static str,
    },
    /// The backend itself failed (I/O, the database, the connection).
    #[error("store backend failed")]
    Backend(#[source] BackendError),
    /// The database is older than one this store already saw: its integrity head's
    /// sequence number went back (a restored copy, a replica that fell behind, an
    /// edited file), so an older session could reuse message keys.
    #[error("store rolled back: its head is at {found}, {seen} was seen before")]
    RolledBack {
        /// The head's sequence number now.
        found: u64,
        /// The highest one seen before (by this store, or by its rollback counter).
        seen: u64,
    },
}

impl StoreError {
    /// A [`StoreError::Backend`] from any error (or message) of a store's backend.
    pub fn backend(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Backend(BackendError::new(error))
    }
}

/// What a store's backend (a database, a file system, a connection) reported, kept
/// opaque so the backend's own error types are not part of this crate's API. Its
/// `Display` is the backend's description and [`std::error::Error::source`] reaches
/// the backend's error chain.
pub struct BackendError(Box<dyn std::error::Error + Send + Sync>);

impl BackendError {
    /// Wraps a backend's error, or a description of what failed.
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(error.into())
    }
}

impl From<&str> for BackendError {
    fn from(description: &str) -> Self {
        Self::new(description)
    }
}

impl From<String> for BackendError {
    fn from(description: String) -> Self {
        Self::new(description)
    }
}

impl std::fmt::Debug for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("BackendError").field(&self.0).finish()
    }
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Processing a prekey bundle failed; nothing was stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The signed prekey's signature, or the Kyber prekey's, does not verify under the
    /// bundle's identity key.
    #[error("prekey signature is invalid")]
    InvalidSignature,
    /// v4 is the only version allowed, and the bundle has no Kyber prekey.
    #[error("bundle has no Kyber prekey, which protocol v4 needs")]
    MissingKyberPreKey,
    /// The bundle can start only a session of a version the policy does not allow.
    #[error("protocol version {version} is not allowed")]
    VersionNotAllowed {
        /// The version the bundle would start.
        version: ProtocolVersion,
    },
    /// The bundle's identity differs from the one already known for this address.
    /// Accept the new key explicitly (after telling the user) to proceed.
    #[error("identity key differs from the known one")]
    UntrustedIdentity {
        /// The key on record.
        known: IdentityKey,
        /// The key in the bundle.
        received: IdentityKey,
    },
    /// A bundle key is of low order, so agreement with it would not be secret.
    #[error("bundle contains a weak key")]
    WeakKey,
    /// The store failed.
    #[error("store failed: {0}")]
    Store(#[from] StoreError),
}

/// Making and storing a bundle's keys failed; nothing was stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The store already holds a signed prekey under this id: replacing it would break
    /// every session started from the bundle that published it.
    #[error("signed prekey id {id} is already in use")]
    SignedPreKeyIdInUse {
        /// The id asked for.
        id: u32,
    },
    /// The store already holds a one-time prekey under this id.
    #[error("one-time prekey id {id} is already in use")]
    PreKeyIdInUse {
        /// The id asked for.
        id: u32,
    },
    /// The store already holds a Kyber prekey under this id.
    #[error("Kyber prekey id {id} is already in use")]
    KyberPreKeyIdInUse {
        /// The id asked for.
        id: u32,
    },
    /// A Kyber prekey was asked for, and the store keeps none
    /// ([`crate::store::PreKeyStore::kyber_pre_keys`] is `None`): it offers v3 only.
    #[error("the store keeps no Kyber prekeys")]
    NoKyberStore,
    /// The store failed.
    #[error("store failed: {0}")]
    Store(#[from] StoreError),
}

/// Encrypting failed; nothing was changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptError {
    /// There is no session with this address.
    #[error("no session with this address")]
    NoSession,
    /// The session's remote identity is no longer the trusted one for this address.
    #[error("identity key differs from the known one")]
    UntrustedIdentity {
        /// The key on record.
        known: IdentityKey,
        /// The key the session was made with.
        received: IdentityKey,
    },
    /// The sending chain has used all 2^32 counters; start a new session.
    #[error("sending chain exhausted")]
    ChainExhausted,
    /// The post-quantum ratchet (SPQR) of a v4 session could not send.
    #[error("post-quantum ratchet failed")]
    PostQuantumRatchet,
    /// A v4 session we started is still unacknowledged after
    /// [`crate::session::limits::MAX_UNACKNOWLEDGED_SESSION_AGE`]: fetch a new bundle and
    /// start a new session.
    #[error("unacknowledged session too old to send")]
    StaleUnacknowledgedSession,
    /// The store failed.
    #[error("store failed: {0}")]
    Store(#[from] StoreError),
}

/// Decrypting failed. Every variant leaves all stored state exactly as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// The bytes are not a valid message.
    #[error("invalid message: {0}")]
    Wire(#[from] WireError),
    /// There is no session with this address, and the message cannot start one.
    #[error("no session with this address")]
    NoSession,
    /// The message was already decrypted (a replay or a redelivery).
    #[error("duplicate message (counter {counter})")]
    DuplicateMessage {
        /// The message counter.
        counter: u32,
    },
    /// The message is older than the skipped keys kept for its chain (see
    /// [`crate::session::limits`]); it may also be a duplicate, which cannot be told apart.
    #[error("message key no longer kept (counter {counter})")]
    MessageKeyEvicted {
        /// The message counter.
        counter: u32,
    },
    /// The message is further ahead than [`crate::session::limits::MAX_FORWARD_JUMP`].
    #[error("message is too far ahead (counter {counter}, expected about {expected})")]
    TooFarAhead {
        /// The message counter.
        counter: u32,
        /// The next counter the chain expected.
        expected: u32,
    },
    /// Authentication or decryption failed in every session state tried. Deliberately
    /// one variant: which check failed, and in which state, is not revealed.
    #[error("message failed authentication")]
    InvalidMessage,
    /// The sender's identity differs from the one known for this address.
    #[error("identity key differs from the known one")]
    UntrustedIdentity {
        /// The key on record.
        known: IdentityKey,
        /// The key in the message or session.
        received: IdentityKey,
    },
    /// A prekey message names a one-time prekey this device does not have (used or
    /// never issued).
    #[error("unknown one-time prekey {id}")]
    UnknownPreKey {
        /// The prekey id named.
        id: u32,
    },
    /// A prekey message names a signed prekey this device does not have.
    #[error("unknown signed prekey {id}")]
    UnknownSignedPreKey {
        /// The signed prekey id named.
        id: u32,
    },
    /// A key in the message is of low order (or, in v4, a base key outside the prime
    /// subgroup).
    #[error("message contains a weak key")]
    WeakKey,
    /// A v4 prekey message names a Kyber prekey this device does not have (used, never
    /// issued, or a store without Kyber prekeys).
    #[error("unknown Kyber prekey {id}")]
    UnknownKyberPreKey {
        /// The Kyber prekey id named.
        id: u32,
    },
    /// A v4 prekey message repeats a handshake (Kyber prekey, signed prekey, base key)
    /// already seen with this last-resort Kyber prekey: a replay.
    #[error("Kyber prekey {id} was already used by this handshake")]
    KyberPreKeyReused {
        /// The Kyber prekey id named.
        id: u32,
    },
    /// The post-quantum ratchet (SPQR) refused the message's `pq_ratchet` bytes (absent,
    /// malformed, of another epoch or version).
    #[error("post-quantum ratchet refused the message")]
    PostQuantumRatchet,
    /// A prekey message of a protocol version this device does not accept.
    #[error("protocol version {version} is not allowed")]
    VersionNotAllowed {
        /// The message's version.
        version: ProtocolVersion,
    },
    /// The store failed.
    #[error("store failed: {0}")]
    Store(#[from] StoreError),
}

impl DecryptError {
    /// The variant's name, stable across versions (used as the peer protocol's `code`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Wire(WireError::UnsupportedVersion { .. }) => "InvalidVersion",
            Self::Wire(_) => "InvalidMessage",
            Self::NoSession => "NoSession",
            Self::DuplicateMessage { .. } => "DuplicateMessage",
            Self::MessageKeyEvicted { .. } => "MessageKeyEvicted",
            Self::TooFarAhead { .. } => "TooFarAhead",
            Self::InvalidMessage => "InvalidMessage",
            Self::UntrustedIdentity { .. } => "UntrustedIdentity",
            Self::UnknownPreKey { .. } => "InvalidPreKeyId",
            Self::UnknownSignedPreKey { .. } => "InvalidSignedPreKeyId",
            Self::WeakKey => "WeakKey",
            Self::UnknownKyberPreKey { .. } => "InvalidKyberPreKeyId",
            Self::KyberPreKeyReused { .. } => "KyberPreKeyReused",
            Self::PostQuantumRatchet => "InvalidMessage",
            Self::VersionNotAllowed { .. } => "InvalidVersion",
            Self::Store(_) => "Store",
        }
    }
}
