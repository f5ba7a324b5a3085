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
//! operations is safe, and [`decrypt_message`] keeps each decrypted message in the same
//! transaction: a message delivered again (say after a crash) yields the stored plaintext,
//! marked as a redelivery, and never steps the ratchet twice.

use rand_core::{CryptoRng, RngCore};

use crate::error::{BundleError, DecryptError, EncryptError, StoreError};
use crate::keys::{IdentityKey, PreKeyBundle, PreKeyRecord, SignedPreKeyRecord};
use crate::session::{LocalKeys, SessionRecord};
use crate::store::{
    Commit, CommitOutcome, MessageId, NewMessage, ProtocolStore, TransactionalStore,
};
use crate::wire::{CiphertextMessage, PreKeySignalMessage, SignalMessage};
use crate::{Address, Timestamp};

/// Which keys a new bundle gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BundleSpec {
    /// Our device id, as the bundle names it.
    pub device_id: u32,
    /// Id for the new signed prekey.
    pub signed_pre_key_id: u32,
    /// Id for a new one-time prekey, or `None` for a bundle without one.
    pub pre_key_id: Option<u32>,
}

/// Makes a fresh signed prekey (and one-time prekey), saves them and returns the bundle
/// to publish.
pub fn new_bundle<S: ProtocolStore + ?Sized, R: RngCore + CryptoRng>(
    store: &S,
    rng: &mut R,
    spec: BundleSpec,
    now: Timestamp,
) -> Result<PreKeyBundle, StoreError> {
    let identity = store.local_identity()?;
    let signed = SignedPreKeyRecord::generate(rng, &identity, spec.signed_pre_key_id, now);
    store.save_signed_pre_key(&signed)?;
    let pre_key = match spec.pre_key_id {
        Some(id) => {
            let record = PreKeyRecord::generate(rng, id);
            store.save_pre_key(&record)?;
            Some(record.public())
        }
        None => None,
    };
    Ok(PreKeyBundle {
        registration_id: store.local_registration_id()?,
        device_id: spec.device_id,
        identity_key: *identity.identity_key(),
        signed_pre_key: signed.public(),
        pre_key,
    })
}

/// `Err((known, received))` when `address` is known under another identity key.
fn check_trust<S: ProtocolStore + ?Sized>(
    store: &S,
    address: &Address,
    received: &IdentityKey,
) -> Result<Result<(), (IdentityKey, IdentityKey)>, StoreError> {
    Ok(match store.identity(address)? {
        Some(known) if known != *received => Err((known, *received)),
        _ => Ok(()),
    })
}

/// Starts a session with `address` from its bundle.
pub fn process_bundle<S: ProtocolStore + ?Sized, R: RngCore + CryptoRng>(
    store: &S,
    address: &Address,
    bundle: &PreKeyBundle,
    rng: &mut R,
    now: Timestamp,
) -> Result<(), BundleError> {
    if let Err((known, received)) = check_trust(store, address, &bundle.identity_key)? {
        return Err(BundleError::UntrustedIdentity { known, received });
    }
    if let Some(txn) = store.transactional() {
        return process_bundle_committed(store, txn, address, bundle, rng, now);
    }
    let identity = store.local_identity()?;
    let registration_id = store.local_registration_id()?;
    let mut record = store.session(address)?.unwrap_or_default();
    record.process_bundle((&identity, registration_id), bundle, rng, now)?;
    store.save_identity(address, &bundle.identity_key)?;
    store.save_session(address, &record)?;
    Ok(())
}

/// Encrypts for `address` with the current session.
pub fn encrypt<S: ProtocolStore + ?Sized>(
    store: &S,
    address: &Address,
    plaintext: &[u8],
) -> Result<CiphertextMessage, EncryptError> {
    if let Some(txn) = store.transactional() {
        return encrypt_committed(store, txn, address, plaintext);
    }
    let mut record = store.session(address)?.ok_or(EncryptError::NoSession)?;
    let remote = *record
        .current()
        .ok_or(EncryptError::NoSession)?
        .remote_identity();
    if let Err((known, received)) = check_trust(store, address, &remote)? {
        return Err(EncryptError::UntrustedIdentity { known, received });
    }
    let message = record.encrypt(plaintext)?;
    store.save_session(address, &record)?;
    Ok(message)
}

/// Decrypts a message from `address`.
///
/// With a transactional store a byte-identical redelivery returns the stored plaintext
/// (use [`decrypt_message`] to tell it apart); with a plain store it is refused as
/// [`DecryptError::DuplicateMessage`].
pub fn decrypt<S: ProtocolStore + ?Sized, R: RngCore + CryptoRng>(
    store: &S,
    address: &Address,
    message: &CiphertextMessage,
    rng: &mut R,
) -> Result<Vec<u8>, DecryptError> {
    if let Some(txn) = store.transactional() {
        let now = txn_clock_fallback();
        return decrypt_committed(store, txn, address, message, rng, now)
            .map(|d| d.plaintext.to_vec());
    }
    decrypt_plain(store, address, message, rng)
}

