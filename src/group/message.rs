//! The group wire messages in both layouts, parsed only into validated types that keep
//! their original bytes (the signature covers the bytes as sent).

use prost::Message;

use super::error::GroupWireError;
use super::{DistributionId, Layout};
use crate::keys::{PublicKey, SIGNATURE_LEN};
use crate::proto::group as pb;

/// The version byte of both group layouts: `(3 << 4) | 3`.
pub const VERSION_BYTE: u8 = 0x33;

/// libsignal's type number for a [`SenderKeyMessage`] (peer protocol, sealed sender).
pub const SENDER_KEY_MESSAGE_TYPE: u8 = 7;

fn check_version(bytes: &[u8], min_len: usize) -> Result<(), GroupWireError> {
    let Some(&first) = bytes.first() else {
        return Err(GroupWireError::TooShort { len: 0 });
    };
    if first != VERSION_BYTE {
        return Err(GroupWireError::UnsupportedVersion { found: first });
    }
    if bytes.len() < min_len {
        return Err(GroupWireError::TooShort { len: bytes.len() });
    }
    Ok(())
}

fn distribution(field: Option<Vec<u8>>) -> Result<DistributionId, GroupWireError> {
    field
        .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
        .map(DistributionId::from_bytes)
        .ok_or(GroupWireError::MissingField {
            field: "distribution_uuid",
        })
}

/// One group message: `0x33` ‖ protobuf ‖ 64-byte XEdDSA signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderKeyMessage {
    layout: Layout,
    distribution_id: Option<DistributionId>,
    chain_id: u32,
    iteration: u32,
    ciphertext: Vec<u8>,
    serialized: Vec<u8>,
}

impl SenderKeyMessage {
    /// Builds and signs a message.
    pub(crate) fn new<R: rand_core::RngCore + rand_core::CryptoRng>(
        layout: Layout,
        distribution_id: Option<DistributionId>,
        chain_id: u32,
        iteration: u32,
        ciphertext: Vec<u8>,
        signing_key: &crate::keys::PrivateKey,
        rng: &mut R,
    ) -> Self {
        let mut serialized = Vec::with_capacity(ciphertext.len() + 48 + SIGNATURE_LEN);
        serialized.push(VERSION_BYTE);
        // Encoding into a Vec only fails for lack of capacity, which Vec grows itself.
        let ciphertext = match layout {
            Layout::Current => {
                let body = pb::SenderKeyMessage {
                    distribution_uuid: distribution_id.map(|d| d.as_bytes().to_vec()),
                    chain_id: Some(chain_id),
                    iteration: Some(iteration),
                    ciphertext: Some(ciphertext),
                };
                let _ = body.encode(&mut serialized);
                body.ciphertext.unwrap_or_default()
            }
            Layout::Legacy => {
                let body = pb::LegacySenderKeyMessage {
                    id: Some(chain_id),
                    iteration: Some(iteration),
                    ciphertext: Some(ciphertext),
                };
                let _ = body.encode(&mut serialized);
                body.ciphertext.unwrap_or_default()
            }
        };
        let signature = signing_key.sign(rng, &serialized);
        serialized.extend_from_slice(&signature);
        Self {
            layout,
            distribution_id,
            chain_id,
            iteration,
            ciphertext,
            serialized,
        }
    }

    /// Parses a message in the given layout.
    pub fn parse(bytes: &[u8], layout: Layout) -> Result<Self, GroupWireError> {
        check_version(bytes, 1 + SIGNATURE_LEN)?;
        let body = &bytes[1..bytes.len() - SIGNATURE_LEN];
        let (distribution_id, chain_id, iteration, ciphertext) = match layout {
            Layout::Current => {
                let m =
                    pb::SenderKeyMessage::decode(body).map_err(|_| GroupWireError::Malformed)?;
                (
                    Some(distribution(m.distribution_uuid)?),
                    m.chain_id,
                    m.iteration,
                    m.ciphertext,
                )
            }
            Layout::Legacy => {
                let m = pb::LegacySenderKeyMessage::decode(body)
                    .map_err(|_| GroupWireError::Malformed)?;
                (None, m.id, m.iteration, m.ciphertext)
            }
        };
        Ok(Self {
            layout,
            distribution_id,
            chain_id: chain_id.ok_or(GroupWireError::MissingField { field: "chain_id" })?,
            iteration: iteration.ok_or(GroupWireError::MissingField { field: "iteration" })?,
            ciphertext: ciphertext.ok_or(GroupWireError::MissingField {
                field: "ciphertext",
            })?,
            serialized: bytes.to_vec(),
        })
    }

    /// Parses a message in the older WhatsApp-style layout.
    pub fn parse_legacy(bytes: &[u8]) -> Result<Self, GroupWireError> {
        Self::parse(bytes, Layout::Legacy)
    }

    /// The layout the message was parsed in or made for.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The distribution id (current layout only).
    pub fn distribution_id(&self) -> Option<DistributionId> {
        self.distribution_id
    }

    /// The sender's chain id (`id` in the older layout).
    pub fn chain_id(&self) -> u32 {
        self.chain_id
    }

    /// The position in the chain.
    pub fn iteration(&self) -> u32 {
        self.iteration
    }

    /// The AES-256-CBC ciphertext.
    pub fn ciphertext(&self) -> &[u8] {
        &self.ciphertext
    }

    /// The bytes as sent, signature included.
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }

    /// Whether the signature verifies under `key`.
    pub(crate) fn verify(&self, key: &PublicKey) -> bool {
        let split = self.serialized.len() - SIGNATURE_LEN;
        key.verify_signature(&self.serialized[..split], &self.serialized[split..])
    }
}

