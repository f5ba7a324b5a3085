//! A small synchronous store for apps that want confide to keep their state.
//!
//! Five narrow traits, one per kind of state, combined as [`ProtocolStore`]. All take
//! `&self` and are `Send + Sync`, so one store can be shared across threads; an
//! implementation guards its own state (see [`InMemoryStore`]). The functions in
//! [`crate::session::cipher`] load, change a copy, and save only on success.
//!
//! - A store that can commit atomically says so through accessors with defaults
//!   ([`SessionStore::transactional`], [`SenderKeyStore::transactional_group`],
//!   [`IdentityStore::state_store`], and for protocol v4 [`PreKeyStore::kyber_pre_keys`]),
//!   so new capabilities never break a store written outside this crate.
//! - Every trait is implemented for `&T`, `Box<T>` and `Arc<T>`, forwarding every
//!   method (the accessors too).
//! - The persistent stores, `SqliteStore` and `PostgresStore`, share one contract for
//!   what they add (identity bootstrap, the stored messages' lifecycle, `verify`):
//!   `DurableStore`. They fail to open with one [`OpenError`], and a row that fails
//!   authentication is [`StoreError::Tampered`].

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod durable;
mod forward;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod integrity;
mod kyber;
mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod rows;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod schema;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod seal;
#[cfg(feature = "sqlite")]
pub mod sqlite;

#[cfg(feature = "postgres")]
pub use self::postgres::{PostgresPool, PostgresStore};
pub use crate::error::{BackendError, TamperedRow};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use durable::{DurableStore, OpenError};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use integrity::RollbackCounter;
pub use kyber::{KyberPreKeyStore, KyberPreKeyUse};
pub use memory::InMemoryStore;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use rows::StoreSummary;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use seal::StoreKey;
#[cfg(feature = "sqlite")]
pub use sqlite::{SCHEMA_VERSION, SqliteOptions, SqliteStore, Synchronous};

use zeroize::Zeroizing;

use crate::error::StoreError;
use crate::group::{DistributionId, SENDER_KEY_MESSAGE_TYPE, SenderKeyMessage, SenderKeyRecord};
use crate::keys::{IdentityKey, IdentityKeyPair, PreKeyRecord, SignedPreKeyRecord};
use crate::session::SessionRecord;
use crate::{Address, Timestamp};

/// Our identity and what we know of others'.
pub trait IdentityStore: Send + Sync {
    /// Our identity key pair.
    fn local_identity(&self) -> Result<IdentityKeyPair, StoreError>;
    /// Our registration id.
    fn local_registration_id(&self) -> Result<u32, StoreError>;
    /// The identity key we trust for `address`, if any.
    fn identity(&self, address: &Address) -> Result<Option<IdentityKey>, StoreError>;
    /// Records `key` as the trusted identity for `address`, replacing any other.
    fn save_identity(&self, address: &Address, key: &IdentityKey) -> Result<(), StoreError>;

    /// Where this store keeps the privacy-model state (consent ledger, attestation
    /// verifier, disclosure trackers, activity), if it keeps it. The default, `None`,
    /// means that state lives only as long as the values an app holds.
    fn state_store(&self) -> Option<&dyn StateStore> {
        None
    }
}

/// One-time prekeys.
pub trait PreKeyStore: Send + Sync {
    /// The prekey with this id.
    fn pre_key(&self, id: u32) -> Result<Option<PreKeyRecord>, StoreError>;
    /// Stores a prekey.
    fn save_pre_key(&self, record: &PreKeyRecord) -> Result<(), StoreError>;
    /// Deletes a prekey once a session used it.
    fn remove_pre_key(&self, id: u32) -> Result<(), StoreError>;

    /// Where this store keeps Kyber (post-quantum) prekeys, if it keeps them: the
    /// extension point protocol v4 uses, so adding it broke no store written before.
    /// The default, `None`, means this store offers only v3 ([`InMemoryStore`] and the
    /// persistent stores keep them; a persistent store also marks a use in the
    /// session's commit, see [`Commit::kyber_pre_key_use`]).
    fn kyber_pre_keys(&self) -> Option<&dyn KyberPreKeyStore> {
        None
    }
}