/// Decrypt against a plain store: the same steps as the transactional path, then the
/// saves, in the order that loses least if one fails (session first).
fn decrypt_plain<S: ProtocolStore + ?Sized, R: RngCore + CryptoRng>(
    store: &S,
    address: &Address,
    message: &CiphertextMessage,
    rng: &mut R,
) -> Result<Vec<u8>, DecryptError> {
    let record = store.session(address)?;
    let (record, plaintext, used_pre_key, identity) = match message {
        CiphertextMessage::Signal(m) => signal_step(store, address, record, m, rng)?,
        CiphertextMessage::PreKey(m) => prekey_step(store, address, record, m, rng)?,
    };
    store.save_session(address, &record)?;
    if let Some(id) = used_pre_key {
        store.remove_pre_key(id)?;
    }
    if let Some(key) = identity {
        store.save_identity(address, &key)?;
    }
    Ok(plaintext.to_vec())
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

/// A decrypted message.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decrypted {
    /// The plaintext.
    pub plaintext: zeroize::Zeroizing<Vec<u8>>,
    /// `true` when this exact message was decrypted before and the plaintext comes from
    /// the store (a redelivery, typically after a crash before the app saved it): show
    /// it only if the app does not have it yet.
    pub redelivered: bool,
}

impl std::fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decrypted")
            .field(
                "plaintext",
                &format_args!("<{} bytes>", self.plaintext.len()),
            )
            .field("redelivered", &self.redelivered)
            .finish()
    }
}

/// Decrypts a message from `address`, received at `now`.
///
/// With a transactional store the new session state, the consumed one-time prekey, the
/// trusted identity and the message itself (its id and plaintext) are committed in one
/// transaction before this returns; a byte-identical redelivery returns the stored
/// plaintext with `redelivered: true` and touches nothing. Once the app acknowledged
/// the message to the store, a redelivery is [`DecryptError::DuplicateMessage`]. With a
/// plain store this is [`decrypt`] and `redelivered` is always `false`.
pub fn decrypt_message<S: ProtocolStore + ?Sized, R: RngCore + CryptoRng>(
    store: &S,
    address: &Address,
    message: &CiphertextMessage,
    rng: &mut R,
    now: Timestamp,
) -> Result<Decrypted, DecryptError> {
    if let Some(txn) = store.transactional() {
        return decrypt_committed(store, txn, address, message, rng, now);
    }
    let plaintext = decrypt(store, address, message, rng)?;
    Ok(Decrypted {
        plaintext: zeroize::Zeroizing::new(plaintext),
        redelivered: false,
    })
}

/// How often an operation is redone after a compare-and-swap conflict before giving up.
const MAX_COMMIT_ATTEMPTS: usize = 64;

/// The transactional store kept conflicting: other operations on the same address won
/// every one of its 64 attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("commit kept conflicting with concurrent operations ({attempts} attempts)")]
#[non_exhaustive]
pub struct ContentionError {
    /// Attempts made.
    pub attempts: usize,
}

fn contention() -> StoreError {
    StoreError::Contention {
        attempts: MAX_COMMIT_ATTEMPTS,
    }
}

/// `decrypt` has no clock argument; a message it stores is stamped with the epoch.
fn txn_clock_fallback() -> Timestamp {
    Timestamp::from_millis(0)
}

fn process_bundle_committed<S: ProtocolStore + ?Sized, R: RngCore + CryptoRng>(
    store: &S,
    txn: &dyn TransactionalStore,
    address: &Address,
    bundle: &PreKeyBundle,
    rng: &mut R,
    now: Timestamp,
) -> Result<(), BundleError> {
    let identity = store.local_identity()?;
    let registration_id = store.local_registration_id()?;
    for _ in 0..MAX_COMMIT_ATTEMPTS {
        let (record, version) = txn.load_session(address)?;
        let mut record = record.unwrap_or_default();
        record.process_bundle((&identity, registration_id), bundle, rng, now)?;
        let commit = Commit::session(address, version, &record).with_identity(&bundle.identity_key);
        if txn.commit(&commit)? == CommitOutcome::Committed {
            return Ok(());
        }
    }
    Err(contention().into())
}

fn encrypt_committed<S: ProtocolStore + ?Sized>(
    store: &S,
    txn: &dyn TransactionalStore,
    address: &Address,
    plaintext: &[u8],
) -> Result<CiphertextMessage, EncryptError> {
    for _ in 0..MAX_COMMIT_ATTEMPTS {
        let (record, version) = txn.load_session(address)?;
        let mut record = record.ok_or(EncryptError::NoSession)?;
        let remote = *record
            .current()
            .ok_or(EncryptError::NoSession)?
            .remote_identity();
        if let Err((known, received)) = check_trust(store, address, &remote)? {
            return Err(EncryptError::UntrustedIdentity { known, received });
        }
        let message = record.encrypt(plaintext)?;
        // The advanced chain is durable before the ciphertext leaves; on a conflict the
        // ciphertext is dropped unseen and the operation redone from the winner's state.
        if txn.commit(&Commit::session(address, version, &record))? == CommitOutcome::Committed {
            return Ok(message);
        }
    }
    Err(contention().into())
}

