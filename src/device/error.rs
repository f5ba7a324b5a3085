//! The errors of [`Device`](super::Device)'s calls.

use crate::WireError;
use crate::business::{AttestationError, TrackError};
use crate::error::{DecryptError, EncryptError, StoreError};
use crate::export::ReportError;
use crate::group::{GroupDecryptError, GroupEncryptError, GroupWireError};
use crate::keys::IdentityKey;
use crate::policy::{ActivityError, RecordConsentError, StateError};
use crate::sealed::{ContentType, SealError, SealedOpenError};

#[cfg(doc)]
use super::{Device, state_kind};
use super::{GroupReceiveError, GroupSendError};

/// Reading or writing the privacy-model state failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrivacyStateError {
    /// A stored value did not load.
    #[error("stored privacy state {kind} is corrupt")]
    Corrupt {
        /// The state's kind (see [`state_kind`]).
        kind: &'static str,
    },
    /// The store failed.
    #[error("store failed: {0}")]
    Store(#[from] StoreError),
}

/// [`Device::identity_assurance`], [`Device::mark_verified_by_hand`] or
/// [`Device::identity_assurances`] failed; nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AssuranceError {
    /// The device holds no identity key for the contact: there is nothing to verify.
    #[error("no identity key held for the contact")]
    NoIdentity,
    /// The store failed reading the held identity key.
    #[error("store failed: {0}")]
    Store(#[from] StoreError),
    /// The state could not be loaded or saved.
    #[error("privacy state: {0}")]
    State(#[from] PrivacyStateError),
}

/// [`Device::receive_attestation`] failed; nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestationReceiveError {
    /// The attestation did not verify.
    #[error("attestation refused: {0}")]
    Attestation(#[from] AttestationError),
    /// The chat's tracker refused it.
    #[error("disclosure tracking failed: {0}")]
    Track(#[from] TrackError),
    /// The state could not be loaded or saved.
    #[error("privacy state: {0}")]
    State(#[from] PrivacyStateError),
}

/// [`Device::business_message`] failed; nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusinessMessageError {
    /// The chat's tracker refused the message.
    #[error("disclosure tracking failed: {0}")]
    Track(#[from] TrackError),
    /// The state could not be loaded or saved.
    #[error("privacy state: {0}")]
    State(#[from] PrivacyStateError),
}

/// [`Device::record_consent`] failed; nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsentError {
    /// The ledger refused the answer.
    #[error("consent refused: {0}")]
    Record(#[from] RecordConsentError),
    /// The state could not be loaded or saved.
    #[error("privacy state: {0}")]
    State(#[from] PrivacyStateError),
}

/// [`Device::record_connection`] failed; nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ActivityRecordError {
    /// The activity log refused the event.
    #[error("activity refused: {0}")]
    Activity(#[from] ActivityError),
    /// The state could not be loaded or saved.
    #[error("privacy state: {0}")]
    State(#[from] PrivacyStateError),
}

/// [`Device::account_state`] or [`Device::account_report`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountError {
    /// No activity was recorded yet ([`Device::record_connection`] registers the account).
    #[error("the account has no recorded activity")]
    NotRegistered,
    /// The state could not be computed.
    #[error("account state unavailable: {0}")]
    State(#[from] StateError),
    /// The report could not be built.
    #[error("report failed: {0}")]
    Report(#[from] ReportError),
    /// The state could not be loaded.
    #[error("privacy state: {0}")]
    PrivacyState(#[from] PrivacyStateError),
    /// The identity-assurance state could not be loaded.
    #[error("identity assurance: {0}")]
    Assurance(#[from] AssuranceError),
}

/// [`Device::seal`] failed; nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealToError {
    /// No identity key is trusted for the recipient yet.
    #[error("no identity key known for the recipient")]
    UnknownRecipient,
    /// No session with the v2 recipient, so its registration id is unknown.
    #[error("no session with the recipient")]
    NoSession,
    /// The v2 recipient's address name is not a service id (a UUID, or `PNI:` one).
    #[error("the recipient's name is not a service id")]
    NotAServiceId,
    /// Sealing refused the recipients (see [`SealError`]).
    #[error("seal failed: {0}")]
    Seal(#[from] SealError),
    /// The store failed.
    #[error("store failed: {0}")]
    Store(#[from] StoreError),
}

/// [`Device::seal_message`] failed. A failure after encrypting leaves the session one
/// step ahead (a skipped counter the recipient tolerates), never a reused key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealMessageError {
    /// No identity key is trusted for the recipient yet.
    #[error("no identity key known for the recipient")]
    UnknownRecipient,
    /// No session with the v2 recipient, so its registration id is unknown.
    #[error("no session with the recipient")]
    NoSession,
    /// The v2 recipient's address name is not a service id (a UUID, or `PNI:` one).
    #[error("the recipient's name is not a service id")]
    NotAServiceId,
    /// The 1:1 encrypt failed.
    #[error("encrypt failed: {0}")]
    Encrypt(#[from] EncryptError),
    /// Sealing refused the recipients.
    #[error("seal failed: {0}")]
    Seal(#[from] SealError),
    /// The store failed.
    #[error("store failed: {0}")]
    Store(#[from] StoreError),
}

impl From<SealToError> for SealMessageError {
    fn from(e: SealToError) -> Self {
        match e {
            SealToError::UnknownRecipient => Self::UnknownRecipient,
            SealToError::NoSession => Self::NoSession,
            SealToError::NotAServiceId => Self::NotAServiceId,
            SealToError::Seal(e) => Self::Seal(e),
            SealToError::Store(e) => Self::Store(e),
        }
    }
}

/// [`Device::seal_group_message`] failed. A failure after encrypting leaves the sending
/// chain one step ahead (a skipped iteration), never a reused key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealGroupMessageError {
    /// No identity key is trusted for the recipient yet.
    #[error("no identity key known for the recipient")]
    UnknownRecipient,
    /// No session with the v2 recipient, so its registration id is unknown.
    #[error("no session with the recipient")]
    NoSession,
    /// The v2 recipient's address name is not a service id (a UUID, or `PNI:` one).
    #[error("the recipient's name is not a service id")]
    NotAServiceId,
    /// The group encrypt failed.
    #[error("group encrypt failed: {0}")]
    Encrypt(#[from] GroupEncryptError),
    /// Sealing refused the recipients.
    #[error("seal failed: {0}")]
    Seal(#[from] SealError),
    /// The store failed.
    #[error("store failed: {0}")]
    Store(#[from] StoreError),
}

impl From<SealToError> for SealGroupMessageError {
    fn from(e: SealToError) -> Self {
        match e {
            SealToError::UnknownRecipient => Self::UnknownRecipient,
            SealToError::NoSession => Self::NoSession,
            SealToError::NotAServiceId => Self::NotAServiceId,
            SealToError::Seal(e) => Self::Seal(e),
            SealToError::Store(e) => Self::Store(e),
        }
    }
}

impl From<GroupSendError> for SealGroupMessageError {
    fn from(e: GroupSendError) -> Self {
        match e {
            GroupSendError::Encrypt(e) => Self::Encrypt(e),
            GroupSendError::Store(e) => Self::Store(e),
        }
    }
}

/// [`Device::unseal`] failed; the store is unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnsealError {
    /// The envelope did not open, or its certificate does not validate under the trust
    /// root at the device's time (expired, revoked, wrong root).
    #[error("sealed message refused: {0}")]
    Open(#[from] SealedOpenError),
    /// The certificate names this very device.
    #[error("sealed message claims to be from this device")]
    SelfSend,
    /// The certificate's identity key is not the one trusted for the sender's address.
    #[error("certificate identity differs from the known one")]
    UntrustedIdentity {
        /// The key on record.
        known: IdentityKey,
        /// The key in the certificate.
        received: IdentityKey,
    },
    /// The inner prekey message carries another identity key than the certificate.
    #[error("inner message identity differs from the certificate")]
    IdentityMismatch,
    /// The inner content is of a kind this call does not decrypt (plaintext content).
    #[error("unsupported sealed content type")]
    UnsupportedContent {
        /// The content's type.
        content_type: ContentType,
    },
    /// The inner 1:1 message is malformed.
    #[error("inner message malformed: {0}")]
    Wire(#[from] WireError),
    /// The inner group message is malformed.
    #[error("inner group message malformed: {0}")]
    GroupWire(#[from] GroupWireError),
    /// The inner 1:1 message did not decrypt.
    #[error("decrypt failed: {0}")]
    Decrypt(#[from] DecryptError),
    /// The inner group message did not decrypt.
    #[error("group decrypt failed: {0}")]
    GroupDecrypt(#[from] GroupDecryptError),
    /// The store failed.
    #[error("store failed: {0}")]
    Store(#[from] StoreError),
}

impl From<GroupReceiveError> for UnsealError {
    fn from(e: GroupReceiveError) -> Self {
        match e {
            GroupReceiveError::Decrypt(e) => Self::GroupDecrypt(e),
            GroupReceiveError::Store(e) => Self::Store(e),
        }
    }
}
