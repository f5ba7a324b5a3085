//! Session operations against a [`ProtocolStore`]: each loads what it needs, works on a
//! copy, and saves only after it succeeded, so a failure leaves the store untouched.
//!
//! Identities are trusted on first use; after that a different key for the same address
//! is refused with an `UntrustedIdentity` error carrying both keys, until the app calls
//! [`accept_identity`] (after showing the user that the safety number changed).
//!
//! With a plain store, operations on the same address must not run concurrently (each
//! is load, change, save); different addresses may. A store with a
//! [`crate::store::TransactionalStore`] (such as `SqliteStore`) makes every operation one
//! atomic commit with a compare-and-swap on the session, so any mix of concurrent
//! operations is safe, and [`decrypt`] keeps each decrypted message in the same
//! transaction: a message delivered again (say after a crash) yields the stored plaintext,
//! marked as a redelivery, and never steps the ratchet twice.
//!
//! Protocol v4 binds both parties' addresses into prekey messages (when both names are
//! service ids), so [`encrypt`] and [`decrypt`] take our own address (`local`); v3
//! ignores it. [`start_session`] picks the newest version both the bundle and a
//! [`Versions`] policy allow.

use rand_core::{CryptoRng, RngCore};

use zeroize::Zeroizing;

use crate::delivery::{Decrypted, retry};
use crate::error::{BundleError, DecryptError, EncryptError, PublishError, StoreError};
use crate::keys::{IdentityKey, KyberPreKeyRecord, PreKeyBundle, PreKeyRecord, SignedPreKeyRecord};
use crate::session::{LocalKeys, SessionRecord, Versions, addresses};
use crate::store::{Commit, CommitOutcome, KyberPreKeyUse, MessageId, NewMessage, ProtocolStore};
use crate::wire::{ADDRESSES_LEN, CiphertextMessage, PreKeySignalMessage, SignalMessage};
use crate::{Address, Timestamp};

/// Which keys a new bundle gets: `BundleSpec::new(device_id, signed_pre_key_id)`, plus
/// [`with_pre_key`](Self::with_pre_key) for a one-time prekey and
/// [`with_kyber_pre_key`](Self::with_kyber_pre_key) for a Kyber prekey (protocol v4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BundleSpec {
    /// Our device id, as the bundle names it.
    pub device_id: u32,
    /// Id for the new signed prekey.
    pub signed_pre_key_id: u32,
    /// Id for a new one-time prekey, or `None` for a bundle without one.
    pub pre_key_id: Option<u32>,
    /// Id for a new Kyber prekey, or `None` for a v3-only bundle.
    pub kyber_pre_key_id: Option<u32>,
    /// Whether that Kyber prekey is a last-resort key (kept after use) rather than a
    /// one-time key.
    pub kyber_last_resort: bool,
}

impl BundleSpec {
    /// A bundle for `device_id` with a new signed prekey under `signed_pre_key_id` and
    /// no one-time prekey.
    pub const fn new(device_id: u32, signed_pre_key_id: u32) -> Self {
        Self {
            device_id,
            signed_pre_key_id,
            pre_key_id: None,
            kyber_pre_key_id: None,
            kyber_last_resort: false,
        }
    }

    /// Also makes a one-time prekey under `id` (`None`: none).
    #[must_use]
    pub const fn with_pre_key(mut self, id: Option<u32>) -> Self {
        self.pre_key_id = id;
        self
    }

    /// Also makes a Kyber prekey under `id` (`None`: none), last-resort or one-time.
    #[must_use]
    pub const fn with_kyber_pre_key(mut self, id: Option<u32>, last_resort: bool) -> Self {
        self.kyber_pre_key_id = id;
        self.kyber_last_resort = last_resort;
        self
    }
}

