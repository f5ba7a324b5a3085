//! Key transparency on a [`Device`]: checking a contact's identity key against a key
//! directory, and keeping what was verified so rollbacks and forks are caught.

use rand_core::{CryptoRng, RngCore};

use super::{Clock, Device, PrivacyStateError};
use crate::Address;
use crate::keys::IdentityKey;
use crate::kt::{
    ContactRecord, DirectoryTrust, HeadError, KeyCheck, KeyHistory, ProofError, SignedHead,
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

impl<S: ProtocolStore, R: RngCore + CryptoRng, C: Clock> Device<S, R, C> {
    /// Checks the identity key held for `contact` against the directory: the head, then
    /// the lookup proof, then what was verified before.
    pub fn verify_contact_key(
        &self,
        trust: &DirectoryTrust,
        contact: &Address,
        head: &SignedHead,
        lookup_proof: &[u8],
    ) -> Result<KeyCheck, KtError> {
        todo!("{trust:?}{contact:?}{head:?}{lookup_proof:?}")
    }

    /// Checks `contact`'s complete key history.
    pub fn check_key_history(
        &self,
        trust: &DirectoryTrust,
        contact: &Address,
        head: &SignedHead,
        history_proof: &[u8],
    ) -> Result<KeyHistory, KtError> {
        todo!("{trust:?}{contact:?}{head:?}{history_proof:?}")
    }

    /// What was last verified for `contact`.
    pub fn kt_record(&self, contact: &Address) -> Result<Option<ContactRecord>, PrivacyStateError> {
        todo!("{contact:?}")
    }
}
