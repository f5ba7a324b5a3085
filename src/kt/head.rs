//! The auditor's signed epoch head: Plexi's `SignatureMessage`, signed with Ed25519.
//!
//! Plexi (cloudflare/plexi, `plexi_core/src/lib.rs` `SignatureMessage::to_vec_proto`)
//! signs the prost encoding of its proto2 message `{1 ciphersuite u32, 2 namespace
//! string, 3 timestamp u64 (ms), 4 epoch Epoch{1 inner u64}, 5 digest bytes}`, every field
//! `required` and so always written, in field order. The digest is the directory's root
//! hash at that epoch. [`signed_bytes`] writes exactly those bytes, so a signature from a
//! Plexi auditor verifies here and one made here verifies in Plexi.

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use prost::Message;
use prost::encoding::encode_varint;
use zeroize::Zeroizing;

use crate::kt::{DirectoryTrust, MAX_HEAD_CLOCK_SKEW_MS};
use crate::proto::kt as pb;
use crate::{Timestamp, crypto};

/// Plexi's ciphersuite 0x0001: the message is protobuf-encoded and signed with Ed25519.
pub const CIPHERSUITE_PROTOBUF_ED25519: u32 = 0x0001;

/// The format of [`SignedHead::to_bytes`].
const FORMAT_VERSION: u32 = 1;

/// An auditor's Ed25519 public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AuditorKey([u8; 32]);

impl AuditorKey {
    /// From its 32 bytes; bytes that are not a point on the curve are
    /// [`HeadError::Malformed`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, HeadError> {
        let b: [u8; 32] = bytes.try_into().map_err(|_| HeadError::Malformed)?;
        CompressedEdwardsY(b)
            .decompress()
            .ok_or(HeadError::Malformed)?;
        Ok(Self(b))
    }

    /// Its 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }
}

/// An auditor's Ed25519 signing key (for hosts running an auditor, and tests). The seed
/// zeroizes on drop and never prints.
pub struct AuditorSigningKey {
    seed: Zeroizing<[u8; 32]>,
    public: AuditorKey,
}

impl std::fmt::Debug for AuditorSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditorSigningKey(***)")
    }
}

impl AuditorSigningKey {
    /// From a 32-byte Ed25519 seed (RFC 8032's private key).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let seed = Zeroizing::new(seed);
        // RFC 8032 5.1.5: the public key is the clamped low half of SHA-512(seed) times
        // the base point (computed here, so deriving it cannot fail).
        let h = Zeroizing::new(crypto::sha512(&[seed.as_slice()]));
        let mut scalar = Zeroizing::new([0u8; 32]);
        scalar.copy_from_slice(h.get(..32).unwrap_or(&[0; 32]));
        let public = EdwardsPoint::mul_base_clamped(*scalar)
            .compress()
            .to_bytes();
        Self {
            seed,
            public: AuditorKey(public),
        }
    }

    /// A fresh key from `rng`.
    pub fn generate(rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng)) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut_slice());
        Self::from_seed(*seed)
    }

    /// The public half.
    pub fn public_key(&self) -> AuditorKey {
        self.public
    }

    /// Signs `(namespace, timestamp, epoch, root)` in Plexi's protobuf+Ed25519
    /// ciphersuite. (Should the backend fail to sign, which it does only when out of
    /// memory, the head comes back unsigned and [`SignedHead::verify`] refuses it.)
    pub fn sign(
        &self,
        namespace: &str,
        timestamp: Timestamp,
        epoch: u64,
        root: [u8; 32],
    ) -> SignedHead {
        let head = SignedHead::unsigned(namespace, timestamp, epoch, root);
        match crypto::ed25519_sign(&self.seed, &head.signed_bytes()) {
            Some(sig) => head.with_signature(sig),
            None => head,
        }
    }
}

/// A directory's epoch head as an auditor signed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHead {
    ciphersuite: u32,
    namespace: String,
    timestamp: Timestamp,
    epoch: u64,
    root: [u8; 32],
    signature: Option<[u8; 64]>,
}

/// Appends a protobuf length-delimited field.
fn put_bytes(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag);
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

impl SignedHead {
    /// A head nobody signed yet, in the protobuf+Ed25519 ciphersuite.
    pub fn unsigned(
        namespace: impl Into<String>,
        timestamp: Timestamp,
        epoch: u64,
        root: [u8; 32],
    ) -> Self {
        Self {
            ciphersuite: CIPHERSUITE_PROTOBUF_ED25519,
            namespace: namespace.into(),
            timestamp,
            epoch,
            root,
            signature: None,
        }
    }