/// Signed prekeys.
pub trait SignedPreKeyStore: Send + Sync {
    /// The signed prekey with this id.
    fn signed_pre_key(&self, id: u32) -> Result<Option<SignedPreKeyRecord>, StoreError>;
    /// Stores a signed prekey.
    fn save_signed_pre_key(&self, record: &SignedPreKeyRecord) -> Result<(), StoreError>;
}

/// Session records, one per remote device.
pub trait SessionStore: Send + Sync {
    /// The record for `address`, if any.
    fn session(&self, address: &Address) -> Result<Option<SessionRecord>, StoreError>;
    /// Replaces the record for `address`.
    fn save_session(&self, address: &Address, record: &SessionRecord) -> Result<(), StoreError>;

    /// This store's atomic interface, if it has one. [`crate::session::cipher`] then commits each
    /// operation's changes (session, consumed prekey, trusted identity, the decrypted
    /// message) in one transaction, with a compare-and-swap on the session so concurrent
    /// operations on one address never both use the same state. The default, `None`,
    /// keeps the plain load/change/save sequence.
    fn transactional(&self) -> Option<&dyn TransactionalStore> {
        None
    }
}

/// Sender-key records, one per (sender, distribution): the device's own sending chains
/// and the chains learned from other group members. A group operation loads a record,
/// changes a copy, and saves it only on success, so a failed decrypt changes nothing
/// and a sending chain is saved before its ciphertext is returned.
pub trait SenderKeyStore: Send + Sync {
    /// The record of `sender` for `distribution_id`, if any.
    fn sender_key(
        &self,
        sender: &Address,
        distribution_id: DistributionId,
    ) -> Result<Option<SenderKeyRecord>, StoreError>;
    /// Replaces the record of `sender` for `distribution_id`.
    fn save_sender_key(
        &self,
        sender: &Address,
        distribution_id: DistributionId,
        record: &SenderKeyRecord,
    ) -> Result<(), StoreError>;

    /// This store's atomic interface for sender keys, if it has one.
    /// [`crate::group::cipher`] (and so [`crate::device::Device`]) then commits each
    /// group operation in one transaction
    /// with a compare-and-swap on the record, so concurrent operations on one (sender,
    /// distribution) never both use the same chain step, and a group decrypt keeps the
    /// decrypted message in the same transaction: a redelivery after a crash yields the
    /// stored plaintext instead of a duplicate error. The default, `None`, keeps the
    /// plain load/change/save sequence, which the caller serializes per (sender,
    /// distribution); `Device` does.
    fn transactional_group(&self) -> Option<&dyn TransactionalGroupStore> {
        None
    }
}

/// Everything [`crate::session::cipher`], [`crate::group::cipher`] and [`crate::device::Device`]
/// need: the 1:1 state and the sender keys of groups.
///
/// A blanket impl over the five traits, so it never gains a required supertrait:
/// what later protocol versions need (Kyber prekeys) arrives as an accessor with a
/// default ([`PreKeyStore::kyber_pre_keys`]). Every store trait is also implemented
/// for `&T`, `Box<T>` and `Arc<T>`, so `Box<dyn ProtocolStore>` and
/// `Arc<SqliteStore>` are stores too.
pub trait ProtocolStore:
    IdentityStore + PreKeyStore + SignedPreKeyStore + SessionStore + SenderKeyStore
{
}

impl<T: IdentityStore + PreKeyStore + SignedPreKeyStore + SessionStore + SenderKeyStore>
    ProtocolStore for T
{
}

/// Identifies one received ciphertext: SHA-256 over its type byte and serialized bytes.
/// Only a byte-identical redelivery has the same id, so a forged message that reuses a
/// counter never matches a stored plaintext.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageId([u8; 32]);