impl TryFrom<&[u8]> for SenderKeyMessage {
    type Error = GroupWireError;

    /// Parses the current libsignal layout.
    fn try_from(bytes: &[u8]) -> Result<Self, GroupWireError> {
        Self::parse(bytes, Layout::Current)
    }
}

/// What a sender hands each member (over the pairwise sessions) so they can read its
/// group messages: `0x33` ‖ protobuf. Contains the chain key: treat it as secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SenderKeyDistributionMessage {
    layout: Layout,
    distribution_id: Option<DistributionId>,
    chain_id: u32,
    iteration: u32,
    chain_key: zeroize::Zeroizing<[u8; 32]>,
    signing_key: PublicKey,
    serialized: zeroize::Zeroizing<Vec<u8>>,
}

impl SenderKeyDistributionMessage {
    pub(crate) fn new(
        layout: Layout,
        distribution_id: Option<DistributionId>,
        chain_id: u32,
        iteration: u32,
        chain_key: [u8; 32],
        signing_key: PublicKey,
    ) -> Self {
        let mut serialized = zeroize::Zeroizing::new(Vec::with_capacity(96));
        serialized.push(VERSION_BYTE);
        match layout {
            Layout::Current => {
                let _ = pb::SenderKeyDistributionMessage {
                    distribution_uuid: distribution_id.map(|d| d.as_bytes().to_vec()),
                    chain_id: Some(chain_id),
                    iteration: Some(iteration),
                    chain_key: Some(chain_key.to_vec()),
                    signing_key: Some(signing_key.serialize().to_vec()),
                }
                .encode(&mut *serialized);
            }
            Layout::Legacy => {
                let _ = pb::LegacySenderKeyDistributionMessage {
                    id: Some(chain_id),
                    iteration: Some(iteration),
                    chain_key: Some(chain_key.to_vec()),
                    signing_key: Some(signing_key.serialize().to_vec()),
                }
                .encode(&mut *serialized);
            }
        }
        Self {
            layout,
            distribution_id,
            chain_id,
            iteration,
            chain_key: zeroize::Zeroizing::new(chain_key),
            signing_key,
            serialized,
        }
    }

    /// Parses a distribution message in the given layout.
    pub fn parse(bytes: &[u8], layout: Layout) -> Result<Self, GroupWireError> {
        check_version(bytes, 2)?;
        let body = &bytes[1..];
        let (distribution_id, chain_id, iteration, chain_key, signing_key) = match layout {
            Layout::Current => {
                let m = pb::SenderKeyDistributionMessage::decode(body)
                    .map_err(|_| GroupWireError::Malformed)?;
                (
                    Some(distribution(m.distribution_uuid)?),
                    m.chain_id,
                    m.iteration,
                    m.chain_key,
                    m.signing_key,
                )
            }
            Layout::Legacy => {
                let m = pb::LegacySenderKeyDistributionMessage::decode(body)
                    .map_err(|_| GroupWireError::Malformed)?;
                (None, m.id, m.iteration, m.chain_key, m.signing_key)
            }
        };
        let chain_key = chain_key
            .map(zeroize::Zeroizing::new)
            .and_then(|k| <[u8; 32]>::try_from(k.as_slice()).ok())
            .ok_or(GroupWireError::MissingField { field: "chain_key" })?;
        let signing_key = signing_key.ok_or(GroupWireError::MissingField {
            field: "signing_key",
        })?;
        Ok(Self {
            layout,
            distribution_id,
            chain_id: chain_id.ok_or(GroupWireError::MissingField { field: "chain_id" })?,
            iteration: iteration.ok_or(GroupWireError::MissingField { field: "iteration" })?,
            chain_key: zeroize::Zeroizing::new(chain_key),
            signing_key: PublicKey::try_from(signing_key.as_slice())
                .map_err(GroupWireError::InvalidKey)?,
            serialized: zeroize::Zeroizing::new(bytes.to_vec()),
        })
    }

    /// Parses a distribution message in the older WhatsApp-style layout.
    pub fn parse_legacy(bytes: &[u8]) -> Result<Self, GroupWireError> {
        Self::parse(bytes, Layout::Legacy)
    }

    /// The layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The distribution id (current layout only).
    pub fn distribution_id(&self) -> Option<DistributionId> {
        self.distribution_id
    }

    /// The sender's chain id.
    pub fn chain_id(&self) -> u32 {
        self.chain_id
    }

    /// The chain position this message starts the receiver at.
    pub fn iteration(&self) -> u32 {
        self.iteration
    }

    pub(crate) fn chain_key(&self) -> &[u8; 32] {
        &self.chain_key
    }

    /// The sender's public signing key for this chain.
    pub fn signing_key(&self) -> &PublicKey {
        &self.signing_key
    }

    /// The bytes as sent.
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }
}

impl TryFrom<&[u8]> for SenderKeyDistributionMessage {
    type Error = GroupWireError;

    /// Parses the current libsignal layout.
    fn try_from(bytes: &[u8]) -> Result<Self, GroupWireError> {
        Self::parse(bytes, Layout::Current)
    }
}

impl std::fmt::Debug for SenderKeyDistributionMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderKeyDistributionMessage")
            .field("layout", &self.layout)
            .field("distribution_id", &self.distribution_id)
            .field("chain_id", &self.chain_id)
            .field("iteration", &self.iteration)
            .field("chain_key", &"***")
            .field("signing_key", &self.signing_key)
            .finish()
    }
}
