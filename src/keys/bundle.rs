//! The public keys a device publishes so others can start sessions with it offline.

use super::{IdentityKey, PreKeyRecord, PublicKey, SIGNATURE_LEN, SignedPreKeyRecord};

/// The public half of a signed prekey, with its signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedPreKeyPublic {
    /// Its id.
    pub id: u32,
    /// The public key.
    pub key: PublicKey,
    /// The identity's XEdDSA signature over `key.serialize()`.
    pub signature: [u8; SIGNATURE_LEN],
}

/// The public half of a one-time prekey.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreKeyPublic {
    /// Its id.
    pub id: u32,
    /// The public key.
    pub key: PublicKey,
}

/// What a server hands out for one device: enough to start a session without it online.
/// The signature is checked when the bundle is processed, not here, so a bundle can be
/// carried around as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreKeyBundle {
    /// The device's registration id.
    pub registration_id: u32,
    /// The device id.
    pub device_id: u32,
    /// The device's identity key.
    pub identity_key: IdentityKey,
    /// Its current signed prekey.
    pub signed_pre_key: SignedPreKeyPublic,
    /// A one-time prekey, when the server still had one.
    pub pre_key: Option<PreKeyPublic>,
}

impl PreKeyBundle {
    /// Whether the signed prekey carries a valid signature by the identity key.
    pub fn has_valid_signature(&self) -> bool {
        self.identity_key.verify_signature(
            &self.signed_pre_key.key.serialize(),
            &self.signed_pre_key.signature,
        )
    }
}

impl SignedPreKeyRecord {
    /// The part of this record that goes into a bundle.
    pub fn public(&self) -> SignedPreKeyPublic {
        SignedPreKeyPublic {
            id: self.id(),
            key: self.key_pair().public,
            signature: *self.signature(),
        }
    }
}

impl PreKeyRecord {
    /// The part of this record that goes into a bundle.
    pub fn public(&self) -> PreKeyPublic {
        PreKeyPublic {
            id: self.id(),
            key: self.key_pair().public,
        }
    }
}