/// Makes a fresh signed prekey (and one-time and Kyber prekeys), saves them and returns
/// the bundle to publish. Ids already in the store are refused
/// ([`PublishError::SignedPreKeyIdInUse`], [`PublishError::PreKeyIdInUse`],
/// [`PublishError::KyberPreKeyIdInUse`]) before anything is saved: replacing a published
/// key would make every session started from the old bundle fail. A Kyber prekey needs a
/// store with [`PreKeyStore::kyber_pre_keys`](crate::store::PreKeyStore::kyber_pre_keys) ([`PublishError::NoKyberStore`]).
pub fn publish_bundle<S: ProtocolStore + ?Sized, R: RngCore + CryptoRng>(
    store: &S,
    rng: &mut R,
    spec: &BundleSpec,
    now: Timestamp,
) -> Result<PreKeyBundle, PublishError> {
    if store.signed_pre_key(spec.signed_pre_key_id)?.is_some() {
        return Err(PublishError::SignedPreKeyIdInUse {
            id: spec.signed_pre_key_id,
        });
    }
    if let Some(id) = spec.pre_key_id {
        if store.pre_key(id)?.is_some() {
            return Err(PublishError::PreKeyIdInUse { id });
        }
    }
    let kyber_store = match spec.kyber_pre_key_id {
        Some(id) => {
            let kyber = store.kyber_pre_keys().ok_or(PublishError::NoKyberStore)?;
            if kyber.kyber_pre_key(id)?.is_some() {
                return Err(PublishError::KyberPreKeyIdInUse { id });
            }
            Some(kyber)
        }
        None => None,
    };
    let identity = store.local_identity()?;
    let registration_id = store.local_registration_id()?;
    let signed = SignedPreKeyRecord::generate(rng, &identity, spec.signed_pre_key_id, now);
    let pre_key = spec.pre_key_id.map(|id| PreKeyRecord::generate(rng, id));
    let kyber = spec
        .kyber_pre_key_id
        .map(|id| KyberPreKeyRecord::generate(rng, &identity, id, now));
    // The one-time keys first: if the signed prekey then fails to save, the bundle is
    // never returned and the orphan keys are harmless.
    if let Some(record) = &pre_key {
        store.save_pre_key(record)?;
    }
    if let (Some(record), Some(kyber_store)) = (&kyber, kyber_store) {
        kyber_store.save_kyber_pre_key(record.id(), &record.to_bytes(), spec.kyber_last_resort)?;
    }
    store.save_signed_pre_key(&signed)?;
    let mut bundle = PreKeyBundle::new(
        registration_id,
        spec.device_id,
        *identity.identity_key(),
        signed.public(),
    );
    bundle.pre_key = pre_key.as_ref().map(PreKeyRecord::public);
    bundle.kyber_pre_key = kyber.as_ref().map(KyberPreKeyRecord::public);
    Ok(bundle)
}

/// `Err((known, received))` when `address` is known under another identity key. The
/// known key is the trusted identity, or, when the store has none but holds a session
/// with `address` (`session`: the session's newest remote identity), that session's: a
/// lost or deleted identity row never turns a new key into a first use.
fn check_trust<S: ProtocolStore + ?Sized>(
    store: &S,
    address: &Address,
    received: &IdentityKey,
    session: Option<&IdentityKey>,
) -> Result<Result<(), (IdentityKey, IdentityKey)>, StoreError> {
    Ok(match store.identity(address)?.as_ref().or(session) {
        Some(known) if known != received => Err((*known, *received)),
        _ => Ok(()),
    })
}

/// The remote identity of the newest state `record` holds, if any.
fn session_identity(record: Option<&SessionRecord>) -> Option<IdentityKey> {
    record?.states().next().map(|s| *s.remote_identity())
}

/// What one attempt of an operation decided.
enum Attempt<T> {
    /// Save this change, then return `T`.
    Save(Box<Change>, T),
    /// Return `T` without saving anything.
    Return(T),
    /// A concurrent operation got in between: load again and redo.
    Redo,
}

/// A new session record and what is saved with it.
struct Change {
    record: SessionRecord,
    identity: Option<IdentityKey>,
    used_pre_key: Option<u32>,
    /// The Kyber prekey use of a new v4 session.
    kyber_use: Option<KyberPreKeyUse>,
    /// The decrypted message to keep for redelivery (transactional stores only).
    message: Option<(MessageId, Zeroizing<Vec<u8>>, Timestamp)>,
}

