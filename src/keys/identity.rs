//! Long-term identity keys.

use prost::Message;
use rand_core::{CryptoRng, RngCore};

use super::error::{KeyError, RecordError};
use super::{KeyPair, PrivateKey, PublicKey, SIGNATURE_LEN, private_from_slice};
use crate::proto::storage as pb;

/// A device's long-term public identity key. Comparing two of them is how a user learns
/// that a contact's device changed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct IdentityKey(PublicKey);

impl IdentityKey {
    /// Wraps a public key as an identity key.
    pub fn new(key: PublicKey) -> Self {
        Self(key)
    }

    /// The underlying public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.0
    }

    /// The 33-byte Signal encoding.
    pub fn serialize(&self) -> [u8; super::PUBLIC_KEY_LEN] {
        self.0.serialize()
    }

    /// Checks an XEdDSA signature by this identity.
    pub fn verify_signature(&self, message: &[u8], signature: &[u8]) -> bool {
        self.0.verify_signature(message, signature)
    }
}

impl TryFrom<&[u8]> for IdentityKey {
    type Error = KeyError;

    fn try_from(bytes: &[u8]) -> Result<Self, KeyError> {
        PublicKey::try_from(bytes).map(Self)
    }
}

/// A device's identity key pair. The private half zeroizes on drop and never prints.
#[derive(Clone, Debug)]
pub struct IdentityKeyPair {
    identity: IdentityKey,
    private: PrivateKey,
}

impl IdentityKeyPair {
    /// A fresh random identity.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        Self::from_private(PrivateKey::generate(rng))
    }

    /// Rebuilds the pair from its private key.
    pub fn from_private(private: PrivateKey) -> Self {
        let kp = KeyPair::from_private(private);
        Self {
            identity: IdentityKey(kp.public),
            private: kp.private,
        }
    }

    /// The public identity.
    pub fn identity_key(&self) -> &IdentityKey {
        &self.identity
    }

    /// The private key.
    pub fn private_key(&self) -> &PrivateKey {
        &self.private
    }

    /// An XEdDSA signature by this identity over any bytes: signing what a peer chose
    /// can forge a signed prekey, so it is public only as
    /// [`hazmat::xeddsa_sign`](crate::hazmat::xeddsa_sign) of [`Self::private_key`].
    pub(crate) fn sign<R: RngCore + CryptoRng>(
        &self,
        rng: &mut R,
        message: &[u8],
    ) -> [u8; SIGNATURE_LEN] {
        self.private.sign(rng, message)
    }

    /// The storage encoding (`storage.proto` `IdentityKeyPair`). Contains the secret.
    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let msg = pb::IdentityKeyPair {
            format_version: 1,
            public_key: self.identity.serialize().to_vec(),
            private_key: self.private.to_bytes().to_vec(),
        };
        let out = zeroize::Zeroizing::new(msg.encode_to_vec());
        let mut msg = msg;
        zeroize::Zeroize::zeroize(&mut msg.private_key);
        out
    }

    /// Loads the storage encoding, checking that the halves belong together.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        let mut msg = pb::IdentityKeyPair::decode(bytes).map_err(|_| RecordError::Malformed)?;
        if msg.format_version != 1 {
            return Err(RecordError::UnsupportedVersion {
                found: msg.format_version,
            });
        }
        let private = private_from_slice(&msg.private_key);
        zeroize::Zeroize::zeroize(&mut msg.private_key);
        let pair = Self::from_private(private.map_err(RecordError::Key)?);
        let stored = IdentityKey::try_from(&msg.public_key[..]).map_err(RecordError::Key)?;
        if stored != pair.identity {
            return Err(RecordError::Inconsistent {
                field: "public_key",
            });
        }
        Ok(pair)
    }
}
