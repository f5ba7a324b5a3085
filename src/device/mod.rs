//! [`Device`]: the one object an app holds — its identity (in a store), the store, and
//! the clock and RNG it was given — with the calls an app makes.
//!
//! [`Device::open`] opens a persistent device, creating its identity on first use;
//! [`Device::publish_bundle`] makes the keys a peer starts a session from, under ids the
//! device allocates (and [`Device::top_up_pre_keys`] keeps a batch of one-time prekeys
//! on offer). Messages are padded [`Content`](crate::envelope::Content) by default:
//! [`Device::encrypt`] pads, [`Device::decrypt`] unpads and parses, so the server learns
//! a size class, never a length (`encrypt_raw`/`decrypt_raw` are for apps with their own
//! framing). Once the app saved a message it calls [`Device::acknowledge`].
//!
//! ```
//! use confide::device::{Device, FixedClock};
//! use confide::envelope::Body;
//! use confide::store::{SqliteStore, StoreKey};
//! use confide::{Address, SystemRng, Timestamp};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let clock = FixedClock::new(Timestamp::from_millis(1_700_000_000_000));
//! let mut rng = SystemRng::new();
//! let (alice_key, bob_key) = (StoreKey::generate(&mut rng), StoreKey::generate(&mut rng));
//! let alice_store = SqliteStore::open(dir.path().join("alice.db"), &alice_key, &mut rng)?;
//! let bob_store = SqliteStore::open(dir.path().join("bob.db"), &bob_key, &mut rng)?;
//! let alice = Device::open(alice_store, Address::new("alice", 1), SystemRng::new(), clock.clone())?;
//! let bob = Device::open(bob_store, Address::new("bob", 1), SystemRng::new(), clock)?;
//!
//! let bundle = bob.publish_bundle()?;
//! alice.start_session(bob.address(), &bundle)?;
//! let wire = alice.encrypt(bob.address(), &alice.text("hi Bob")?)?;
//! let got = bob.decrypt(alice.address(), &wire)?;
//! let Body::Message(message) = got.content.body() else { panic!("a chat message") };
//! assert_eq!(message.text(), Some("hi Bob"));
//! assert!(!got.redelivered);
//! bob.acknowledge(alice.address(), &got.id)?;
//! // Both users compare the same 60 digits.
//! assert_eq!(
//!     alice.safety_number(bob.address())?.displayable().to_string(),
//!     bob.safety_number(alice.address())?.displayable().to_string(),
//! );
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
//! A sender's chain reaches the members as content over the pairwise sessions:
//!
//! ```
//! use confide::device::{Device, FixedClock};
//! use confide::envelope::Body;
//! use confide::group::DistributionId;
//! use confide::store::InMemoryStore;
//! use confide::{Address, SystemRng, Timestamp};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let clock = FixedClock::new(Timestamp::from_millis(1_700_000_000_000));
//! let mut rng = SystemRng::new();
//! let alice = Device::new(InMemoryStore::generate(&mut rng), Address::new("alice", 1),
//!     SystemRng::new(), clock.clone());
//! let bob = Device::new(InMemoryStore::generate(&mut rng), Address::new("bob", 1),
//!     SystemRng::new(), clock);
//! alice.start_session(bob.address(), &bob.publish_bundle()?)?;
//! let group = DistributionId::random(&mut rng);
//! let invite = alice.encrypt(bob.address(), &alice.group_distribution(group)?)?;
//! let got = bob.decrypt(alice.address(), &invite)?;
//! let Body::SenderKeyDistribution(key) = got.content.body() else { panic!("a group key") };
//! bob.group_process(alice.address(), group, key)?;
//! let msg = alice.group_encrypt(group, &alice.text("hello group")?)?;
//! let got = bob.group_decrypt(alice.address(), group, &msg)?;
//! let Body::Message(message) = got.content.body() else { panic!("a chat message") };
//! assert_eq!(message.text(), Some("hello group"));
//! # Ok(()) }
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rand_core::{CryptoRng, RngCore};

