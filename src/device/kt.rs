//! Key transparency on a [`Device`]: checking a contact's identity key against a key
//! directory, and keeping what was verified so rollbacks and forks are caught.

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::assurance::{address_key, apply_assurance, assurance_rows};
use super::state;
use super::{Clock, Device, PrivacyStateError};
use crate::Address;

/// The row of a contact's [`ContactRecord`] (key: the address, `name.device_id`).
const KT_CONTACT: &str = "kt.contact";
/// The row of the device's [`HeadLog`] (key `""`).
const KT_HEADS: &str = "kt.heads";
use crate::keys::IdentityKey;
use crate::kt::{
    self, ContactRecord, DirectoryTrust, HeadError, HeadLog, KeyCheck, KeyHistory, ProofError,
    RecordViolation, SignedHead,
};
use crate::store::ProtocolStore;

/// A key-transparency check failed; nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KtError {
    /// The signed head was refused.
    #[error("signed head refused: {0}")]
    Head(#[from] HeadError),
    /// The proof was refused.
    #[error("proof refused: {0}")]
    Proof(#[from] ProofError),
    /// The device holds no identity key for the contact.
    #[error("no identity key held for the contact")]
    NoIdentity,
    /// The directory's value is not an identity key.
    #[error("the directory's value is not an identity key")]
    MalformedValue,
    /// The head is older than one already verified for this contact.
    #[error("epoch rolled back from {last} to {got}")]
    EpochRolledBack {
        /// The last verified epoch.
        last: u64,
        /// The head's.
        got: u64,
    },
    /// The contact's version is older than one already verified.
    #[error("version rolled back from {last} to {got}")]
    VersionRolledBack {
        /// The last verified version.
        last: u64,
        /// The proof's.
        got: u64,
    },
    /// A second root for an epoch this device already saw: the directory forked.
    #[error("a second root for epoch {epoch}")]
    ForkedRoot {
        /// The epoch.
        epoch: u64,
    },
    /// The directory moved to another key while the session layer kept the verified one.
    #[error(
        "the directory changed the key (version {last_version} to {version}) without the contact's sessions changing"
    )]
    UnexplainedKeyChange {
        /// The last verified version.
        last_version: u64,
        /// The directory's version now.
        version: u64,
        /// The directory's key now.
        directory_key: IdentityKey,
    },
    /// The history disagrees with a version verified before.
    #[error("the history disagrees with verified version {version}")]
    HistoryConflict {
        /// The version.
        version: u64,
    },
    /// The state could not be loaded or saved.
    #[error("privacy state: {0}")]
    State(#[from] PrivacyStateError),
}

impl From<RecordViolation> for KtError {
    fn from(v: RecordViolation) -> Self {
        match v {
            RecordViolation::EpochRolledBack { last, got } => Self::EpochRolledBack { last, got },
            RecordViolation::VersionRolledBack { last, got } => {
                Self::VersionRolledBack { last, got }
            }
            RecordViolation::ForkedRoot { epoch } => Self::ForkedRoot { epoch },
            RecordViolation::UnexplainedKeyChange {
                last_version,
                version,
                directory_key,
            } => Self::UnexplainedKeyChange {
                last_version,
                version,
                directory_key,
            },
            RecordViolation::HistoryConflict { version } => Self::HistoryConflict { version },
            RecordViolation::MalformedValue => Self::MalformedValue,
        }
    }
}

fn contact_record(
    b: Option<&Zeroizing<Vec<u8>>>,
) -> Result<Option<ContactRecord>, PrivacyStateError> {
    b.map(|b| {
        ContactRecord::from_bytes(b).map_err(|_| PrivacyStateError::Corrupt { kind: KT_CONTACT })
    })
    .transpose()
}

fn head_log(b: Option<&Zeroizing<Vec<u8>>>) -> Result<HeadLog, PrivacyStateError> {
    b.map_or(Ok(HeadLog::default()), |b| {
        HeadLog::from_bytes(b).map_err(|_| PrivacyStateError::Corrupt { kind: KT_HEADS })
    })
}

