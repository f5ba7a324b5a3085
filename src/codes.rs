//! Stable names for failures: `code()` on every public error enum an adapter reports
//! (the peer example's JSON `code`, the C ABI's status codes). The names are the peer
//! protocol's (`../shared/interop/PEER_PROTOCOL.md`), which follow libsignal's error
//! names where it has one, and never change between versions; a wrapping error reports
//! the code of the error it wraps. Matches are exhaustive, so a new variant needs a code.

use crate::assurance::AssuranceLoadError;
use crate::device::{
    AccountError, ActivityRecordError, AssuranceError, DeviceOpenError, PreKeyError,
    PrivacyStateError, ReceiveError, SafetyNumberError, SealGroupMessageError, SealMessageError,
    SealToError, TextError, UnsealError,
};
use crate::error::{
    BundleError, EncryptError, KeyError, PublishError, RecordError, StoreError, WireError,
};
use crate::export::ReportError;
use crate::fingerprint::FingerprintError;
use crate::group::{
    GroupDistributionError, GroupEncryptError, GroupKeyProcessError, GroupProcessError,
    GroupSendError, GroupWireError,
};
use crate::media::{MediaDecryptError, MediaEncryptError};
use crate::policy::LoadError;
use crate::sealed::{CertificateError, SealError, SealedWireError};

impl StoreError {
    /// `"Store"`, whatever failed underneath.
    pub fn code(&self) -> &'static str {
        "Store"
    }
}

impl KeyError {
    /// `"InvalidKey"`.
    pub fn code(&self) -> &'static str {
        "InvalidKey"
    }
}

impl RecordError {
    /// `"InvalidMessage"`: bytes (a bundle, a record) that do not decode.
    pub fn code(&self) -> &'static str {
        "InvalidMessage"
    }
}

impl WireError {
    /// `"InvalidVersion"` for a message of another protocol version, else
    /// `"InvalidMessage"`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnsupportedVersion { .. } => "InvalidVersion",
            _ => "InvalidMessage",
        }
    }
}

impl BundleError {
    /// The variant's name; a store failure is `"Store"`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidSignature => "InvalidSignature",
            Self::MissingKyberPreKey => "MissingKyberPreKey",
            Self::VersionNotAllowed { .. } => "InvalidVersion",
            Self::UntrustedIdentity { .. } => "UntrustedIdentity",
            Self::WeakKey => "WeakKey",
            Self::Store(e) => e.code(),
        }
    }
}

impl EncryptError {
    /// The variant's name; a store failure is `"Store"`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoSession => "NoSession",
            Self::UntrustedIdentity { .. } => "UntrustedIdentity",
            Self::ChainExhausted => "ChainExhausted",
            Self::PostQuantumRatchet => "PostQuantumRatchet",
            Self::StaleUnacknowledgedSession => "StaleUnacknowledgedSession",
            Self::Store(e) => e.code(),
        }
    }
}

impl GroupWireError {
    /// `"InvalidMessage"`.
    pub fn code(&self) -> &'static str {
        "InvalidMessage"
    }
}

impl GroupProcessError {
    /// The variant's name.
    pub fn code(&self) -> &'static str {
        match self {
            Self::WrongDistribution => "WrongDistribution",
            Self::WrongLayout => "WrongLayout",
            Self::WeakSigningKey => "WeakKey",
            Self::ChainExhausted => "ChainExhausted",
        }
    }
}

impl GroupEncryptError {
    /// `"NoSenderKeyState"` (libsignal's name) or `"ChainExhausted"`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoSenderKey => "NoSenderKeyState",
            Self::ChainExhausted => "ChainExhausted",
        }
    }
}

impl GroupDistributionError {
    /// `"Store"`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Store(e) => e.code(),
        }
    }
}

impl GroupKeyProcessError {
    /// The wrapped error's code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Process(e) => e.code(),
            Self::Store(e) => e.code(),
        }
    }
}

impl GroupSendError {
    /// The wrapped error's code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Encrypt(e) => e.code(),
            Self::Store(e) => e.code(),
        }
    }
}

impl SealedWireError {
    /// As [`SealedOpenError::code`](crate::sealed::SealedOpenError::code) for malformed bytes.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnsupportedVersion { .. } => "UnknownSealedSenderVersion",
            Self::TooShort { .. } | Self::Malformed { .. } => "InvalidSealedSenderMessage",
        }
    }
}