pub use crate::delivery::Decrypted;
use crate::error::{BundleError, DecryptError, EncryptError, StoreError};
use crate::group::{self, DistributionId, Layout, SenderKeyDistributionMessage, SenderKeyMessage};
pub use crate::group::{
    GroupDistributionError, GroupKeyProcessError, GroupReceiveError, GroupSendError,
};
use crate::keys::IdentityKey;
use crate::session::{ProtocolVersion, Versions, cipher};
use crate::store::ProtocolStore;
use crate::wire::CiphertextMessage;
use crate::{Address, PreKeyBundle, Timestamp};
#[cfg(doc)]
use crate::{
    group::GroupDecryptError,
    store::{MessageId, TransactionalGroupStore},
};

mod assurance;
#[cfg(feature = "backup")]
mod backup;
mod content;
mod error;
mod identity;
#[cfg(feature = "kt")]
mod kt;
mod prekeys;
mod privacy;
mod sealed;
mod state;

#[cfg(feature = "backup")]
pub use backup::{BackupExportError, BackupExtras, BackupRestoreError, Restored};
pub use content::{ReceiveError, Received, TextError};
pub use error::{
    AccountError, ActivityRecordError, AssuranceError, AttestationReceiveError,
    BusinessMessageError, ConsentError, PrivacyStateError, SealGroupMessageError, SealMessageError,
    SealToError, UnsealError,
};
pub use identity::{DeviceOpenError, SafetyNumberError};
#[cfg(feature = "kt")]
pub use kt::KtError;
pub use prekeys::{KYBER_PRE_KEY_BATCH, PRE_KEY_BATCH, PreKeyError};
use privacy::PrivacyState;
pub use privacy::state_kind;
pub use sealed::{SealAs, SealFor, SealVersion, Unsealed};

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

/// One device of one user. `Send + Sync` when its store, RNG and clock are: share it
/// as `Arc<Device<..>>` across threads (the RNG sits behind a mutex).
pub struct Device<S, R, C> {
    store: S,
    address: Address,
    rng: Mutex<R>,
    clock: C,
    versions: Versions,
    privacy: PrivacyState,
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
    StoreError::Poisoned {
        what: "device RNG lock",
    }
}

impl<S: ProtocolStore, R: RngCore + CryptoRng, C: Clock> Device<S, R, C> {
    /// A device at `address` whose identity is the one in `store`.
    pub fn new(store: S, address: Address, rng: R, clock: C) -> Self {
        Self {
            store,
            address,
            rng: Mutex::new(rng),
            clock,
            versions: Versions::default(),
            privacy: PrivacyState::default(),
            group: Mutex::new(()),
        }
    }

    /// The same device speaking `versions` (default [`Versions::V4Only`]): which
    /// sessions it starts and accepts, and whether its bundles carry a Kyber prekey.
    #[must_use]
    pub fn with_versions(mut self, versions: Versions) -> Self {
        self.versions = versions;
        self
    }

