//! [`Device`]: the one object an app holds — its identity (in a store), the store, and
//! the clock and RNG it was given — with the calls an app makes.
//!
//! ```
//! use confide::device::{Device, FixedClock};
//! use confide::store::InMemoryStore;
//! use confide::{Address, SystemRng, Timestamp};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let clock = FixedClock::new(Timestamp::from_millis(1_700_000_000_000));
//! let mut rng = SystemRng::new();
//! let alice_store = InMemoryStore::generate(&mut rng);
//! let bob_store = InMemoryStore::generate(&mut rng);
//! let alice = Device::new(alice_store, Address::new("alice", 1), SystemRng::new(), clock.clone());
//! let bob = Device::new(bob_store, Address::new("bob", 1), SystemRng::new(), clock);
//!
//! let bundle = bob.publish_bundle(1, Some(1))?;
//! alice.start_session(bob.address(), &bundle)?;
//! let wire = alice.encrypt(bob.address(), b"hi Bob")?;
//! let got = bob.decrypt(alice.address(), &wire)?;
//! assert_eq!(got.plaintext.as_slice(), b"hi Bob");
//! assert!(!got.redelivered);
//! # Ok(()) }
//! ```
//!
//! Groups ([`Device::group_distribution`], [`Device::group_encrypt`],
//! [`Device::group_decrypt`]) delegate to [`crate::group::cipher`] and keep their sender
//! keys in the store's [`SenderKeyStore`](crate::store::SenderKeyStore): a sending chain
//! is saved before its ciphertext is returned, and a failed decrypt writes nothing. With
//! a store that offers [`TransactionalGroupStore`] (`SqliteStore`, `PostgresStore`) each group
//! operation is one commit with a compare-and-swap on the sender-key record, and a group
//! decrypt stores the message in that commit: the same bytes delivered again (say after
//! a crash before the app saved the plaintext) yield the stored plaintext with
//! `redelivered: true`. With a plain store the device serialises its group operations
//! behind one lock, as `group::cipher` requires. Sealed sender ([`Device::seal_message`],
//! [`Device::seal_group_message`], [`Device::unseal`]) wraps those and the 1:1 messages;
//! unsealing validates the certificate with the device's clock and decrypts through the
//! same paths.
//!
//! ```
//! use confide::device::{Device, FixedClock};
//! use confide::group::{DistributionId, Layout};
//! use confide::store::InMemoryStore;
//! use confide::{Address, SystemRng, Timestamp};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let clock = FixedClock::new(Timestamp::from_millis(1_700_000_000_000));
//! let mut rng = SystemRng::new();
//! let alice = Device::new(InMemoryStore::generate(&mut rng), Address::new("alice", 1),
//!     SystemRng::new(), clock.clone());
//! let bob = Device::new(InMemoryStore::generate(&mut rng), Address::new("bob", 1),
//!     SystemRng::new(), clock);
//! let group = DistributionId::random(&mut rng);
//! // Sent to each member over the pairwise sessions.
//! let skdm = alice.group_distribution(group, Layout::Current)?;
//! bob.group_process(alice.address(), group, &skdm)?;
//! let msg = alice.group_encrypt(group, b"hello group")?;
//! let got = bob.group_decrypt(alice.address(), group, &msg)?;
//! assert_eq!(got.plaintext.as_slice(), b"hello group");
//! assert!(!got.redelivered);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rand_core::{CryptoRng, RngCore};

use crate::business::{
    AttestationError, AttestationVerifier, BusinessId, ChatItem, DisclosureTracker,
    SignedAttestation, TrackError,
};
use crate::delivery::Decrypted;
use crate::error::{BundleError, DecryptError, EncryptError, PublishError, StoreError};
use crate::export::{AccountInfo, AccountReport, ReportError, ReportSources};
use crate::group::{
    self, DistributionId, GroupDecryptError, GroupEncryptError, GroupWireError, Layout,
    SenderKeyDistributionMessage, SenderKeyMessage,
};
pub use crate::group::{
    GroupDistributionError, GroupKeyProcessError, GroupReceiveError, GroupSendError,
};
use crate::keys::{IdentityKey, PublicKey};
use crate::policy::{
    AccountState, Activity, ActivityError, ConsentEvent, ConsentLedger, PolicySchedule,
    RecordConsentError, StateError, account_state,
};
use crate::sealed::{
    self, ContentHint, ContentType, OpenError, Recipient, SealError, SenderCertificate,
    UnidentifiedSenderMessageContent,
};
use crate::session::cipher::{self, BundleSpec};
use crate::store::ProtocolStore;
#[cfg(doc)]
use crate::store::{MessageId, TransactionalGroupStore};
use crate::wire::CiphertextMessage;
use crate::{Address, PreKeyBundle, Timestamp, WireError};