impl CertificateError {
    /// `"CertificateExpired"`, `"CertificateRevoked"`, else `"InvalidCertificate"`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Expired { .. } => "CertificateExpired",
            Self::Revoked { .. } => "CertificateRevoked",
            Self::Malformed { .. }
            | Self::InvalidKey(_)
            | Self::UntrustedServer
            | Self::BadSignature => "InvalidCertificate",
        }
    }
}

impl SealError {
    /// `"InvalidKey"` for a weak recipient key, else `"InvalidArgument"`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::WeakKey => "InvalidKey",
            Self::InvalidRegistrationId { .. }
            | Self::InvalidDeviceId { .. }
            | Self::NoRecipients
            | Self::ConflictingIdentityKeys
            | Self::DuplicateRecipient { .. } => "InvalidArgument",
        }
    }
}

impl SealToError {
    /// `"NoSession"` when no identity (or, for v2, no session) is known for a recipient,
    /// `"InvalidArgument"` for a v2 recipient not named by a service id, else the
    /// wrapped error's code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownRecipient | Self::NoSession => "NoSession",
            Self::NotAServiceId => "InvalidArgument",
            Self::Seal(e) => e.code(),
            Self::Store(e) => e.code(),
        }
    }
}

impl SealMessageError {
    /// As [`SealToError::code`] (`"NoSession"` is libsignal's name for sealing to an
    /// unknown address), or the encrypt's code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownRecipient | Self::NoSession => "NoSession",
            Self::NotAServiceId => "InvalidArgument",
            Self::Encrypt(e) => e.code(),
            Self::Seal(e) => e.code(),
            Self::Store(e) => e.code(),
        }
    }
}

impl SealGroupMessageError {
    /// As [`SealToError::code`], or the group encrypt's code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownRecipient | Self::NoSession => "NoSession",
            Self::NotAServiceId => "InvalidArgument",
            Self::Encrypt(e) => e.code(),
            Self::Seal(e) => e.code(),
            Self::Store(e) => e.code(),
        }
    }
}

impl UnsealError {
    /// The envelope's, certificate's or inner message's code, or the variant's name.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Open(e) => e.code(),
            Self::SelfSend => "SelfSend",
            Self::UntrustedIdentity { .. } => "UntrustedIdentity",
            Self::IdentityMismatch => "InvalidSealedSenderMessage",
            Self::UnsupportedContent { .. } => "UnsupportedContent",
            Self::Wire(e) => e.code(),
            Self::GroupWire(e) => e.code(),
            Self::Decrypt(e) => e.code(),
            Self::GroupDecrypt(e) => e.code(),
            Self::Store(e) => e.code(),
        }
    }
}

impl PublishError {
    /// `"PreKeyIdInUse"` for an id the store already holds (either kind), else
    /// `"Store"`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::SignedPreKeyIdInUse { .. }
            | Self::PreKeyIdInUse { .. }
            | Self::KyberPreKeyIdInUse { .. } => "PreKeyIdInUse",
            Self::NoKyberStore => "NoKyberStore",
            Self::Store(e) => e.code(),
        }
    }
}

impl PreKeyError {
    /// `"PreKeyIdsExhausted"`, or the wrapped error's code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::IdsExhausted => "PreKeyIdsExhausted",
            Self::NoKyberStore => "NoKyberStore",
            Self::Publish(e) => e.code(),
            Self::State(e) => e.code(),
            Self::Store(e) => e.code(),
        }
    }
}

impl DeviceOpenError {
    /// `"Store"`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Store(e) => e.code(),
        }
    }
}

impl SafetyNumberError {
    /// `"UnknownIdentity"` before an identity key is known for the peer, else the
    /// wrapped error's code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownIdentity => "UnknownIdentity",
            Self::Fingerprint(e) => e.code(),
            Self::Store(e) => e.code(),
        }
    }
}

impl ReceiveError {
    /// The decrypt's code, or `"InvalidContent"` for a message that decrypted but is
    /// not padded content.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Decrypt(e) => e.code(),
            Self::Group(e) => e.code(),
            Self::Content { .. } => "InvalidContent",
        }
    }
}

impl TextError {
    /// `"InvalidContent"` for text that does not fit, else `"Store"`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Content(_) => "InvalidContent",
            Self::Store(e) => e.code(),
        }
    }
}

