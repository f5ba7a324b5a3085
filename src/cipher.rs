//! Session operations against a [`ProtocolStore`]: each loads what it needs, works on a
//! copy, and saves only after it succeeded, so a failure leaves the store untouched.
//!
//! Identities are trusted on first use; after that a different key for the same address
//! is refused with an `UntrustedIdentity` error carrying both keys, until the app calls
//! [`accept_identity`] (after showing the user that the safety number changed).
//!
//! Operations on the same address must not run concurrently (each is load, change,
//! save); different addresses may.

use rand_core::{CryptoRng, RngCore};

use crate::error::{BundleError, DecryptError, EncryptError, StoreError};
use crate::keys::{IdentityKey, PreKeyBundle, PreKeyRecord, SignedPreKeyRecord};
use crate::session::{LocalKeys, SessionRecord};
use crate::store::ProtocolStore;
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
pub fn decrypt<S: ProtocolStore + ?Sized, R: RngCore + CryptoRng>(
    store: &S,
    address: &Address,
    message: &CiphertextMessage,
    rng: &mut R,
) -> Result<Vec<u8>, DecryptError> {
    match message {
        CiphertextMessage::Signal(m) => decrypt_signal(store, address, m, rng),
        CiphertextMessage::PreKey(m) => decrypt_prekey(store, address, m, rng),
    }
}

fn decrypt_signal<S: ProtocolStore + ?Sized, R: RngCore + CryptoRng>(
    store: &S,
    address: &Address,
    message: &SignalMessage,
    rng: &mut R,
) -> Result<Vec<u8>, DecryptError> {
    let mut record = store.session(address)?.ok_or(DecryptError::NoSession)?;
    let plaintext = record.decrypt(message, rng)?;
    if let Some(current) = record.current() {
        if let Err((known, received)) = check_trust(store, address, current.remote_identity())? {
            return Err(DecryptError::UntrustedIdentity { known, received });
        }
    }
    store.save_session(address, &record)?;
    Ok(plaintext)
}

fn decrypt_prekey<S: ProtocolStore + ?Sized, R: RngCore + CryptoRng>(
    store: &S,
    address: &Address,
    message: &PreKeySignalMessage,
    rng: &mut R,
) -> Result<Vec<u8>, DecryptError> {
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
    let mut record = store.session(address)?.unwrap_or_default();
    let outcome = record.decrypt_prekey(message, &keys, rng)?;
    store.save_session(address, &record)?;
    if let Some(id) = outcome.used_pre_key {
        store.remove_pre_key(id)?;
    }
    store.save_identity(address, message.identity_key())?;
    Ok(outcome.plaintext)
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