/// A source of the current time, handed to a [`Device`].
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_system_time(std::time::SystemTime::now())
    }
}

/// A clock that stands still until told otherwise; clones share the time.
#[derive(Clone, Debug, Default)]
pub struct FixedClock(Arc<AtomicU64>);

impl FixedClock {
    /// A clock showing `at`.
    pub fn new(at: Timestamp) -> Self {
        Self(Arc::new(AtomicU64::new(at.as_millis())))
    }

    /// Sets the time.
    pub fn set(&self, at: Timestamp) {
        self.0.store(at.as_millis(), Ordering::SeqCst);
    }

    /// Moves the time forward by `ms` milliseconds.
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
}

/// `kind` names under which a [`Device`] keeps privacy-model state in a
/// [`crate::store::StateStore`].
pub mod state_kind {
    /// The consent ledger (key `""`).
    pub const CONSENT_LEDGER: &str = "policy.consent_ledger";
    /// The account's activity (key `""`).
    pub const ACTIVITY: &str = "policy.activity";
    /// The attestation verifier's serials (key `""`).
    pub const ATTESTATION_VERIFIER: &str = "business.attestation_verifier";
    /// One disclosure tracker per business chat (key: the business id).
    pub const DISCLOSURE_TRACKER: &str = "business.disclosure_tracker";
}

/// Privacy-model state cached in memory (loaded from the store on first use).
#[derive(Default)]
struct Privacy {
    loaded: bool,
    ledger: ConsentLedger,
    activity: Option<Activity>,
    verifier: AttestationVerifier,
    trackers: HashMap<BusinessId, DisclosureTracker>,
}

/// Reading or writing the privacy-model state failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrivacyStateError {
    /// A stored value did not load.
    #[error("stored privacy state {kind} is corrupt")]
    Corrupt {
        /// The state's kind (see [`state_kind`]).
        kind: &'static str,
    },
    /// The store failed.
    #[error("store failed: {0}")]
    Store(#[from] StoreError),
    /// A lock was poisoned by a panicking thread.
    #[error("device state lock poisoned")]
    Poisoned,
}

