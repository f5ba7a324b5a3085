//! Lookup and history proofs (akd's protobuf bytes) checked with `akd_core` in the
//! `whatsapp_v1` configuration against a head's epoch and root.

use crate::kt::{DirectoryTrust, SignedHead};

/// A directory's VRF public key (32 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VrfPublicKey([u8; 32]);

impl VrfPublicKey {
    /// From its 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProofError> {
        todo!("{bytes:?}")
    }

    /// Its 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// What a proof showed: the label's value at `version`, current at `epoch`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The epoch the version was published in.
    pub epoch: u64,
    /// The label's version.
    pub version: u64,
    /// The value.
    pub value: Vec<u8>,
}

/// A proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The bytes are not a proof.
    #[error("malformed proof: {0}")]
    Malformed(String),
    /// The proof does not verify.
    #[error("invalid proof: {0}")]
    Invalid(String),
    /// The proof is larger than any honest one.
    #[error("proof too large")]
    TooLarge,
}

/// Checks a lookup proof for `label` against `head`'s epoch and root (not its signature).
pub fn verify_lookup(
    trust: &DirectoryTrust,
    head: &SignedHead,
    label: &[u8],
    proof: &[u8],
) -> Result<Verified, ProofError> {
    todo!("{trust:?}{head:?}{label:?}{proof:?}")
}

/// Checks a complete history proof for `label` against `head`; the versions newest first.
pub fn verify_history(
    trust: &DirectoryTrust,
    head: &SignedHead,
    label: &[u8],
    proof: &[u8],
) -> Result<Vec<Verified>, ProofError> {
    todo!("{trust:?}{head:?}{label:?}{proof:?}")
}
