//! Append-only proofs between two heads (feature `kt-audit`): akd's auditor on a
//! current-thread tokio runtime.

use crate::kt::{DirectoryTrust, SignedHead};

/// An append-only proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The bytes are not an append-only proof.
    #[error("malformed append-only proof: {0}")]
    Malformed(String),
    /// The proof does not verify.
    #[error("invalid append-only proof: {0}")]
    Invalid(String),
    /// The heads' epochs do not match the proof's.
    #[error("the heads are not the proof's epochs")]
    NotConsecutive,
    /// The async runtime could not start.
    #[error("the audit runtime could not start")]
    Runtime,
}

/// Checks that the directory only grew from `from` to `to` (heads' signatures not checked).
pub fn verify_append_only(
    trust: &DirectoryTrust,
    from: &SignedHead,
    to: &SignedHead,
    proof: &[u8],
) -> Result<(), AuditError> {
    todo!("{trust:?}{from:?}{to:?}{proof:?}")
}
