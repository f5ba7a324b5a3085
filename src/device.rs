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
//! Groups and sealed sender are not wired in yet: this release of `Device` covers 1:1
//! sessions, business-chat disclosures, the policy state and the account report.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rand_core::{CryptoRng, RngCore};

use crate::business::{
    AttestationError, AttestationVerifier, BusinessId, ChatItem, DisclosureTracker,
    SignedAttestation, TrackError,
};
use crate::cipher::{self, BundleSpec, Decrypted};
use crate::error::{BundleError, DecryptError, EncryptError, StoreError};
use crate::export::{AccountInfo, AccountReport, ReportError, ReportSources};
use crate::keys::IdentityKey;
use crate::policy::{
    AccountState, Activity, ActivityError, ConsentEvent, ConsentLedger, PolicySchedule,
    RecordConsentError, StateError, account_state,
};
use crate::store::ProtocolStore;
use crate::wire::CiphertextMessage;
use crate::{Address, PreKeyBundle, Timestamp};

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

/// One device of one user. `Send + Sync` when its store, RNG and clock are: share it
/// as `Arc<Device<..>>` across threads (the RNG sits behind a mutex).
pub struct Device<S, R, C> {
    store: S,
    address: Address,
    rng: Mutex<R>,
    clock: C,
    privacy: Mutex<Privacy>,
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
    ) -> Result<PreKeyBundle, StoreError> {
        let spec = BundleSpec {
            device_id: self.address.device_id(),
            signed_pre_key_id,
            pre_key_id,
        };
        let now = self.clock.now();
        cipher::new_bundle(&self.store, &mut *self.rng()?, spec, now)
    }

    /// Starts a session with `remote` from its bundle.
    pub fn start_session(
        &self,
        remote: &Address,
        bundle: &PreKeyBundle,
    ) -> Result<(), BundleError> {
        let now = self.clock.now();
        cipher::process_bundle(&self.store, remote, bundle, &mut *self.rng()?, now)
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

    /// Decrypts a message from `remote` (see [`cipher::decrypt_message`]: with a
    /// transactional store, committed before it returns, and a redelivery is marked).
    pub fn decrypt(
        &self,
        remote: &Address,
        message: &CiphertextMessage,
    ) -> Result<Decrypted, DecryptError> {
        let now = self.clock.now();
        let mut rng = self.rng().map_err(DecryptError::Store)?;
        cipher::decrypt_message(&self.store, remote, message, &mut *rng, now)
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