impl Change {
    fn record(record: SessionRecord) -> Self {
        Self {
            record,
            identity: None,
            used_pre_key: None,
            kyber_use: None,
            message: None,
        }
    }
}

/// Runs `step` on the stored session with `address` and saves the change it returns
/// before returning its output: with a transactional store as one compare-and-swap
/// commit (redoing `step` from the winner's record on a conflict), with a plain store
/// as saves in the order that loses least if one fails (session first).
fn update<S: ProtocolStore + ?Sized, T, E: From<StoreError>>(
    store: &S,
    address: &Address,
    mut step: impl FnMut(Option<SessionRecord>) -> Result<Attempt<T>, E>,
) -> Result<T, E> {
    let txn = store.transactional();
    retry(|| {
        let (stored, version) = match txn {
            Some(txn) => {
                let (record, version) = txn.load_session(address)?;
                (record, Some(version))
            }
            None => (store.session(address)?, None),
        };
        let (change, out) = match step(stored)? {
            Attempt::Save(change, out) => (change, out),
            Attempt::Return(out) => return Ok(Some(out)),
            Attempt::Redo => return Ok(None),
        };
        if let (Some(txn), Some(version)) = (txn, version) {
            let mut commit = Commit::session(address, version, &change.record)
                .with_removed_pre_key(change.used_pre_key)
                .with_kyber_pre_key_use(change.kyber_use);
            if let Some(key) = change.identity.as_ref() {
                commit = commit.with_identity(key);
            }
            if let Some((id, plaintext, now)) = change.message.as_ref() {
                commit = commit.with_message(NewMessage::new(*id, plaintext, *now));
            }
            // On a conflict `out` (a ciphertext, a plaintext) is dropped unseen and the
            // step redone from the winner's state.
            return Ok((txn.commit(&commit)? == CommitOutcome::Committed).then_some(out));
        }
        store.save_session(address, &change.record)?;
        if let Some(id) = change.used_pre_key {
            store.remove_pre_key(id)?;
        }
        if let (Some(used), Some(kyber)) = (change.kyber_use.as_ref(), store.kyber_pre_keys()) {
            // Checked before the decrypt; `false` here means a concurrent operation
            // recorded the same use, which a plain store does not order anyway.
            kyber.mark_kyber_pre_key_used(used)?;
        }
        if let Some(key) = change.identity.as_ref() {
            store.save_identity(address, key)?;
        }
        Ok(Some(out))
    })
}

/// Starts a session with `address` from its bundle (checking the prekey signatures and
/// that the bundle's identity is the trusted one for `address`) under the policy
/// `versions` (see [`SessionRecord::start_session`]).
pub fn start_session<S: ProtocolStore + ?Sized, R: RngCore + CryptoRng>(
    store: &S,
    address: &Address,
    bundle: &PreKeyBundle,
    versions: Versions,
    rng: &mut R,
    now: Timestamp,
) -> Result<(), BundleError> {
    let session = session_identity(store.session(address)?.as_ref());
    if let Err((known, received)) =
        check_trust(store, address, &bundle.identity_key, session.as_ref())?
    {
        return Err(BundleError::UntrustedIdentity { known, received });
    }
    let identity = store.local_identity()?;
    let registration_id = store.local_registration_id()?;
    update(store, address, |stored| {
        let mut record = stored.unwrap_or_default();
        record.start_session((&identity, registration_id), bundle, versions, rng, now)?;
        let mut change = Change::record(record);
        change.identity = Some(bundle.identity_key);
        Ok(Attempt::Save(Box::new(change), ()))
    })
}