/// The stored plaintext of an earlier delivery of `id`, or a duplicate error once the
/// app acknowledged it.
fn redelivery(
    txn: &dyn TransactionalStore,
    address: &Address,
    id: &MessageId,
    message: &CiphertextMessage,
) -> Result<Option<Decrypted>, DecryptError> {
    Ok(match txn.delivered(address, id)? {
        Some(d) => match d.plaintext {
            Some(plaintext) => Some(Decrypted {
                plaintext,
                redelivered: true,
            }),
            None => {
                return Err(DecryptError::DuplicateMessage {
                    counter: counter_of(message),
                });
            }
        },
        None => None,
    })
}

fn counter_of(message: &CiphertextMessage) -> u32 {
    match message {
        CiphertextMessage::Signal(m) => m.counter(),
        CiphertextMessage::PreKey(m) => m.message().counter(),
    }
}

fn decrypt_committed<S: ProtocolStore + ?Sized, R: RngCore + CryptoRng>(
    store: &S,
    txn: &dyn TransactionalStore,
    address: &Address,
    message: &CiphertextMessage,
    rng: &mut R,
    now: Timestamp,
) -> Result<Decrypted, DecryptError> {
    let id = MessageId::of(message);
    for _ in 0..MAX_COMMIT_ATTEMPTS {
        if let Some(d) = redelivery(txn, address, &id, message)? {
            return Ok(d);
        }
        let (record, version) = txn.load_session(address)?;
        let attempt = match message {
            CiphertextMessage::Signal(m) => signal_step(store, address, record, m, rng),
            CiphertextMessage::PreKey(m) => prekey_step(store, address, record, m, rng),
        };
        let (record, plaintext, used_pre_key, identity) = match attempt {
            Ok(step) => step,
            // Another thread may have committed this very message since the check above.
            Err(DecryptError::DuplicateMessage { .. })
                if txn.delivered(address, &id)?.is_some() =>
            {
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut commit = Commit::session(address, version, &record)
            .with_removed_pre_key(used_pre_key)
            .with_message(NewMessage::new(id, &plaintext, now));
        if let Some(key) = identity.as_ref() {
            commit = commit.with_identity(key);
        }
        if txn.commit(&commit)? == CommitOutcome::Committed {
            return Ok(Decrypted {
                plaintext,
                redelivered: false,
            });
        }
    }
    Err(contention().into())
}

/// A decrypt's result before commit: the new record, the plaintext, the consumed prekey
/// and the identity to trust.
type Step = (
    SessionRecord,
    zeroize::Zeroizing<Vec<u8>>,
    Option<u32>,
    Option<IdentityKey>,
);

fn signal_step<S: ProtocolStore + ?Sized, R: RngCore + CryptoRng>(
    store: &S,
    address: &Address,
    record: Option<SessionRecord>,
    message: &SignalMessage,
    rng: &mut R,
) -> Result<Step, DecryptError> {
    let mut record = record.ok_or(DecryptError::NoSession)?;
    let plaintext = zeroize::Zeroizing::new(record.decrypt(message, rng)?);
    if let Some(current) = record.current() {
        if let Err((known, received)) = check_trust(store, address, current.remote_identity())? {
            return Err(DecryptError::UntrustedIdentity { known, received });
        }
    }
    Ok((record, plaintext, None, None))
}

fn prekey_step<S: ProtocolStore + ?Sized, R: RngCore + CryptoRng>(
    store: &S,
    address: &Address,
    record: Option<SessionRecord>,
    message: &PreKeySignalMessage,
    rng: &mut R,
) -> Result<Step, DecryptError> {
    if let Err((known, received)) = check_trust(store, address, message.identity_key())? {
        return Err(DecryptError::UntrustedIdentity { known, received });
    }
    let identity = store.local_identity()?;
    let signed = store.signed_pre_key(message.signed_pre_key_id())?;
    let one_time = match message.pre_key_id() {
        Some(id) => store.pre_key(id)?,
        None => None,
    };
    let keys = LocalKeys {
        identity: &identity,
        registration_id: store.local_registration_id()?,
        signed_pre_key: signed.as_ref(),
        pre_key: one_time.as_ref(),
    };
    let mut record = record.unwrap_or_default();
    let outcome = record.decrypt_prekey(message, &keys, rng)?;
    Ok((
        record,
        zeroize::Zeroizing::new(outcome.plaintext),
        outcome.used_pre_key,
        Some(*message.identity_key()),
    ))
}