/// [`Device::receive_attestation`] failed; nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestationReceiveError {
    /// The attestation did not verify.
    #[error("attestation refused: {0}")]
    Attestation(#[from] AttestationError),
    /// The chat's tracker refused it.
    #[error("disclosure tracking failed: {0}")]
    Track(#[from] TrackError),
    /// The state could not be loaded or saved.
    #[error("privacy state: {0}")]
    State(#[from] PrivacyStateError),
}

/// [`Device::business_message`] failed; nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusinessMessageError {
    /// The chat's tracker refused the message.
    #[error("disclosure tracking failed: {0}")]
    Track(#[from] TrackError),
    /// The state could not be loaded or saved.
    #[error("privacy state: {0}")]
    State(#[from] PrivacyStateError),
}

/// [`Device::record_consent`] failed; nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsentError {
    /// The ledger refused the answer.
    #[error("consent refused: {0}")]
    Record(#[from] RecordConsentError),
    /// The state could not be loaded or saved.
    #[error("privacy state: {0}")]
    State(#[from] PrivacyStateError),
}

/// [`Device::record_connection`] failed; nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ActivityRecordError {
    /// The activity log refused the event.
    #[error("activity refused: {0}")]
    Activity(#[from] ActivityError),
    /// The state could not be loaded or saved.
    #[error("privacy state: {0}")]
    State(#[from] PrivacyStateError),
}

/// [`Device::account_state`] or [`Device::account_report`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountError {
    /// No activity was recorded yet ([`Device::record_connection`] registers the account).
    #[error("the account has no recorded activity")]
    NotRegistered,
    /// The state could not be computed.
    #[error("account state unavailable: {0}")]
    State(#[from] StateError),
    /// The report could not be built.
    #[error("report failed: {0}")]
    Report(#[from] ReportError),
    /// The state could not be loaded.
    #[error("privacy state: {0}")]
    PrivacyState(#[from] PrivacyStateError),
}

/// Whom a sealed message is for.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum SealFor<'a> {
    /// Sealed sender v1 to this one device, under the identity key this device trusts for
    /// it (known from its bundle or an earlier message).
    V1(&'a Address),
    /// Sealed sender v2 to these devices: one multi-recipient (`0x23`) message that the
    /// server splits into one `0x22` message per recipient.
    V2(&'a [Recipient]),
}

/// [`Device::seal`] failed; nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealToError {
    /// No identity key is trusted for the v1 recipient yet.
    #[error("no identity key known for the recipient")]
    UnknownRecipient,
    /// Sealing refused the recipients (see [`SealError`]).
    #[error("seal failed: {0}")]
    Seal(#[from] SealError),
    /// The store failed.
    #[error("store failed: {0}")]
    Store(#[from] StoreError),
}

/// [`Device::seal_message`] failed. A failure after encrypting leaves the session one
/// step ahead (a skipped counter the recipient tolerates), never a reused key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealMessageError {
    /// No identity key is trusted for the v1 recipient yet.
    #[error("no identity key known for the recipient")]
    UnknownRecipient,
    /// The 1:1 encrypt failed.
    #[error("encrypt failed: {0}")]
    Encrypt(#[from] EncryptError),
    /// Sealing refused the recipients.
    #[error("seal failed: {0}")]
    Seal(#[from] SealError),
    /// The store failed.
    #[error("store failed: {0}")]
    Store(#[from] StoreError),
}

impl From<SealToError> for SealMessageError {
    fn from(e: SealToError) -> Self {
        match e {
            SealToError::UnknownRecipient => Self::UnknownRecipient,
            SealToError::Seal(e) => Self::Seal(e),
            SealToError::Store(e) => Self::Store(e),
        }
    }
}

/// [`Device::seal_group_message`] failed. A failure after encrypting leaves the sending
/// chain one step ahead (a skipped iteration), never a reused key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealGroupMessageError {
    /// No identity key is trusted for the v1 recipient yet.
    #[error("no identity key known for the recipient")]
    UnknownRecipient,
    /// The group encrypt failed.
    #[error("group encrypt failed: {0}")]
    Encrypt(#[from] GroupEncryptError),
    /// Sealing refused the recipients.
    #[error("seal failed: {0}")]
    Seal(#[from] SealError),
    /// The store failed.
    #[error("store failed: {0}")]
    Store(#[from] StoreError),
}

impl From<SealToError> for SealGroupMessageError {
    fn from(e: SealToError) -> Self {
        match e {
            SealToError::UnknownRecipient => Self::UnknownRecipient,
            SealToError::Seal(e) => Self::Seal(e),
            SealToError::Store(e) => Self::Store(e),
        }
    }
}

impl From<GroupSendError> for SealGroupMessageError {
    fn from(e: GroupSendError) -> Self {
        match e {
            GroupSendError::Encrypt(e) => Self::Encrypt(e),
            GroupSendError::Store(e) => Self::Store(e),
        }
    }
}

/// [`Device::unseal`] failed; the store is unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnsealError {
    /// The envelope did not open, or its certificate does not validate under the trust
    /// root at the device's time (expired, revoked, wrong root).
    #[error("sealed message refused: {0}")]
    Open(#[from] OpenError),
    /// The certificate names this very device.
    #[error("sealed message claims to be from this device")]
    SelfSend,
    /// The certificate's identity key is not the one trusted for the sender's address.
    #[error("certificate identity differs from the known one")]
    UntrustedIdentity {
        /// The key on record.
        known: IdentityKey,
        /// The key in the certificate.
        received: IdentityKey,
    },
    /// The inner prekey message carries another identity key than the certificate.
    #[error("inner message identity differs from the certificate")]
    IdentityMismatch,
    /// The inner content is of a kind this call does not decrypt (plaintext content).
    #[error("unsupported sealed content type")]
    UnsupportedContent {
        /// The content's type.
        content_type: ContentType,
    },
    /// The inner 1:1 message is malformed.
    #[error("inner message malformed: {0}")]
    Wire(#[from] WireError),
    /// The inner group message is malformed.
    #[error("inner group message malformed: {0}")]
    GroupWire(#[from] GroupWireError),
    /// The inner 1:1 message did not decrypt.
    #[error("decrypt failed: {0}")]
    Decrypt(#[from] DecryptError),
    /// The inner group message did not decrypt.
    #[error("group decrypt failed: {0}")]
    GroupDecrypt(#[from] GroupDecryptError),
    /// The store failed.
    #[error("store failed: {0}")]
    Store(#[from] StoreError),
}

impl From<GroupReceiveError> for UnsealError {
    fn from(e: GroupReceiveError) -> Self {
        match e {
            GroupReceiveError::Decrypt(e) => Self::GroupDecrypt(e),
            GroupReceiveError::Store(e) => Self::Store(e),
        }
    }
}

/// What [`Device::unseal`] found inside a sealed message.
#[derive(Clone)]
#[non_exhaustive]
pub struct Unsealed {
    /// The sender's address: the certificate's UUID as the name and its device id (name
    /// peers by their UUID for sessions and groups to line up with sealed sender).
    pub sender: Address,
    /// The validated sender certificate (UUID, optional phone number, identity key).
    pub certificate: SenderCertificate,
    /// The inner message's kind.
    pub content_type: ContentType,
    /// How to surface a failure to the user.
    pub content_hint: ContentHint,
    /// The group id the sender attached, if any.
    pub group_id: Option<Vec<u8>>,
    /// The decrypted message.
    pub plaintext: zeroize::Zeroizing<Vec<u8>>,
    /// A message (1:1 or group) this store already decrypted (see
    /// [`Decrypted::redelivered`]).
    pub redelivered: bool,
}

impl std::fmt::Debug for Unsealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unsealed")
            .field("sender", &self.sender)
            .field("content_type", &self.content_type)
            .field("content_hint", &self.content_hint)
            .field("group_id", &self.group_id.as_ref().map(Vec::len))
            .field(
                "plaintext",
                &format_args!("<{} bytes>", self.plaintext.len()),
            )
            .field("redelivered", &self.redelivered)
            .finish_non_exhaustive()
    }
}

/// One device of one user. `Send + Sync` when its store, RNG and clock are: share it
/// as `Arc<Device<..>>` across threads (the RNG sits behind a mutex).
pub struct Device<S, R, C> {
    store: S,
    address: Address,
    rng: Mutex<R>,
    clock: C,
    privacy: Mutex<Privacy>,
    /// Serializes group operations on a store without [`TransactionalGroupStore`]: each
    /// loads a sender-key record, changes a copy and saves it, so two at once could
    /// reuse a chain step or lose one's progress. (A transactional store's
    /// compare-and-swap does this job instead, across devices and processes too.)
    group: Mutex<()>,
}

impl<S, R, C> std::fmt::Debug for Device<S, R, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// The store's RNG lock was poisoned.
fn rng_poisoned() -> StoreError {
    StoreError::Backend("device RNG lock poisoned".into())
}

impl<S: ProtocolStore, R: RngCore + CryptoRng, C: Clock> Device<S, R, C> {
    /// A device at `address` whose identity is the one in `store`.
    pub fn new(store: S, address: Address, rng: R, clock: C) -> Self {
        Self {
            store,
            address,
            rng: Mutex::new(rng),
            clock,
            privacy: Mutex::default(),
            group: Mutex::new(()),
        }
    }

    /// This device's address.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The clock's time now.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Our identity key.
    pub fn identity_key(&self) -> Result<IdentityKey, StoreError> {
        Ok(*self.store.local_identity()?.identity_key())
    }

    fn rng(&self) -> Result<MutexGuard<'_, R>, StoreError> {
        self.rng.lock().map_err(|_| rng_poisoned())
    }

    /// Makes and stores a new signed prekey (and one-time prekey) and returns the bundle
    /// to publish.
    pub fn publish_bundle(
        &self,
        signed_pre_key_id: u32,
        pre_key_id: Option<u32>,
    ) -> Result<PreKeyBundle, PublishError> {
        let spec =
            BundleSpec::new(self.address.device_id(), signed_pre_key_id).with_pre_key(pre_key_id);
        let now = self.clock.now();
        cipher::publish_bundle(&self.store, &mut *self.rng()?, &spec, now)
    }

    /// Starts a session with `remote` from its bundle.
    pub fn start_session(
        &self,
        remote: &Address,
        bundle: &PreKeyBundle,
    ) -> Result<(), BundleError> {
        let now = self.clock.now();
        cipher::start_session(&self.store, remote, bundle, &mut *self.rng()?, now)
    }

    /// Trusts `key` for `remote` from now on (after showing the user the change).
    pub fn accept_identity(&self, remote: &Address, key: &IdentityKey) -> Result<(), StoreError> {
        cipher::accept_identity(&self.store, remote, key)
    }

    /// Whether there is a session with `remote`.
    pub fn has_session(&self, remote: &Address) -> Result<bool, StoreError> {
        cipher::has_session(&self.store, remote)
    }

    /// Encrypts for `remote`; with a transactional store the advanced chain is durable
    /// before the ciphertext is returned.
    pub fn encrypt(
        &self,
        remote: &Address,
        plaintext: &[u8],
    ) -> Result<CiphertextMessage, EncryptError> {
        cipher::encrypt(&self.store, remote, plaintext)
    }

    /// Decrypts a message from `remote` (see [`cipher::decrypt`]: with a
    /// transactional store, committed before it returns, and a redelivery is marked).
    pub fn decrypt(
        &self,
        remote: &Address,
        message: &CiphertextMessage,
    ) -> Result<Decrypted, DecryptError> {
        let now = self.clock.now();
        let mut rng = self.rng().map_err(DecryptError::Store)?;
        cipher::decrypt(&self.store, remote, message, &mut *rng, now)
    }

    /// Serialises group operations on a store without [`TransactionalGroupStore`]
    /// (see [`group::cipher`]'s rule); with one, the store's compare-and-swap does that
    /// job and no lock is taken. Taken before the RNG lock, never after it.
    fn group_serial(&self) -> Result<Option<MutexGuard<'_, ()>>, StoreError> {
        if self.store.transactional_group().is_some() {
            return Ok(None);
        }
        self.group
            .lock()
            .map(Some)
            .map_err(|_| StoreError::Backend("device group lock poisoned".into()))
    }

    /// The distribution message of this device's sending chain in the group, creating
    /// and saving the chain (in `layout`) on first use. Send it to every member over the
    /// pairwise sessions. An own chain of the other layout is replaced by a fresh one.
    /// For [`Layout::Legacy`] the messages carry no distribution id: `distribution_id`
    /// only names the group in this store.
    pub fn group_distribution(
        &self,
        distribution_id: DistributionId,
        layout: Layout,
    ) -> Result<SenderKeyDistributionMessage, GroupDistributionError> {
        let _serial = self.group_serial()?;
        let mut rng = self.rng()?;
        group::cipher::distribution(
            &self.store,
            &self.address,
            distribution_id,
            layout,
            &mut *rng,
        )
    }

    /// Starts a fresh sending chain in the group (after a member left) and returns its
    /// distribution message, for the remaining members only. The old chain and its
    /// signing key are gone from the store before this returns. Keeps the group's layout.
    pub fn group_rotate(
        &self,
        distribution_id: DistributionId,
    ) -> Result<SenderKeyDistributionMessage, GroupDistributionError> {
        let _serial = self.group_serial()?;
        let mut rng = self.rng()?;
        group::cipher::rotate(&self.store, &self.address, distribution_id, &mut *rng)
    }

    /// Stores the chain a distribution message from `sender` describes, for the group
    /// `distribution_id` (see [`group::cipher::process`]).
    pub fn group_process(
        &self,
        sender: &Address,
        distribution_id: DistributionId,
        message: &SenderKeyDistributionMessage,
    ) -> Result<(), GroupKeyProcessError> {
        let _serial = self.group_serial()?;
        group::cipher::process(&self.store, sender, distribution_id, message)
    }

    /// Encrypts a group message with this device's sending chain. The advanced chain is
    /// saved before the ciphertext is returned (with a transactional store, by a
    /// compare-and-swap commit), so no chain step is ever used twice.
    pub fn group_encrypt(
        &self,
        distribution_id: DistributionId,
        plaintext: &[u8],
    ) -> Result<SenderKeyMessage, GroupSendError> {
        let _serial = self.group_serial()?;
        let mut rng = self.rng()?;
        group::cipher::encrypt(
            &self.store,
            &self.address,
            distribution_id,
            plaintext,
            &mut *rng,
        )
    }

    /// Decrypts a group message from `sender` in the group `distribution_id`, at the
    /// device's time (see [`group::cipher::decrypt`]). The record is changed on a copy and saved only
    /// on success: a failed decrypt writes nothing.
    ///
    /// With a store that offers [`TransactionalGroupStore`] (`SqliteStore`, `PostgresStore`) the
    /// advanced record and the message itself (under [`MessageId::of_group`]) are
    /// committed in one transaction before this returns, and the same bytes delivered
    /// again return the stored plaintext with `redelivered: true`, touching nothing;
    /// once the app acknowledged the message to the store, a redelivery is
    /// [`GroupDecryptError::DuplicateMessage`]. With a plain store a redelivery is
    /// always that duplicate error and `redelivered` is always `false`.
    pub fn group_decrypt(
        &self,
        sender: &Address,
        distribution_id: DistributionId,
        message: &SenderKeyMessage,
    ) -> Result<Decrypted, GroupReceiveError> {
        let now = self.clock.now();
        let _serial = self.group_serial()?;
        group::cipher::decrypt(&self.store, sender, distribution_id, message, now)
    }

    /// Seals `content` (made by the app or by [`Device::seal_message`]'s steps) with this
    /// device's identity. To send one group message by v1 to several members, encrypt it
    /// once with [`Device::group_encrypt`] and seal its content per member.
    pub fn seal(
        &self,
        content: &UnidentifiedSenderMessageContent,
        to: SealFor<'_>,
    ) -> Result<Vec<u8>, SealToError> {
        let identity = self.store.local_identity()?;
        match to {
            SealFor::V1(remote) => {
                let theirs = self
                    .store
                    .identity(remote)?
                    .ok_or(SealToError::UnknownRecipient)?;
                Ok(sealed::seal_v1(
                    content,
                    &identity,
                    &theirs,
                    &mut *self.rng()?,
                )?)
            }
            SealFor::V2(recipients) => Ok(sealed::seal_v2(
                content,
                &identity,
                recipients,
                &mut *self.rng()?,
            )?),
        }
    }

    /// Checks what [`Device::seal`] needs before anything is encrypted.
    fn check_seal(&self, to: SealFor<'_>) -> Result<(), SealToError> {
        match to {
            SealFor::V1(remote) if self.store.identity(remote)?.is_none() => {
                Err(SealToError::UnknownRecipient)
            }
            SealFor::V2([]) => Err(SealError::NoRecipients.into()),
            _ => Ok(()),
        }
    }

    /// Encrypts a 1:1 message for `remote` (as [`Device::encrypt`]: the chain is saved
    /// first) and seals it under the app's sender certificate.
    pub fn seal_message(
        &self,
        remote: &Address,
        plaintext: &[u8],
        certificate: &SenderCertificate,
        hint: ContentHint,
        to: SealFor<'_>,
    ) -> Result<Vec<u8>, SealMessageError> {
        self.check_seal(to)?;
        let message = self.encrypt(remote, plaintext)?;
        let content_type = match message {
            CiphertextMessage::PreKey(_) => ContentType::PreKey,
            _ => ContentType::Whisper,
        };
        let content = UnidentifiedSenderMessageContent::new(
            content_type,
            certificate.clone(),
            message.serialized().to_vec(),
            hint,
            None,
        );
        Ok(self.seal(&content, to)?)
    }

    /// Group-encrypts (as [`Device::group_encrypt`]: the chain is saved first) and seals
    /// the message under the app's sender certificate, with the app's group id.
    pub fn seal_group_message(
        &self,
        distribution_id: DistributionId,
        plaintext: &[u8],
        group_id: Option<&[u8]>,
        certificate: &SenderCertificate,
        hint: ContentHint,
        to: SealFor<'_>,
    ) -> Result<Vec<u8>, SealGroupMessageError> {
        self.check_seal(to)?;
        let message = self.group_encrypt(distribution_id, plaintext)?;
        let content = UnidentifiedSenderMessageContent::new(
            ContentType::SenderKey,
            certificate.clone(),
            message.serialized().to_vec(),
            hint,
            group_id.map(<[u8]>::to_vec),
        );
        Ok(self.seal(&content, to)?)
    }

    /// Opens a sealed message (v1, or v2 as delivered), validates its sender certificate
    /// under `trust_root` at the device's time, and decrypts the inner message: a 1:1
    /// message through [`Device::decrypt`], a current-layout group message through
    /// [`Device::group_decrypt`] (with a transactional store both are committed
    /// atomically and redeliveries marked). Nothing is stored unless the inner decrypt
    /// succeeds.
    pub fn unseal(&self, bytes: &[u8], trust_root: &PublicKey) -> Result<Unsealed, UnsealError> {
        let identity = self.store.local_identity()?;
        let content = sealed::open(bytes, &identity, trust_root, self.clock.now())?;
        let certificate = content.sender().clone();
        let info = certificate.sender();
        let sender = Address::new(info.uuid.clone(), info.device_id);
        if sender == self.address {
            return Err(UnsealError::SelfSend);
        }
        if let Some(known) = self.store.identity(&sender)? {
            if known != info.identity_key {
                return Err(UnsealError::UntrustedIdentity {
                    known,
                    received: info.identity_key,
                });
            }
        }
        let content_type = content.content_type();
        let (plaintext, redelivered) = match content_type {
            ContentType::PreKey | ContentType::Whisper => {
                let message =
                    CiphertextMessage::from_parts(content_type.message_type(), content.contents())?;
                if let CiphertextMessage::PreKey(m) = &message {
                    if *m.identity_key() != info.identity_key {
                        return Err(UnsealError::IdentityMismatch);
                    }
                }
                let d = self.decrypt(&sender, &message)?;
                (d.plaintext, d.redelivered)
            }
            ContentType::SenderKey => {
                let message = SenderKeyMessage::parse(content.contents(), Layout::Current)?;
                // The current layout names its distribution on the wire.
                let id = message
                    .distribution_id()
                    .ok_or(GroupReceiveError::Decrypt(GroupDecryptError::WrongLayout))?;
                let d = self.group_decrypt(&sender, id, &message)?;
                (d.plaintext, d.redelivered)
            }
            other => {
                return Err(UnsealError::UnsupportedContent {
                    content_type: other,
                });
            }
        };
        Ok(Unsealed {
            sender,
            content_type,
            content_hint: content.content_hint(),
            group_id: content.group_id().map(<[u8]>::to_vec),
            certificate,
            plaintext,
            redelivered,
        })
    }

    fn privacy(&self) -> Result<MutexGuard<'_, Privacy>, PrivacyStateError> {
        let mut p = self
            .privacy
            .lock()
            .map_err(|_| PrivacyStateError::Poisoned)?;
        if !p.loaded {
            if let Some(st) = self.store.state_store() {
                use state_kind::{ACTIVITY, ATTESTATION_VERIFIER, CONSENT_LEDGER};
                if let Some(b) = st.state(CONSENT_LEDGER, "")? {
                    p.ledger =
                        ConsentLedger::from_bytes(&b).map_err(|_| PrivacyStateError::Corrupt {
                            kind: CONSENT_LEDGER,
                        })?;
                }
                if let Some(b) = st.state(ACTIVITY, "")? {
                    p.activity = Some(
                        Activity::from_bytes(&b)
                            .map_err(|_| PrivacyStateError::Corrupt { kind: ACTIVITY })?,
                    );
                }
                if let Some(b) = st.state(ATTESTATION_VERIFIER, "")? {
                    p.verifier = AttestationVerifier::from_bytes(&b).map_err(|_| {
                        PrivacyStateError::Corrupt {
                            kind: ATTESTATION_VERIFIER,
                        }
                    })?;
                }
            }
            p.loaded = true;
        }
        Ok(p)
    }

    fn tracker<'p>(
        &self,
        p: &'p mut Privacy,
        business: &BusinessId,
    ) -> Result<&'p mut DisclosureTracker, PrivacyStateError> {
        if !p.trackers.contains_key(business) {
            let stored = match self.store.state_store() {
                Some(st) => st.state(state_kind::DISCLOSURE_TRACKER, business.as_str())?,
                None => None,
            };
            let tracker = match stored {
                Some(b) => {
                    DisclosureTracker::from_bytes(&b).map_err(|_| PrivacyStateError::Corrupt {
                        kind: state_kind::DISCLOSURE_TRACKER,
                    })?
                }
                None => DisclosureTracker::new(business.clone()),
            };
            p.trackers.insert(business.clone(), tracker);
        }
        p.trackers
            .get_mut(business)
            .ok_or(PrivacyStateError::Poisoned)
    }

    fn save(&self, kind: &'static str, key: &str, bytes: &[u8]) -> Result<(), PrivacyStateError> {
        if let Some(st) = self.store.state_store() {
            st.save_state(kind, key, bytes)?;
        }
        Ok(())
    }

    /// A business chat's hosting attestation arrived: verifies it against the
    /// business's identity key and feeds the chat's disclosure tracker. Returns the
    /// notices to show and the held messages it releases, in display order.
    pub fn receive_attestation(
        &self,
        signed: &SignedAttestation,
        business: &BusinessId,
        business_key: &IdentityKey,
    ) -> Result<Vec<ChatItem>, AttestationReceiveError> {
        let now = self.clock.now();
        let mut guard = self.privacy()?;
        let p = &mut *guard;
        let mut verifier = p.verifier.clone();
        let verified = verifier.verify(signed, business, business_key, now)?;
        let mut tracker = self.tracker(p, business)?.clone();
        let items = tracker.on_attestation(&verified)?;
        self.save(
            state_kind::DISCLOSURE_TRACKER,
            business.as_str(),
            &tracker.to_bytes(),
        )?;
        self.save(state_kind::ATTESTATION_VERIFIER, "", &verifier.to_bytes())?;
        p.verifier = verifier;
        p.trackers.insert(business.clone(), tracker);
        Ok(items)
    }

    /// A message in a business chat, registered by the app as `id`, with the serial of
    /// the hosting tag it carried. Returns what can be shown now, in order.
    pub fn business_message(
        &self,
        business: &BusinessId,
        id: u64,
        serial: Option<u64>,
    ) -> Result<Vec<ChatItem>, BusinessMessageError> {
        let mut guard = self.privacy()?;
        let mut tracker = self.tracker(&mut guard, business)?.clone();
        let items = tracker.on_message(id, serial)?;
        self.save(
            state_kind::DISCLOSURE_TRACKER,
            business.as_str(),
            &tracker.to_bytes(),
        )?;
        guard.trackers.insert(business.clone(), tracker);
        Ok(items)
    }

    /// The chat's disclosure tracker as it stands (a fresh one for an unknown business).
    pub fn disclosure(
        &self,
        business: &BusinessId,
    ) -> Result<DisclosureTracker, PrivacyStateError> {
        let mut guard = self.privacy()?;
        Ok(self.tracker(&mut guard, business)?.clone())
    }

    /// Records the user's answer to a policy version in the consent ledger.
    pub fn record_consent(
        &self,
        event: ConsentEvent,
        schedule: &PolicySchedule,
    ) -> Result<(), ConsentError> {
        let mut guard = self.privacy()?;
        let mut ledger = guard.ledger.clone();
        ledger.record(event, schedule)?;
        self.save(state_kind::CONSENT_LEDGER, "", &ledger.to_bytes())?;
        guard.ledger = ledger;
        Ok(())
    }

    /// The consent ledger.
    pub fn consent_ledger(&self) -> Result<ConsentLedger, PrivacyStateError> {
        Ok(self.privacy()?.ledger.clone())
    }

    /// Records that the user connected now; the first call registers the account.
    pub fn record_connection(&self) -> Result<(), ActivityRecordError> {
        let now = self.clock.now();
        let mut guard = self.privacy()?;
        let mut activity = guard.activity.clone().unwrap_or_else(|| Activity::new(now));
        activity.connected(now)?;
        self.save(state_kind::ACTIVITY, "", &activity.to_bytes())?;
        guard.activity = Some(activity);
        Ok(())
    }

    /// The account's state now under `schedule`.
    pub fn account_state(&self, schedule: &PolicySchedule) -> Result<AccountState, AccountError> {
        let now = self.clock.now();
        let guard = self.privacy()?;
        let activity = guard.activity.as_ref().ok_or(AccountError::NotRegistered)?;
        Ok(account_state(&guard.ledger, schedule, activity, now)?)
    }

    /// The account-information report now.
    pub fn account_report(
        &self,
        info: &AccountInfo,
        schedule: &PolicySchedule,
    ) -> Result<AccountReport, AccountError> {
        let now = self.clock.now();
        let guard = self.privacy()?;
        let activity = guard.activity.as_ref().ok_or(AccountError::NotRegistered)?;
        let sources = ReportSources {
            info,
            ledger: &guard.ledger,
            schedule,
            activity,
        };
        Ok(AccountReport::build(&sources, now)?)
    }
}
