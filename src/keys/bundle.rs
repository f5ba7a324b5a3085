//! The public keys a device publishes so others can start sessions with it offline.

use super::error::RecordError;
use super::{
    IdentityKey, KemPublicKey, KyberPreKeyPublic, PreKeyRecord, PublicKey, SIGNATURE_LEN,
    SignedPreKeyRecord,
};

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
///
/// The fields are readable; a bundle is built with [`PreKeyBundle::new`] (and
/// [`with_pre_key`](Self::with_pre_key)) or parsed with [`from_bytes`](Self::from_bytes),
/// so a later field (a post-quantum prekey) breaks no caller.
///
/// ```
/// use confide::keys::{IdentityKeyPair, PreKeyBundle, PreKeyRecord, SignedPreKeyRecord};
/// use confide::{SystemRng, Timestamp};
/// let mut rng = SystemRng::new();
/// let identity = IdentityKeyPair::generate(&mut rng);
/// let now = Timestamp::from_millis(1_700_000_000_000);
/// let signed = SignedPreKeyRecord::generate(&mut rng, &identity, 1, now);
/// let one_time = PreKeyRecord::generate(&mut rng, 7);
/// let bundle = PreKeyBundle::new(1234, 1, *identity.identity_key(), signed.public())
///     .with_pre_key(one_time.public());
/// assert!(bundle.has_valid_signature());
/// assert_eq!(bundle.pre_key.map(|p| p.id), Some(7));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
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
    /// A Kyber prekey (one-time or last-resort), which a v4 session needs.
    pub kyber_pre_key: Option<KyberPreKeyPublic>,
}

impl PreKeyBundle {
    /// A bundle without a one-time prekey; add one with [`with_pre_key`](Self::with_pre_key).
    pub fn new(
        registration_id: u32,
        device_id: u32,
        identity_key: IdentityKey,
        signed_pre_key: SignedPreKeyPublic,
    ) -> Self {
        Self {
            registration_id,
            device_id,
            identity_key,
            signed_pre_key,
            pre_key: None,
            kyber_pre_key: None,
        }
    }

    /// The same bundle carrying the Kyber prekey `kyber_pre_key` (protocol v4).
    #[must_use]
    pub fn with_kyber_pre_key(mut self, kyber_pre_key: KyberPreKeyPublic) -> Self {
        self.kyber_pre_key = Some(kyber_pre_key);
        self
    }

    /// The same bundle carrying the one-time prekey `pre_key`.
    #[must_use]
    pub fn with_pre_key(mut self, pre_key: PreKeyPublic) -> Self {
        self.pre_key = Some(pre_key);
        self
    }

    /// Whether the signed prekey, and the Kyber prekey if any, carry valid signatures by
    /// the identity key.
    pub fn has_valid_signature(&self) -> bool {
        self.identity_key.verify_signature(
            &self.signed_pre_key.key.serialize(),
            &self.signed_pre_key.signature,
        ) && self
            .kyber_pre_key
            .as_ref()
            .is_none_or(|k| k.has_valid_signature(&self.identity_key))
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

impl PreKeyBundle {
    /// A portable encoding (`storage.proto` `PreKeyBundle`), e.g. for an upload or the C ABI.
    pub fn to_bytes(&self) -> Vec<u8> {
        use prost::Message;
        crate::proto::storage::PreKeyBundle {
            format_version: 1,
            registration_id: self.registration_id,
            device_id: self.device_id,
            identity_key: self.identity_key.serialize().to_vec(),
            signed_pre_key_id: self.signed_pre_key.id,
            signed_pre_key: self.signed_pre_key.key.serialize().to_vec(),
            signed_pre_key_signature: self.signed_pre_key.signature.to_vec(),
            pre_key_id: self.pre_key.map(|p| p.id),
            pre_key: self
                .pre_key
                .map(|p| p.key.serialize().to_vec())
                .unwrap_or_default(),
            kyber_pre_key_id: self.kyber_pre_key.as_ref().map(|k| k.id),
            kyber_pre_key: self
                .kyber_pre_key
                .as_ref()
                .map(|k| k.key.serialize())
                .unwrap_or_default(),
            kyber_pre_key_signature: self
                .kyber_pre_key
                .as_ref()
                .map(|k| k.signature.to_vec())
                .unwrap_or_default(),
        }
        .encode_to_vec()
    }

    /// Parses [`PreKeyBundle::to_bytes`]. The signature is checked when the bundle is
    /// processed, not here.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        use prost::Message;
        let msg = crate::proto::storage::PreKeyBundle::decode(bytes)
            .map_err(|_| RecordError::Malformed)?;
        if msg.format_version != 1 {
            return Err(RecordError::UnsupportedVersion {
                found: msg.format_version,
            });
        }
        let key = |b: &[u8]| PublicKey::try_from(b).map_err(RecordError::Key);
        let pre_key = match msg.pre_key_id {
            Some(id) => Some(PreKeyPublic {
                id,
                key: key(&msg.pre_key)?,
            }),
            None if msg.pre_key.is_empty() => None,
            None => return Err(RecordError::Inconsistent { field: "pre_key" }),
        };
        let kyber_pre_key = match msg.kyber_pre_key_id {
            Some(id) => Some(KyberPreKeyPublic {
                id,
                key: KemPublicKey::from_bytes(&msg.kyber_pre_key).map_err(RecordError::Key)?,
                signature: super::signature_from_slice(&msg.kyber_pre_key_signature)
                    .map_err(RecordError::Key)?,
            }),
            None if msg.kyber_pre_key.is_empty() && msg.kyber_pre_key_signature.is_empty() => None,
            None => {
                return Err(RecordError::Inconsistent {
                    field: "kyber_pre_key",
                });
            }
        };
        Ok(Self {
            registration_id: msg.registration_id,
            device_id: msg.device_id,
            identity_key: IdentityKey::new(key(&msg.identity_key)?),
            signed_pre_key: SignedPreKeyPublic {
                id: msg.signed_pre_key_id,
                key: key(&msg.signed_pre_key)?,
                signature: super::signature_from_slice(&msg.signed_pre_key_signature)
                    .map_err(RecordError::Key)?,
            },
            pre_key,
            kyber_pre_key,
        })
    }
}
