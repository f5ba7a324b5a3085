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
//! - [`pqxdh_responder_secrets`] runs the responder's PQXDH derivation from explicit
//!   keys and hands out the root key, the first chain key and SPQR's initial secret:
//!   with them anyone reads the session. It exists to check confide's derivation byte
//!   for byte against another implementation's; never log, store or send its output.
//!
//! [`SignedPreKeyRecord::generate`]: crate::keys::SignedPreKeyRecord::generate
//! [`SessionRecord::current`]: crate::SessionRecord::current

use rand_core::{CryptoRng, RngCore};

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::DecryptError;
use crate::keys::{
    IdentityKey, IdentityKeyPair, KemCiphertext, KeyPair, KyberPreKeyRecord, PrivateKey, PublicKey,
    SIGNATURE_LEN,
};
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

/// PQXDH's three 32-byte outputs (see [`pqxdh_responder_secrets`]). Zeroized on drop;
/// `Debug` prints `***`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PqxdhSecrets {
    /// The root key (HKDF output bytes 0..32).
    pub root_key: [u8; 32],
    /// The first chain key, index 0 (bytes 32..64).
    pub chain_key: [u8; 32],
    /// SPQR's initial secret, its auth key (bytes 64..96).
    pub spqr_auth_key: [u8; 32],
}

impl std::fmt::Debug for PqxdhSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PqxdhSecrets(***)")
    }
}

/// The responder's PQXDH derivation (v4) from explicit keys: our identity, signed
/// prekey, optional one-time prekey and Kyber prekey, their identity and base key, and
/// the Kyber ciphertext. Refuses what a session would refuse (an all-zero agreement, a
/// base key outside the prime subgroup: [`DecryptError::WeakKey`]). See the
/// [module warning](self): the output reads the session.
#[allow(clippy::too_many_arguments)]
pub fn pqxdh_responder_secrets(
    identity: &IdentityKeyPair,
    signed: &KeyPair,
    one_time: Option<&KeyPair>,
    kyber: &KyberPreKeyRecord,
    their_identity: &IdentityKey,
    their_base: &PublicKey,
    ciphertext: &KemCiphertext,
) -> Result<PqxdhSecrets, DecryptError> {
    let keys = crate::session::x3dh::ResponderKeys {
        identity,
        registration_id: 0,
        signed_pre_key: signed,
        one_time_pre_key: one_time,
        kyber_pre_key: Some(kyber),
    };
    let secrets = crate::session::x3dh::responder_secrets(
        &keys,
        their_identity,
        their_base,
        crate::session::ProtocolVersion::V4,
        Some(ciphertext),
    )?;
    let auth = secrets.spqr_auth_key.ok_or(DecryptError::InvalidMessage)?;
    Ok(PqxdhSecrets {
        root_key: *secrets.root.as_bytes(),
        chain_key: *secrets.chain.key(),
        spqr_auth_key: *auth,
    })
}
