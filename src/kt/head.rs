//! The auditor's signed epoch head: Plexi's `SignatureMessage`, signed with Ed25519.

use crate::Timestamp;
use crate::kt::DirectoryTrust;

/// Plexi's ciphersuite 0x0001: the message is protobuf-encoded and signed with Ed25519.
pub const CIPHERSUITE_PROTOBUF_ED25519: u32 = 0x0001;

/// An auditor's Ed25519 public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AuditorKey([u8; 32]);

impl AuditorKey {
    /// From its 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, HeadError> {
        todo!("{bytes:?}")
    }

    /// Its 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }
}

/// An auditor's Ed25519 signing key (for hosts running an auditor, and tests).
pub struct AuditorSigningKey(());

impl std::fmt::Debug for AuditorSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditorSigningKey(***)")
    }
}

impl AuditorSigningKey {
    /// From a 32-byte Ed25519 seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        todo!("{seed:?}")
    }

    /// A fresh key.
    pub fn generate(rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng)) -> Self {
        todo!("{}", rng.next_u32())
    }

    /// The public half.
    pub fn public_key(&self) -> AuditorKey {
        todo!()
    }

    /// Signs `(namespace, timestamp, epoch, root)` as Plexi's protobuf+Ed25519 ciphersuite.
    pub fn sign(
        &self,
        namespace: &str,
        timestamp: Timestamp,
        epoch: u64,
        root: [u8; 32],
    ) -> SignedHead {
        todo!("{namespace}{timestamp:?}{epoch}{root:?}")
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

impl SignedHead {
    /// A head nobody signed yet.
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

    /// Serialized (`proto/kt.proto` `SignedHead`).
    pub fn to_bytes(&self) -> Vec<u8> {
        todo!()
    }

    /// Parses [`SignedHead::to_bytes`]'s output.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, HeadError> {
        todo!("{bytes:?}")
    }

    /// Checks the head: the trusted namespace, the ciphersuite, a signature by one of the
    /// trusted auditors, and its age at `now`.
    pub fn verify(&self, trust: &DirectoryTrust, now: Timestamp) -> Result<(), HeadError> {
        todo!("{trust:?}{now:?}")
    }
}

/// A signed head was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeadError {
    /// The bytes are not a signed head.
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