    /// The same head with `signature`.
    #[must_use]
    pub fn with_signature(mut self, signature: [u8; 64]) -> Self {
        self.signature = Some(signature);
        self
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// When the auditor signed it.
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// The epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The directory's root hash at that epoch (Plexi's digest).
    pub fn root(&self) -> [u8; 32] {
        self.root
    }

    /// The signature, if any.
    pub fn signature(&self) -> Option<[u8; 64]> {
        self.signature
    }

    /// The bytes the auditor signs: Plexi's `SignatureMessage` as prost encodes it
    /// (proto2, all fields required, so zeros are written too).
    fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.namespace.len());
        out.push(0x08);
        encode_varint(u64::from(self.ciphersuite), &mut out);
        put_bytes(&mut out, 0x12, self.namespace.as_bytes());
        out.push(0x18);
        encode_varint(self.timestamp.as_millis(), &mut out);
        let mut epoch = vec![0x08];
        encode_varint(self.epoch, &mut epoch);
        put_bytes(&mut out, 0x22, &epoch);
        put_bytes(&mut out, 0x2a, &self.root);
        out
    }

    /// Serialized (`proto/kt.proto` `SignedHead`).
    pub fn to_bytes(&self) -> Vec<u8> {
        pb::SignedHead {
            format_version: FORMAT_VERSION,
            message: Some(pb::SignatureMessage {
                ciphersuite: self.ciphersuite,
                namespace: self.namespace.clone(),
                timestamp: self.timestamp.as_millis(),
                epoch: self.epoch,
                digest: self.root.to_vec(),
            }),
            signature: self.signature.map(|s| s.to_vec()).unwrap_or_default(),
        }
        .encode_to_vec()
    }

    /// Parses [`SignedHead::to_bytes`]'s output: a 32-byte root and a signature of 64
    /// bytes or none, else [`HeadError::Malformed`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, HeadError> {
        let p = pb::SignedHead::decode(bytes).map_err(|_| HeadError::Malformed)?;
        if p.format_version != FORMAT_VERSION {
            return Err(HeadError::Malformed);
        }
        let m = p.message.ok_or(HeadError::Malformed)?;
        let root: [u8; 32] = m
            .digest
            .as_slice()
            .try_into()
            .map_err(|_| HeadError::Malformed)?;
        let signature = match p.signature.len() {
            0 => None,
            _ => Some(
                <[u8; 64]>::try_from(p.signature.as_slice()).map_err(|_| HeadError::Malformed)?,
            ),
        };
        Ok(Self {
            ciphersuite: m.ciphersuite,
            namespace: m.namespace,
            timestamp: Timestamp::from_millis(m.timestamp),
            epoch: m.epoch,
            root,
            signature,
        })
    }

    /// Checks the head: the protobuf+Ed25519 ciphersuite, the trusted namespace, a
    /// signature by one of the trusted auditors, no older than `trust.max_head_age_ms` at
    /// `now` and no more than [`MAX_HEAD_CLOCK_SKEW_MS`] ahead of it.
    pub fn verify(&self, trust: &DirectoryTrust, now: Timestamp) -> Result<(), HeadError> {
        if self.ciphersuite != CIPHERSUITE_PROTOBUF_ED25519 {
            return Err(HeadError::UnsupportedCiphersuite(self.ciphersuite));
        }
        if self.namespace != trust.namespace {
            return Err(HeadError::WrongNamespace {
                expected: trust.namespace.clone(),
                got: self.namespace.clone(),
            });
        }
        let sig = self.signature.ok_or(HeadError::Unsigned)?;
        let message = self.signed_bytes();
        if !trust
            .auditors
            .iter()
            .any(|k| crypto::ed25519_verify(&k.0, &message, &sig))
        {
            return Err(HeadError::BadSignature);
        }
        let (at, now) = (self.timestamp.as_millis(), now.as_millis());
        if at > now {
            let ahead_ms = at - now;
            if ahead_ms > MAX_HEAD_CLOCK_SKEW_MS {
                return Err(HeadError::FromTheFuture { ahead_ms });
            }
        } else {
            let age_ms = now - at;
            if age_ms > trust.max_head_age_ms {
                return Err(HeadError::Stale { age_ms });
            }
        }
        Ok(())
    }
}

/// A signed head was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeadError {
    /// The bytes are not a signed head (or the key not an Ed25519 public key).
    #[error("malformed signed head")]
    Malformed,
    /// The head carries no signature.
    #[error("the head is not signed")]
    Unsigned,
    /// No trusted auditor signed it.
    #[error("no trusted auditor signed the head")]
    BadSignature,
    /// The head is for another namespace.
    #[error("head for namespace {got:?}, expected {expected:?}")]
    WrongNamespace {
        /// The trusted namespace.
        expected: String,
        /// The head's.
        got: String,
    },
    /// The head is older than the trust allows.
    #[error("head is {age_ms} ms old")]
    Stale {
        /// Its age.
        age_ms: u64,
    },
    /// The head's time is too far ahead of the device's clock.
    #[error("head is {ahead_ms} ms in the future")]
    FromTheFuture {
        /// How far ahead.
        ahead_ms: u64,
    },
    /// A ciphersuite other than protobuf+Ed25519.
    #[error("unsupported ciphersuite {0:#06x}")]
    UnsupportedCiphersuite(u32),
}