impl PrivacyStateError {
    /// `"Store"`: the stored state did not load or save.
    pub fn code(&self) -> &'static str {
        "Store"
    }
}

impl ActivityRecordError {
    /// `"ActivityRefused"` for an event the activity log refuses, else `"Store"`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Activity(_) => "ActivityRefused",
            Self::State(e) => e.code(),
        }
    }
}

impl AccountError {
    /// `"NotRegistered"` before any recorded connection, `"Store"` for the stored state,
    /// `"AccountState"` or `"Report"` when the state or report cannot be computed.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotRegistered => "NotRegistered",
            Self::State(_) => "AccountState",
            Self::Report(_) => "Report",
            Self::PrivacyState(e) => e.code(),
            Self::Assurance(e) => e.code(),
        }
    }
}

impl AssuranceError {
    /// `"UnknownIdentity"` when no identity key is held for the contact, else `"Store"`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoIdentity => "UnknownIdentity",
            Self::Store(e) => e.code(),
            Self::State(e) => e.code(),
        }
    }
}

impl AssuranceLoadError {
    /// `"InvalidMessage"`: stored bytes that do not decode.
    pub fn code(&self) -> &'static str {
        "InvalidMessage"
    }
}

impl LoadError {
    /// `"InvalidMessage"`: persisted policy bytes that do not load.
    pub fn code(&self) -> &'static str {
        "InvalidMessage"
    }
}

impl ReportError {
    /// `"Report"`.
    pub fn code(&self) -> &'static str {
        "Report"
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl crate::store::OpenError {
    /// `"WrongKey"` for a database sealed under another key, `"InvalidArgument"` for a
    /// device name the store cannot hold, else `"Store"`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::WrongKey => "WrongKey",
            Self::InvalidDevice => "InvalidArgument",
            Self::Backend(_)
            | Self::NewerSchema { .. }
            | Self::Corrupt { .. }
            | Self::KeyDerivation => "Store",
        }
    }
}

impl FingerprintError {
    /// `"InvalidArgument"`.
    pub fn code(&self) -> &'static str {
        "InvalidArgument"
    }
}

impl MediaEncryptError {
    /// `"Io"`: reading or writing a file failed.
    pub fn code(&self) -> &'static str {
        "Io"
    }
}

impl MediaDecryptError {
    /// The variant's name for a check that failed, `"Io"` for a file that could not be
    /// read or written.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadMac => "BadMac",
            Self::EncSha256Mismatch => "EncSha256Mismatch",
            Self::FileSha256Mismatch => "FileSha256Mismatch",
            Self::LengthMismatch { .. } => "LengthMismatch",
            Self::BadPadding => "BadPadding",
            Self::TooShort { .. } => "TooShort",
            Self::NotBlockAligned { .. } => "NotBlockAligned",
            Self::Read { .. } | Self::Write { .. } | Self::Output { .. } | Self::HelperStopped => {
                "Io"
            }
        }
    }
}

/// An error with a stable [`code`](ErrorCode::code): every error enum an adapter
/// reports, so an adapter maps any of them in one place (`impl<E: ErrorCode> From<E>`).
pub trait ErrorCode: std::error::Error {
    /// The failure's stable name (the peer protocol's `code`).
    fn code(&self) -> &'static str;
}

/// Implements [`ErrorCode`] by the inherent `code()` of each type.
macro_rules! error_code {
    ($($t:ty),* $(,)?) => {
        $(impl ErrorCode for $t {
            fn code(&self) -> &'static str {
                <$t>::code(self)
            }
        })*
    };
}

