//! One-time and signed prekeys, the halves of X3DH a device publishes in advance.

use prost::Message;
use rand_core::{CryptoRng, RngCore};

use super::error::RecordError;
use super::{
    IdentityKeyPair, KeyPair, PublicKey, SIGNATURE_LEN, private_from_slice, signature_from_slice,
};
use crate::Timestamp;
use crate::proto::storage as pb;

/// A one-time prekey: used by at most one incoming session, then deleted.
#[derive(Clone, Debug)]
pub struct PreKeyRecord {
    id: u32,
    key_pair: KeyPair,
}

impl PreKeyRecord {
    /// A fresh one-time prekey with the given id.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R, id: u32) -> Self {
        Self::new(id, KeyPair::generate(rng))
    }

    /// Wraps an existing key pair.
    pub fn new(id: u32, key_pair: KeyPair) -> Self {
        Self { id, key_pair }
    }

    /// The prekey id that bundles and prekey messages name.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The key pair.
    pub fn key_pair(&self) -> &KeyPair {
        &self.key_pair
    }

    /// The storage encoding (`storage.proto` `PreKeyRecord`). Contains the secret.
    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let mut msg = pb::PreKeyRecord {
            format_version: 1,
            id: self.id,
            public_key: self.key_pair.public.serialize().to_vec(),
            private_key: self.key_pair.private.to_bytes().to_vec(),
        };
        let out = zeroize::Zeroizing::new(msg.encode_to_vec());
        zeroize::Zeroize::zeroize(&mut msg.private_key);
        out
    }

    /// Loads the storage encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        let mut msg = pb::PreKeyRecord::decode(bytes).map_err(|_| RecordError::Malformed)?;
        if msg.format_version != 1 {
            return Err(RecordError::UnsupportedVersion {
                found: msg.format_version,
            });
        }
        let key_pair = load_pair(&msg.public_key, &msg.private_key);
        zeroize::Zeroize::zeroize(&mut msg.private_key);
        Ok(Self::new(msg.id, key_pair?))
    }
}

/// A signed prekey: medium-term, rotated by the app, signed by the identity key so a
/// server cannot substitute its own.
#[derive(Clone, Debug)]
pub struct SignedPreKeyRecord {
    id: u32,
    timestamp: Timestamp,
    key_pair: KeyPair,
    signature: [u8; SIGNATURE_LEN],
}

impl SignedPreKeyRecord {
    /// A fresh signed prekey, signed over its 33-byte serialized public key.
    pub fn generate<R: RngCore + CryptoRng>(
        rng: &mut R,
        identity: &IdentityKeyPair,
        id: u32,
        now: Timestamp,
    ) -> Self {
        let key_pair = KeyPair::generate(rng);
        let signature = identity.sign(rng, &key_pair.public.serialize());
        Self {
            id,
            timestamp: now,
            key_pair,
            signature,
        }
    }

    /// Wraps an existing signed key pair (for importing keys made elsewhere).
    pub fn new(
        id: u32,
        timestamp: Timestamp,
        key_pair: KeyPair,
        signature: [u8; SIGNATURE_LEN],
    ) -> Self {
        Self {
            id,
            timestamp,
            key_pair,
            signature,
        }
    }

    /// The signed prekey id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// When it was made, so apps can rotate it.
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// The key pair.
    pub fn key_pair(&self) -> &KeyPair {
        &self.key_pair
    }

    /// The identity's signature over the serialized public key.
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    /// The storage encoding (`storage.proto` `SignedPreKeyRecord`). Contains the secret.
    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let mut msg = pb::SignedPreKeyRecord {
            format_version: 1,
            id: self.id,
            public_key: self.key_pair.public.serialize().to_vec(),
            private_key: self.key_pair.private.to_bytes().to_vec(),
            signature: self.signature.to_vec(),
            timestamp: self.timestamp.as_millis(),
        };
        let out = zeroize::Zeroizing::new(msg.encode_to_vec());
        zeroize::Zeroize::zeroize(&mut msg.private_key);
        out
    }

    /// Loads the storage encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        let mut msg = pb::SignedPreKeyRecord::decode(bytes).map_err(|_| RecordError::Malformed)?;
        if msg.format_version != 1 {
            return Err(RecordError::UnsupportedVersion {
                found: msg.format_version,
            });
        }
        let key_pair = load_pair(&msg.public_key, &msg.private_key);
        zeroize::Zeroize::zeroize(&mut msg.private_key);
        let signature = signature_from_slice(&msg.signature).map_err(RecordError::Key)?;
        Ok(Self::new(
            msg.id,
            Timestamp::from_millis(msg.timestamp),
            key_pair?,
            signature,
        ))
    }
}

fn load_pair(public: &[u8], private: &[u8]) -> Result<KeyPair, RecordError> {
    let pair = KeyPair::from_private(private_from_slice(private).map_err(RecordError::Key)?);
    let stored = PublicKey::try_from(public).map_err(RecordError::Key)?;
    if stored != pair.public {
        return Err(RecordError::Inconsistent {
            field: "public_key",
        });
    }
    Ok(pair)
}
