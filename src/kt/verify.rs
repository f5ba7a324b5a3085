//! Lookup and history proofs (akd's protobuf bytes) checked with `akd_core` in the
//! `whatsapp_v1` configuration against a head's epoch and root.
//!
//! The head's signature is the caller's to check ([`SignedHead::verify`]): these functions
//! only tie a proof to the `(epoch, root)` the head names.

use akd_core::WhatsAppV1Configuration;
use akd_core::proto::specs::types as akd_pb;
use akd_core::verify::HistoryVerificationParams;
use akd_core::verify::history::HistoryParams;
use akd_core::{AkdLabel, VerifyResult};
use curve25519_dalek::edwards::CompressedEdwardsY;
use protobuf::Message;

use crate::kt::{DirectoryTrust, SignedHead};

/// The largest proof accepted, in bytes. Honest lookup proofs are about 1.3 KB and a
/// history grows by about 0.6 KB per version; a megabyte leaves room for long histories
/// while bounding what a hostile directory can make the device parse.
pub(crate) const MAX_PROOF_LEN: usize = 1 << 20;

/// A directory's VRF public key (32 bytes, an Edwards point).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VrfPublicKey([u8; 32]);

impl VrfPublicKey {
    /// From its 32 bytes; bytes that are no point on the curve are
    /// [`ProofError::Malformed`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProofError> {
        let b: [u8; 32] = bytes
            .try_into()
            .map_err(|_| ProofError::Malformed(format!("VRF key of {} bytes", bytes.len())))?;
        CompressedEdwardsY(b)
            .decompress()
            .ok_or_else(|| ProofError::Malformed("VRF key is not a curve point".into()))?;
        Ok(Self(b))
    }

    /// Its 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// What a proof showed: the label's value at `version`, published at `epoch`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The epoch the version was published in.
    pub epoch: u64,
    /// The label's version.
    pub version: u64,
    /// The value.
    pub value: Vec<u8>,
}

impl From<VerifyResult> for Verified {
    fn from(r: VerifyResult) -> Self {
        Self {
            epoch: r.epoch,
            version: r.version,
            value: r.value.0,
        }
    }
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

/// Parses akd's protobuf message `M`, bounded by [`MAX_PROOF_LEN`], and converts it to
/// akd's type `T`.
fn parse<M, T>(proof: &[u8]) -> Result<T, ProofError>
where
    M: Message,
    T: for<'a> TryFrom<&'a M, Error = akd_core::proto::ConversionError>,
{
    if proof.len() > MAX_PROOF_LEN {
        return Err(ProofError::TooLarge);
    }
    let m = M::parse_from_bytes(proof).map_err(|e| ProofError::Malformed(e.to_string()))?;
    T::try_from(&m).map_err(|e| ProofError::Malformed(e.to_string()))
}

/// Runs akd's verifier, turning a panic inside it (a bug on hostile input) into
/// [`ProofError::Invalid`] rather than taking the app down.
fn guarded<T>(
    f: impl FnOnce() -> Result<T, akd_core::verify::VerificationError>,
) -> Result<T, ProofError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(|e| ProofError::Invalid(e.to_string())),
        Err(_) => Err(ProofError::Invalid(
            "the verifier failed on this proof".into(),
        )),
    }
}

/// Checks a lookup proof (akd's protobuf `LookupProof`) for `label` against `head`'s
/// epoch and root: the label's current value, version and the epoch it was published in.
/// The head's signature is not checked here.
pub fn verify_lookup(
    trust: &DirectoryTrust,
    head: &SignedHead,
    label: &[u8],
    proof: &[u8],
) -> Result<Verified, ProofError> {
    let proof: akd_core::LookupProof = parse::<akd_pb::LookupProof, _>(proof)?;
    let r = guarded(|| {
        akd_core::verify::lookup_verify::<WhatsAppV1Configuration>(
            trust.vrf_public_key.as_bytes(),
            head.root(),
            head.epoch(),
            AkdLabel(label.to_vec()),
            proof,
        )
    })?;
    // akd ties the value to the root, and the root to the epoch only through the
    // auditor's signature: a version published after the head's epoch cannot be in it.
    if r.epoch > head.epoch() {
        return Err(after_head(r.epoch, head));
    }
    Ok(r.into())
}

fn after_head(epoch: u64, head: &SignedHead) -> ProofError {
    ProofError::Invalid(format!(
        "a version published at epoch {epoch}, after the head's epoch {}",
        head.epoch()
    ))
}

/// Checks a complete history proof (akd's protobuf `HistoryProof`, made with
/// `HistoryParams::Complete`) for `label` against `head`: every version, newest first.
/// The head's signature is not checked here.
pub fn verify_history(
    trust: &DirectoryTrust,
    head: &SignedHead,
    label: &[u8],
    proof: &[u8],
) -> Result<Vec<Verified>, ProofError> {
    let proof: akd_core::HistoryProof = parse::<akd_pb::HistoryProof, _>(proof)?;
    let r = guarded(|| {
        akd_core::verify::key_history_verify::<WhatsAppV1Configuration>(
            trust.vrf_public_key.as_bytes(),
            head.root(),
            head.epoch(),
            AkdLabel(label.to_vec()),
            proof,
            HistoryVerificationParams::Default {
                history_params: HistoryParams::Complete,
            },
        )
    })?;
    if let Some(v) = r.iter().find(|v| v.epoch > head.epoch()) {
        return Err(after_head(v.epoch, head));
    }
    Ok(r.into_iter().map(Verified::from).collect())
}