/// The `i`th loaded value (`update` hands back one per row; a short slice is a bug
/// reported as corrupt state rather than a panic).
fn row<'a>(
    v: &'a [Option<Zeroizing<Vec<u8>>>],
    i: usize,
    kind: &'static str,
) -> Result<Option<&'a Zeroizing<Vec<u8>>>, PrivacyStateError> {
    v.get(i)
        .map(Option::as_ref)
        .ok_or(PrivacyStateError::Corrupt { kind })
}

impl<S: ProtocolStore, R: RngCore + CryptoRng, C: Clock> Device<S, R, C> {
    /// Checks the identity key the device holds for `contact` against a key directory:
    /// `head` must verify under `trust` at the device's time, `lookup_proof` (akd's
    /// protobuf `LookupProof` for [`kt::label`]`(contact)`) against it,
    /// and the result must agree with what was verified before (no epoch or version going
    /// back, no second root for a known epoch, no key change the sessions did not see).
    ///
    /// Then commits, in one transaction, the contact's [`ContactRecord`], the device's
    /// [`HeadLog`] and the contact's identity assurance (a directory match, or the
    /// mismatch warning), and returns what the directory said. Any error writes nothing.
    pub fn verify_contact_key(
        &self,
        trust: &DirectoryTrust,
        contact: &Address,
        head: &SignedHead,
        lookup_proof: &[u8],
    ) -> Result<KeyCheck, KtError> {
        let now = self.clock.now();
        head.verify(trust, now)?;
        let verified = kt::verify_lookup(trust, head, &kt::label(contact), lookup_proof)?;
        let held = self
            .store
            .identity(contact)
            .map_err(PrivacyStateError::from)?
            .ok_or(KtError::NoIdentity)?;
        let key = address_key(contact);
        let [assurance, index] = assurance_rows(&key);
        let rows = [(KT_CONTACT, key.as_str()), (KT_HEADS, ""), assurance, index];
        state::update(self.state_store(), &rows, |v| {
            let prev = contact_record(row(v, 0, KT_CONTACT)?)?;
            let log = head_log(row(v, 1, KT_HEADS)?)?;
            let (record, log, check) =
                kt::check_lookup(prev.as_ref(), &log, head, &verified, &held, now)?;
            let mut out = vec![record.to_bytes(), log.to_bytes()];
            out.extend(apply_assurance(
                v.get(2..).unwrap_or_default(),
                contact,
                |r| match check {
                    KeyCheck::Mismatch { epoch, .. } => r.directory_mismatch(&held, epoch, now),
                    KeyCheck::Verified { epoch, .. } => r.directory_verified(&held, epoch, now),
                },
            )?);
            Ok((check, out))
        })
    }

    /// Checks `contact`'s complete key history in the directory: `head` must verify under
    /// `trust`, `history_proof` (akd's protobuf `HistoryProof`, made with
    /// `HistoryParams::Complete`) against it, and the history must contain the version
    /// and key last verified for the contact. Returns every version, newest first, and how
    /// many are newer than the last verified one. Commits the head to the device's
    /// [`HeadLog`] only: the contact's record moves with [`Device::verify_contact_key`].
    /// Any error writes nothing.
    pub fn check_key_history(
        &self,
        trust: &DirectoryTrust,
        contact: &Address,
        head: &SignedHead,
        history_proof: &[u8],
    ) -> Result<KeyHistory, KtError> {
        let now = self.clock.now();
        head.verify(trust, now)?;
        let versions = kt::verify_history(trust, head, &kt::label(contact), history_proof)?;
        let key = address_key(contact);
        let st = self.state_store();
        // Only the head log is written. Every change to a contact's record also writes
        // the log, so the compare-and-swap on the log guards the record read here too.
        state::update(st, &[(KT_HEADS, "")], |v| {
            let log = head_log(row(v, 0, KT_HEADS)?)?;
            let prev = contact_record(state::read(st, KT_CONTACT, &key)?.as_ref())?;
            let (history, log) = kt::check_history(prev.as_ref(), &log, head, &versions)?;
            Ok((history, vec![log.to_bytes()]))
        })
    }

    /// What the device last verified for `contact` with [`Device::verify_contact_key`].
    pub fn kt_record(&self, contact: &Address) -> Result<Option<ContactRecord>, PrivacyStateError> {
        let b = state::read(self.state_store(), KT_CONTACT, &address_key(contact))?;
        contact_record(b.as_ref())
    }
}