/// Encrypts for `address` from `local` (our own address) with the current session at
/// `now`; the advanced chain is saved before the ciphertext is returned. A v4 prekey
/// message binds both addresses when both names are service ids, as libsignal does; a v4
/// session unacknowledged for longer than
/// [`MAX_UNACKNOWLEDGED_SESSION_AGE`](crate::session::limits::MAX_UNACKNOWLEDGED_SESSION_AGE)
/// refuses to send ([`EncryptError::StaleUnacknowledgedSession`]).
pub fn encrypt<S: ProtocolStore + ?Sized, R: RngCore + CryptoRng>(
    store: &S,
    local: &Address,
    address: &Address,
    plaintext: &[u8],
    rng: &mut R,
    now: Timestamp,
) -> Result<CiphertextMessage, EncryptError> {
    let bound = addresses::encode(local, address);
    update(store, address, |stored| {
        let mut record = stored.ok_or(EncryptError::NoSession)?;
        let current = record.current().ok_or(EncryptError::NoSession)?;
        if current.is_stale_unacknowledged(now) {
            return Err(EncryptError::StaleUnacknowledgedSession);
        }
        let remote = *current.remote_identity();
        if let Err((known, received)) = check_trust(store, address, &remote, Some(&remote))? {
            return Err(EncryptError::UntrustedIdentity { known, received });
        }
        let message = record.encrypt_with(plaintext, bound, rng)?;
        Ok(Attempt::Save(Box::new(Change::record(record)), message))
    })
}

/// Trusts `key` for `address` from now on, replacing the previous identity. Call it
/// only after the user was shown the change.
pub fn accept_identity<S: ProtocolStore + ?Sized>(
    store: &S,
    address: &Address,
    key: &IdentityKey,
) -> Result<(), StoreError> {
    store.save_identity(address, key)
}

/// Whether there is a current session with `address`.
pub fn has_session<S: ProtocolStore + ?Sized>(
    store: &S,
    address: &Address,
) -> Result<bool, StoreError> {
    Ok(store
        .session(address)?
        .is_some_and(|r: SessionRecord| r.has_current_session()))
}

/// Decrypts a message from `address` at `local` (our own address), received at `now`.
///
/// With a transactional store the new session state, the consumed one-time prekey, the
/// trusted identity and the message itself (its id and plaintext) are committed in one
/// transaction before this returns; a byte-identical redelivery returns the stored
/// plaintext with `redelivered: true` and touches nothing. Once the app acknowledged
/// the message to the store, a redelivery is [`DecryptError::DuplicateMessage`]. With a
/// plain store `redelivered` is always `false` and a redelivery is that duplicate error.
///
/// A v4 message's addresses, when present, must be (sender = `address`, recipient =
/// `local`), both service ids ([`DecryptError::InvalidMessage`] otherwise). A v4 prekey
/// message uses the Kyber prekey it names; a last-resort Kyber prekey's handshake seen
/// before is [`DecryptError::KyberPreKeyReused`].
pub fn decrypt<S: ProtocolStore + ?Sized, R: RngCore + CryptoRng>(
    store: &S,
    local: &Address,
    address: &Address,
    message: &CiphertextMessage,
    rng: &mut R,
    now: Timestamp,
) -> Result<Decrypted, DecryptError> {
    let bound = addresses::encode(address, local);
    let bound = bound.as_ref();
    let id = MessageId::of(message);
    let txn = store.transactional();
    update(store, address, |stored| {
        if let Some(txn) = txn {
            if let Some(stored) = txn.delivered(address, &id)? {
                // The plaintext is gone once the app acknowledged the message.
                let plaintext = stored.plaintext.ok_or(DecryptError::DuplicateMessage {
                    counter: counter_of(message),
                })?;
                return Ok(Attempt::Return(Decrypted::redelivery(plaintext, id)));
            }
        }
        let attempt = match message {
            CiphertextMessage::Signal(m) => signal_step(store, address, stored, m, bound, rng),
            CiphertextMessage::PreKey(m) => prekey_step(store, address, stored, m, bound, rng),
        };
        let (mut change, plaintext) = match (attempt, txn) {
            (Ok(step), _) => step,
            // Another thread may have committed this very message since the check above.
            (Err(DecryptError::DuplicateMessage { .. }), Some(txn))
                if txn.delivered(address, &id)?.is_some() =>
            {
                return Ok(Attempt::Redo);
            }
            (Err(e), _) => return Err(e),
        };
        if txn.is_some() {
            change.message = Some((id, plaintext.clone(), now));
        }
        Ok(Attempt::Save(
            Box::new(change),
            Decrypted::fresh(plaintext, id),
        ))
    })
}

