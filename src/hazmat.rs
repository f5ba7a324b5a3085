//! Low-level building blocks. **Hazardous material.**
//!
//! # Warning
//!
//! Everything here skips a check or a step that the rest of the API makes for you. Each
//! item is correct for the few callers that need it (interop tests, other protocols
//! built on the same keys, importers of foreign state) and a security bug for the rest:
//!
//! - [`xeddsa_sign`] signs any bytes with any private key, identity keys included. An
//!   identity signature over bytes a peer chose can be a valid signed prekey (`0x05 ‖
//!   key`), which lets that peer impersonate the identity's owner to new contacts. The
//!   library signs prekeys itself ([`SignedPreKeyRecord::generate`]).
//! - [`open_unvalidated`] decrypts a sealed-sender message without checking the
//!   sender certificate: the sender it names is unauthenticated. Use
//!   [`sealed::open`](crate::sealed::open) (or `Device::unseal`).
//! - [`Session`] is one Double Ratchet state on its own. It knows nothing of the earlier
//!   states a peer may still send to, of prekey re-initiation or of identity trust; a
//!   [`SessionRecord`](crate::SessionRecord) or a store-driven call keeps all of that.
//!   Only a shared `&Session` is reachable from a record ([`SessionRecord::current`]),
//!   for inspection; a clone that encrypts forks the chain and reuses message keys.
//! - [`public_key_unchecked`] takes 32 bytes as a Curve25519 public key without refusing
//!   the non-canonical encodings, which alias real keys (bit 255 and values from p up
//!   name the same point as a canonical key). Use
//!   [`PublicKey::try_from_x25519`] or `PublicKey::try_from(&[u8])`.
//!
//! [`SignedPreKeyRecord::generate`]: crate::keys::SignedPreKeyRecord::generate
//! [`SessionRecord::current`]: crate::SessionRecord::current

use rand_core::{CryptoRng, RngCore};

use crate::keys::{IdentityKeyPair, PrivateKey, PublicKey, SIGNATURE_LEN};
use crate::sealed::{SealedOpenError, UnidentifiedSenderMessageContent};

pub use crate::session::ratchet::Session;

/// An XEdDSA signature by `key` over `message`, whatever the bytes. See the
/// [module warning](self): never sign bytes a peer chose with an identity key.
pub fn xeddsa_sign<R: RngCore + CryptoRng>(
    key: &PrivateKey,
    rng: &mut R,
    message: &[u8],
) -> [u8; SIGNATURE_LEN] {
    key.sign(rng, message)
}

/// Decrypts a sealed message (v1 `0x11`, v2 `0x22`/`0x23`) to its content **without
/// validating the sender certificate** (libsignal's `sealed_sender_decrypt_to_usmc`).
/// Validate it ([`SenderCertificate::validate`]) before trusting who sent it.
///
/// [`SenderCertificate::validate`]: crate::sealed::SenderCertificate::validate
pub fn open_unvalidated(
    bytes: &[u8],
    recipient: &IdentityKeyPair,
) -> Result<UnidentifiedSenderMessageContent, SealedOpenError> {
    crate::sealed::open_unvalidated(bytes, recipient)
}

/// Wraps 32 bytes as an X25519 public key as they are, canonical or not. See the
/// [module warning](self).
pub fn public_key_unchecked(bytes: [u8; 32]) -> PublicKey {
    PublicKey::from_x25519(bytes)
}