impl MessageId {
    /// The id of `message`.
    pub fn of(message: &crate::CiphertextMessage) -> Self {
        let mut ctx = crate::crypto::Sha256::new();
        ctx.update(&[message.message_type()]);
        ctx.update(message.serialized());
        Self(ctx.finish())
    }

    /// From the 32 bytes [`MessageId::as_bytes`] returned.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The id of a group message from the distribution `distribution_id`: SHA-256 over
    /// the group message type (7), the distribution id and the serialized bytes. The
    /// type byte keeps it apart from every 1:1 id (types 2 and 3), so a group message
    /// and a 1:1 message from the same sender never share a stored record; the
    /// distribution id binds it to the group it was decrypted in (legacy-layout bytes
    /// name none).
    pub fn of_group(distribution_id: DistributionId, message: &SenderKeyMessage) -> Self {
        let mut ctx = crate::crypto::Sha256::new();
        ctx.update(&[SENDER_KEY_MESSAGE_TYPE]);
        ctx.update(distribution_id.as_bytes());
        ctx.update(message.serialized());
        Self(ctx.finish())
    }

    /// The id's bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A digest of a ciphertext the server saw: printable, but keep logs short.
        write!(
            f,
            "MessageId({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// The version of a session row a [`TransactionalStore`] (or of a sender-key row a
/// [`TransactionalGroupStore`]) handed out, checked again at commit time
/// (compare-and-swap). Opaque; `RowVersion::ABSENT` means "no row".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RowVersion(Option<[u8; 12]>);

impl RowVersion {
    /// There was no session row.
    pub const ABSENT: Self = Self(None);

    /// A version token made by a store (for example the nonce of the sealed row, which
    /// is unique per write).
    pub const fn new(token: [u8; 12]) -> Self {
        Self(Some(token))
    }

    /// The token, or `None` for [`RowVersion::ABSENT`].
    pub const fn token(&self) -> Option<&[u8; 12]> {
        self.0.as_ref()
    }
}

/// A decrypted message to keep in the same transaction as the session change that
/// decrypted it, so a redelivery finds it instead of stepping the ratchet again.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct NewMessage<'a> {
    /// The ciphertext's id.
    pub id: MessageId,
    /// The plaintext.
    pub plaintext: &'a [u8],
    /// When it was decrypted (the caller's clock).
    pub received_at: Timestamp,
}

impl<'a> NewMessage<'a> {
    /// A message record.
    pub fn new(id: MessageId, plaintext: &'a [u8], received_at: Timestamp) -> Self {
        Self {
            id,
            plaintext,
            received_at,
        }
    }
}

impl std::fmt::Debug for NewMessage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewMessage")
            .field("id", &self.id)
            .field(
                "plaintext",
                &format_args!("<{} bytes>", self.plaintext.len()),
            )
            .field("received_at", &self.received_at)
            .finish()
    }
}

/// Everything one operation changes, applied all or nothing by
/// [`TransactionalStore::commit`].
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Commit<'a> {
    /// The remote device.
    pub address: &'a Address,
    /// The session version the operation started from; the commit fails with
    /// [`CommitOutcome::Conflict`] if the row changed since.
    pub expected: RowVersion,
    /// The new session record.
    pub session: &'a SessionRecord,
    /// An identity to trust for `address` from now on.
    pub identity: Option<&'a IdentityKey>,
    /// A one-time prekey the operation consumed.
    pub remove_pre_key: Option<u32>,
    /// The decrypted message; the commit conflicts if its id is already stored.
    pub message: Option<NewMessage<'a>>,
    /// The Kyber prekey the operation's handshake used, marked as
    /// [`KyberPreKeyStore::mark_kyber_pre_key_used`] does; the commit conflicts if the
    /// use is already recorded.
    pub kyber_pre_key_use: Option<KyberPreKeyUse>,
}

impl<'a> Commit<'a> {
    /// A commit that only replaces the session (as `encrypt` does).
    pub fn session(address: &'a Address, expected: RowVersion, session: &'a SessionRecord) -> Self {
        Self {
            address,
            expected,
            session,
            identity: None,
            remove_pre_key: None,
            message: None,
            kyber_pre_key_use: None,
        }
    }