fn counter_of(message: &CiphertextMessage) -> u32 {
    match message {
        CiphertextMessage::Signal(m) => m.counter(),
        CiphertextMessage::PreKey(m) => m.message().counter(),
    }
}

fn signal_step<S: ProtocolStore + ?Sized, R: RngCore + CryptoRng>(
    store: &S,
    address: &Address,
    record: Option<SessionRecord>,
    message: &SignalMessage,
    bound: Option<&[u8; ADDRESSES_LEN]>,
    rng: &mut R,
) -> Result<(Change, Zeroizing<Vec<u8>>), DecryptError> {
    let mut record = record.ok_or(DecryptError::NoSession)?;
    let before = session_identity(Some(&record));
    let plaintext = record.decrypt_bound(message, bound, rng)?;
    if let Some(current) = record.current() {
        let remote = current.remote_identity();
        if let Err((known, received)) = check_trust(store, address, remote, before.as_ref())? {
            return Err(DecryptError::UntrustedIdentity { known, received });
        }
    }
    Ok((Change::record(record), plaintext))
}

fn prekey_step<S: ProtocolStore + ?Sized, R: RngCore + CryptoRng>(
    store: &S,
    address: &Address,
    record: Option<SessionRecord>,
    message: &PreKeySignalMessage,
    bound: Option<&[u8; ADDRESSES_LEN]>,
    rng: &mut R,
) -> Result<(Change, Zeroizing<Vec<u8>>), DecryptError> {
    let mut record = record.unwrap_or_default();
    let before = session_identity(Some(&record));
    // A message continuing a kept session is checked against that session's identity
    // below, after `decrypt_prekey` made sure the header names it: a relabelled header is
    // a forgery, not an identity change to show the user.
    let continues = record.has_base_key(message.base_key());
    if !continues {
        let header = message.identity_key();
        if let Err((known, received)) = check_trust(store, address, header, before.as_ref())? {
            return Err(DecryptError::UntrustedIdentity { known, received });
        }
    }
    // The Kyber prekey a new v4 session needs; a handshake seen before with a
    // last-resort key is a replay.
    let kyber = match (message.kyber_pre_key_id(), continues) {
        (Some(id), false) => {
            let kyber_store = store
                .kyber_pre_keys()
                .ok_or(DecryptError::UnknownKyberPreKey { id })?;
            let used = KyberPreKeyUse::new(id, message.signed_pre_key_id(), *message.base_key());
            if kyber_store.kyber_pre_key_used(&used)? {
                return Err(DecryptError::KyberPreKeyReused { id });
            }
            match kyber_store.kyber_pre_key(id)? {
                Some(bytes) => Some(
                    KyberPreKeyRecord::from_bytes(&bytes)
                        .map_err(|e| DecryptError::Store(StoreError::Corrupt(e)))?,
                ),
                None => None,
            }
        }
        _ => None,
    };
    let identity = store.local_identity()?;
    let signed = store.signed_pre_key(message.signed_pre_key_id())?;
    let one_time = match message.pre_key_id() {
        Some(id) => store.pre_key(id)?,
        None => None,
    };
    let keys = LocalKeys::new(&identity, store.local_registration_id()?)
        .with_signed_pre_key(signed.as_ref())
        .with_pre_key(one_time.as_ref())
        .with_kyber_pre_key(kyber.as_ref());
    let outcome = record.decrypt_prekey_bound(message, &keys, bound, rng)?;
    // The state that decrypted is current: trust its identity, which its MAC (through
    // X3DH for a new session) authenticated, never the header's.
    let remote = record.current().map(|s| *s.remote_identity());
    if let Some(remote) = &remote {
        if let Err((known, received)) = check_trust(store, address, remote, before.as_ref())? {
            return Err(DecryptError::UntrustedIdentity { known, received });
        }
    }
    let change = Change {
        record,
        identity: remote,
        used_pre_key: outcome.used_pre_key,
        kyber_use: outcome.kyber_pre_key_use,
        message: None,
    };
    Ok((change, outcome.plaintext))
}