error_code! {
    StoreError, KeyError, RecordError, WireError, LoadError, ReportError,
    BundleError, EncryptError, crate::error::DecryptError,
    GroupWireError, GroupProcessError, GroupEncryptError, GroupDistributionError,
    crate::group::GroupDecryptError, crate::group::GroupReceiveError,
    GroupKeyProcessError, GroupSendError,
    SealedWireError, CertificateError, SealError, crate::sealed::SealedOpenError,
    SealToError, SealMessageError, SealGroupMessageError, UnsealError,
    PublishError, PreKeyError, DeviceOpenError, SafetyNumberError, ReceiveError, TextError,
    PrivacyStateError, ActivityRecordError, AccountError, AssuranceError, AssuranceLoadError,
    FingerprintError, MediaEncryptError, MediaDecryptError,
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
error_code!(crate::store::OpenError);

#[cfg(feature = "kt")]
mod kt {
    use super::ErrorCode;
    use crate::device::KtError;
    use crate::kt::{HeadError, ProofError};

    impl HeadError {
        /// `"InvalidMessage"` for bytes that are no head, `"StaleHead"` for a head too old
        /// or too far ahead of the clock, else `"InvalidSignature"` (the head is not one the
        /// trusted auditors signed for this namespace and ciphersuite).
        pub fn code(&self) -> &'static str {
            match self {
                Self::Malformed => "InvalidMessage",
                Self::Stale { .. } | Self::FromTheFuture { .. } => "StaleHead",
                Self::Unsigned
                | Self::BadSignature
                | Self::WrongNamespace { .. }
                | Self::UnsupportedCiphersuite(_) => "InvalidSignature",
            }
        }
    }

    impl ProofError {
        /// `"InvalidMessage"` for bytes that are no proof (or too many of them),
        /// `"InvalidProof"` for a proof that does not verify.
        pub fn code(&self) -> &'static str {
            match self {
                Self::Malformed(_) | Self::TooLarge => "InvalidMessage",
                Self::Invalid(_) => "InvalidProof",
            }
        }
    }

    impl KtError {
        /// The variant's name; a head or proof reports its own code, the state `"Store"`.
        pub fn code(&self) -> &'static str {
            match self {
                Self::Head(e) => e.code(),
                Self::Proof(e) => e.code(),
                Self::NoIdentity => "NoIdentity",
                Self::MalformedValue => "MalformedValue",
                Self::EpochRolledBack { .. } => "EpochRolledBack",
                Self::VersionRolledBack { .. } => "VersionRolledBack",
                Self::ForkedRoot { .. } => "ForkedRoot",
                Self::UnexplainedKeyChange { .. } => "UnexplainedKeyChange",
                Self::HistoryConflict { .. } => "HistoryConflict",
                Self::State(e) => e.code(),
            }
        }
    }

    error_code!(HeadError, ProofError, KtError);

    #[cfg(feature = "kt-audit")]
    impl crate::kt::AuditError {
        /// `"InvalidMessage"` for bytes that are no proof, `"InvalidProof"` for a proof
        /// that does not verify or heads that are not its epochs, `"Runtime"` when the
        /// auditor's runtime could not start.
        pub fn code(&self) -> &'static str {
            match self {
                Self::Malformed(_) => "InvalidMessage",
                Self::Invalid(_) | Self::NotConsecutive => "InvalidProof",
                Self::Runtime => "Runtime",
            }
        }
    }

    #[cfg(feature = "kt-audit")]
    error_code!(crate::kt::AuditError);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DecryptError;
    use crate::group::GroupDecryptError;

    /// The codes the interop suites and the C ABI's table depend on, pinned.
    #[test]
    fn codes_are_the_peer_protocols_names() {
        let store = || StoreError::NoLocalIdentity;
        let pinned: [(&dyn ErrorCode, &str); 12] = [
            (&store(), "Store"),
            (&BundleError::InvalidSignature, "InvalidSignature"),
            (&EncryptError::Store(store()), "Store"),
            (&DecryptError::UnknownPreKey { id: 1 }, "InvalidPreKeyId"),
            (&GroupEncryptError::NoSenderKey, "NoSenderKeyState"),
            (
                &GroupSendError::Encrypt(GroupEncryptError::NoSenderKey),
                "NoSenderKeyState",
            ),
            (
                &GroupKeyProcessError::Process(GroupProcessError::WrongLayout),
                "WrongLayout",
            ),
            (
                &GroupDecryptError::DuplicateMessage { iteration: 3 },
                "DuplicateMessage",
            ),
            (&SealMessageError::UnknownRecipient, "NoSession"),
            (
                &SealGroupMessageError::Encrypt(GroupEncryptError::ChainExhausted),
                "ChainExhausted",
            ),
            (&UnsealError::SelfSend, "SelfSend"),
            (
                &CertificateError::Revoked { key_id: 7 },
                "CertificateRevoked",
            ),
        ];
        for (error, code) in pinned {
            assert_eq!(error.code(), code, "{error}");
        }
    }
}