    /// Also marks the Kyber prekey use `used`.
    pub fn with_kyber_pre_key_use(mut self, used: Option<KyberPreKeyUse>) -> Self {
        self.kyber_pre_key_use = used;
        self
    }

    /// Also trusts `identity` for the address.
    pub fn with_identity(mut self, identity: &'a IdentityKey) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Also deletes the one-time prekey `id`.
    pub fn with_removed_pre_key(mut self, id: Option<u32>) -> Self {
        self.remove_pre_key = id;
        self
    }

    /// Also stores the decrypted message.
    pub fn with_message(mut self, message: NewMessage<'a>) -> Self {
        self.message = Some(message);
        self
    }
}

/// What [`TransactionalStore::commit`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommitOutcome {
    /// Everything was written and is durable (as durable as the store is configured).
    Committed,
    /// Nothing was written: the session changed since it was loaded, or the message was
    /// already stored. Load again and redo the operation.
    Conflict,
}

/// A message the store kept from an earlier decrypt.
#[derive(Clone)]
#[non_exhaustive]
pub struct DeliveredMessage {
    /// The plaintext, or `None` once the app acknowledged it (only the dedupe record is
    /// left, so a redelivery is refused as a duplicate).
    pub plaintext: Option<Zeroizing<Vec<u8>>>,
    /// When it was first decrypted.
    pub received_at: Timestamp,
}

impl DeliveredMessage {
    /// A stored message.
    pub fn new(plaintext: Option<Zeroizing<Vec<u8>>>, received_at: Timestamp) -> Self {
        Self {
            plaintext,
            received_at,
        }
    }
}

impl std::fmt::Debug for DeliveredMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveredMessage")
            .field(
                "plaintext",
                &self
                    .plaintext
                    .as_ref()
                    .map(|p| format!("<{} bytes>", p.len())),
            )
            .field("received_at", &self.received_at)
            .finish()
    }
}

/// The atomic interface a persistent store offers [`crate::session::cipher`] (see
/// [`SessionStore::transactional`]).
pub trait TransactionalStore: Send + Sync {
    /// The session for `address` with its current version.
    fn load_session(
        &self,
        address: &Address,
    ) -> Result<(Option<SessionRecord>, RowVersion), StoreError>;

    /// The message with this id from `address`, if an earlier decrypt stored it.
    fn delivered(
        &self,
        address: &Address,
        id: &MessageId,
    ) -> Result<Option<DeliveredMessage>, StoreError>;

    /// Applies `commit` in one transaction, or nothing of it.
    fn commit(&self, commit: &Commit<'_>) -> Result<CommitOutcome, StoreError>;

    /// The app has saved the message with this id from `address` (1:1 or group: they
    /// share the message records): drop its plaintext and keep only the dedupe record,
    /// so a redelivery is refused as a duplicate. Returns whether it was stored.
    fn acknowledge(&self, address: &Address, id: &MessageId) -> Result<bool, StoreError>;
}

/// Everything one group operation changes, applied all or nothing by
/// [`TransactionalGroupStore::commit_group`].
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct GroupCommit<'a> {
    /// The sender whose chain changed (this device itself for its own sending chain).
    pub sender: &'a Address,
    /// The group.
    pub distribution_id: DistributionId,
    /// The record version the operation started from; the commit fails with
    /// [`CommitOutcome::Conflict`] if the row changed since.
    pub expected: RowVersion,
    /// The new sender-key record.
    pub record: &'a SenderKeyRecord,
    /// The decrypted message; the commit conflicts if its id is already stored.
    pub message: Option<NewMessage<'a>>,
}

impl<'a> GroupCommit<'a> {
    /// A commit that only replaces the record (as a group encrypt or a processed
    /// distribution message does).
    pub fn record(
        sender: &'a Address,
        distribution_id: DistributionId,
        expected: RowVersion,
        record: &'a SenderKeyRecord,
    ) -> Self {
        Self {
            sender,
            distribution_id,
            expected,
            record,
            message: None,
        }
    }