    /// The protocol versions this device speaks.
    pub fn versions(&self) -> Versions {
        self.versions
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

    /// Starts a session with `remote` from its bundle, of the newest version both the
    /// bundle and [`Device::versions`] allow ([`BundleError::MissingKyberPreKey`] for a
    /// v4-only device and a bundle without a Kyber prekey).
    pub fn start_session(
        &self,
        remote: &Address,
        bundle: &PreKeyBundle,
    ) -> Result<(), BundleError> {
        let now = self.clock.now();
        cipher::start_session(
            &self.store,
            remote,
            bundle,
            self.versions,
            &mut *self.rng()?,
            now,
        )
    }

    /// Trusts `key` for `remote` from now on (after showing the user the change).
    pub fn accept_identity(&self, remote: &Address, key: &IdentityKey) -> Result<(), StoreError> {
        cipher::accept_identity(&self.store, remote, key)
    }

    /// Whether there is a session with `remote`.
    pub fn has_session(&self, remote: &Address) -> Result<bool, StoreError> {
        cipher::has_session(&self.store, remote)
    }

    /// Encrypts `plaintext` as given (no padding, no content framing: for apps with
    /// their own; [`Device::encrypt`] is the default) for `remote`; with a transactional
    /// store the advanced chain is durable before the ciphertext is returned. A v4
    /// session still unacknowledged after 30 days is
    /// [`EncryptError::StaleUnacknowledgedSession`]: fetch a new bundle.
    pub fn encrypt_raw(
        &self,
        remote: &Address,
        plaintext: &[u8],
    ) -> Result<CiphertextMessage, EncryptError> {
        let now = self.clock.now();
        let mut rng = self.rng()?;
        cipher::encrypt(
            &self.store,
            &self.address,
            remote,
            plaintext,
            &mut *rng,
            now,
        )
    }

    /// Decrypts a message from `remote` and returns its plaintext as sent (for apps that
    /// frame their own; [`Device::decrypt`] parses padded content). See
    /// [`cipher::decrypt`]: with a transactional store, committed before it returns,
    /// and a redelivery is marked. A prekey message of a version [`Device::versions`]
    /// does not allow is [`DecryptError::VersionNotAllowed`].
    pub fn decrypt_raw(
        &self,
        remote: &Address,
        message: &CiphertextMessage,
    ) -> Result<Decrypted, DecryptError> {
        if let CiphertextMessage::PreKey(m) = message {
            let version: ProtocolVersion = m.version();
            if !self.versions.allows(version) {
                return Err(DecryptError::VersionNotAllowed { version });
            }
        }
        let now = self.clock.now();
        let mut rng = self.rng().map_err(DecryptError::Store)?;
        cipher::decrypt(&self.store, &self.address, remote, message, &mut *rng, now)
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
            .map_err(|_| StoreError::Poisoned {
                what: "device group lock",
            })
    }

    /// The distribution message of this device's sending chain in the group, in the
    /// given layout, creating and saving the chain on first use (as
    /// [`Device::group_distribution`], which wraps the current layout's in content). An
    /// own chain of the other layout is replaced by a fresh one. For [`Layout::Legacy`]
    /// the messages carry no distribution id: `distribution_id` only names the group in
    /// this store.
    pub fn group_distribution_raw(
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
    /// distribution message, for the remaining members only (send it with
    /// [`Device::encrypt_raw`] after framing it, or wrap it in
    /// [`Body::SenderKeyDistribution`](crate::envelope::Body::SenderKeyDistribution)
    /// content with [`Device::compose`]). The old chain and its signing key are gone
    /// from the store before this returns. Keeps the group's layout.
    pub fn group_rotate(
        &self,
        distribution_id: DistributionId,
    ) -> Result<SenderKeyDistributionMessage, GroupDistributionError> {
        let _serial = self.group_serial()?;
        let mut rng = self.rng()?;
        group::cipher::rotate(&self.store, &self.address, distribution_id, &mut *rng)
    }

    /// Stores the chain a distribution message from `sender` describes, for the group
    /// `distribution_id` (see [`group::cipher::process`]; the current layout's
    /// messages name their group, which must be this one).
    pub fn group_process(
        &self,
        sender: &Address,
        distribution_id: DistributionId,
        message: &SenderKeyDistributionMessage,
    ) -> Result<(), GroupKeyProcessError> {
        let _serial = self.group_serial()?;
        group::cipher::process(&self.store, sender, distribution_id, message)
    }

    /// Encrypts `plaintext` as given (no padding; [`Device::group_encrypt`] is the
    /// default) with this device's sending chain. The advanced chain is saved before the
    /// ciphertext is returned (with a transactional store, by a compare-and-swap
    /// commit), so no chain step is ever used twice.
    pub fn group_encrypt_raw(
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
    /// device's time, and returns the plaintext as sent ([`Device::group_decrypt`] parses padded
    /// content; see [`group::cipher::decrypt`]). The record is changed on a copy and saved only
    /// on success: a failed decrypt writes nothing.
    ///
    /// With a store that offers [`TransactionalGroupStore`] (`SqliteStore`, `PostgresStore`) the
    /// advanced record and the message itself (under [`MessageId::of_group`]) are
    /// committed in one transaction before this returns, and the same bytes delivered
    /// again return the stored plaintext with `redelivered: true`, touching nothing;
    /// once the app acknowledged the message to the store, a redelivery is
    /// [`GroupDecryptError::DuplicateMessage`]. With a plain store a redelivery is
    /// always that duplicate error and `redelivered` is always `false`.
    pub fn group_decrypt_raw(
        &self,
        sender: &Address,
        distribution_id: DistributionId,
        message: &SenderKeyMessage,
    ) -> Result<Decrypted, GroupReceiveError> {
        let now = self.clock.now();
        let _serial = self.group_serial()?;
        group::cipher::decrypt(&self.store, sender, distribution_id, message, now)
    }
}
