//! Append-only proofs between two heads (feature `kt-audit`): akd's auditor, which is
//! async and rebuilds the changed part of the tree in akd's in-memory storage, run on a
//! current-thread tokio runtime that lives for the one call.

use akd_core::WhatsAppV1Configuration;
use akd_core::proto::specs::types as akd_pb;
use protobuf::Message;

use crate::kt::verify::MAX_PROOF_LEN;
use crate::kt::{DirectoryTrust, SignedHead};

/// An append-only proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The bytes are not an append-only proof (or more bytes than any honest one).
    #[error("malformed append-only proof: {0}")]
    Malformed(String),
    /// The proof does not verify.
    #[error("invalid append-only proof: {0}")]
    Invalid(String),
    /// The heads are not consecutive epochs, or not the proof's epochs.
    #[error("the heads are not consecutive epochs of the proof")]
    NotConsecutive,
    /// The async runtime could not start.
    #[error("the audit runtime could not start")]
    Runtime,
}

/// Checks that the directory only grew from `from` to `to`: `proof` is akd's protobuf
/// `AppendOnlyProof` for the one step from `from`'s epoch to the next, which must be
/// `to`'s (an audit of a longer run needs every head in between, so goes step by step).
/// `trust` names the directory (the check itself needs no key); the heads' signatures
/// are the caller's to check with [`SignedHead::verify`].
pub fn verify_append_only(
    trust: &DirectoryTrust,
    from: &SignedHead,
    to: &SignedHead,
    proof: &[u8],
) -> Result<(), AuditError> {
    let _ = trust;
    if from.epoch().checked_add(1) != Some(to.epoch()) {
        return Err(AuditError::NotConsecutive);
    }
    if proof.len() > MAX_PROOF_LEN {
        return Err(AuditError::Malformed("too large".into()));
    }
    let p = akd_pb::AppendOnlyProof::parse_from_bytes(proof)
        .map_err(|e| AuditError::Malformed(e.to_string()))?;
    let proof = akd_core::AppendOnlyProof::try_from(&p)
        .map_err(|e| AuditError::Malformed(e.to_string()))?;
    if proof.epochs != [from.epoch()] || proof.proofs.len() != 1 {
        return Err(AuditError::NotConsecutive);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|_| AuditError::Runtime)?;
    let hashes = vec![from.root(), to.root()];
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(akd::auditor::audit_verify::<WhatsAppV1Configuration>(
            hashes, proof,
        ))
    }));
    match run {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(AuditError::Invalid(e.to_string())),
        Err(_) => Err(AuditError::Invalid(
            "the auditor failed on this proof".into(),
        )),
    }
}