    /// Also stores the decrypted message (id from [`MessageId::of_group`]).
    pub fn with_message(mut self, message: NewMessage<'a>) -> Self {
        self.message = Some(message);
        self
    }
}

/// The atomic interface a persistent store offers group operations (see
/// [`SenderKeyStore::transactional_group`]). Group messages share the store's message
/// records with 1:1 messages, told apart by their ids ([`MessageId::of_group`]), so
/// the store's acknowledge and purge calls cover both.
pub trait TransactionalGroupStore: Send + Sync {
    /// The record of `sender` for `distribution_id` with its current version.
    fn load_sender_key(
        &self,
        sender: &Address,
        distribution_id: DistributionId,
    ) -> Result<(Option<SenderKeyRecord>, RowVersion), StoreError>;

    /// The group message with this id from `sender`, if an earlier decrypt stored it.
    fn group_delivered(
        &self,
        sender: &Address,
        id: &MessageId,
    ) -> Result<Option<DeliveredMessage>, StoreError>;

    /// Applies `commit` in one transaction, or nothing of it.
    fn commit_group(&self, commit: &GroupCommit<'_>) -> Result<CommitOutcome, StoreError>;
}

/// Sealed key-value storage for the privacy-model state (see
/// [`IdentityStore::state_store`]). Values are the types' own versioned `to_bytes`.
///
/// A change that spans several values (a disclosure tracker and the attestation
/// verifier it fed) goes through [`StateStore::commit_state`]: load each value with
/// [`StateStore::load_state`], change copies, and commit them together. The commit
/// writes all of them or none, and only if no other writer (another thread, another
/// host serving the same device) changed any of them since they were loaded.
pub trait StateStore: Send + Sync {
    /// The value stored under (`kind`, `key`).
    fn state(&self, kind: &str, key: &str) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError>;
    /// Stores `value` under (`kind`, `key`), replacing any other.
    fn save_state(&self, kind: &str, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Deletes the value under (`kind`, `key`).
    fn remove_state(&self, kind: &str, key: &str) -> Result<(), StoreError>;

    /// The value under (`kind`, `key`) with the row's version, for `commit_state`.
    fn load_state(&self, kind: &str, key: &str) -> Result<VersionedState, StoreError>;

    /// Writes every entry in one transaction if each row still has its `expected`
    /// version (`RowVersion::ABSENT`: no row yet); otherwise writes nothing and returns
    /// `CommitOutcome::Conflict`.
    ///
    /// Entries apply in order, each checked against the row as the entries before it
    /// left it: name each row once (a second entry for the same row expects the
    /// version the first one's write replaced, and so conflicts). An empty slice
    /// commits nothing and returns `CommitOutcome::Committed`.
    fn commit_state(&self, writes: &[StateWrite<'_>]) -> Result<CommitOutcome, StoreError>;
}

/// A privacy-model state value (`None`: no row) with its row's version, as
/// [`StateStore::load_state`] returns it.
pub type VersionedState = (Option<Zeroizing<Vec<u8>>>, RowVersion);

/// One value [`StateStore::commit_state`] writes.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct StateWrite<'a> {
    /// The kind of state (for example the consent ledger).
    pub kind: &'a str,
    /// The key within the kind (empty for kinds with one value).
    pub key: &'a str,
    /// The version [`StateStore::load_state`] returned; [`RowVersion::ABSENT`] if it
    /// found no row.
    pub expected: RowVersion,
    /// The new value.
    pub value: &'a [u8],
}

impl<'a> StateWrite<'a> {
    /// A write of `value` under (`kind`, `key`), expecting the row at `expected`.
    pub fn new(kind: &'a str, key: &'a str, expected: RowVersion, value: &'a [u8]) -> Self {
        Self {
            kind,
            key,
            expected,
            value,
        }
    }
}

impl std::fmt::Debug for StateWrite<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateWrite")
            .field("kind", &self.kind)
            .field("key", &self.key)
            .field("expected", &self.expected)
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .finish()
    }
}
