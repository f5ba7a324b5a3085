//! One error enum per sealed-sender operation. `Display` texts never contain keys,
//! plaintext, names or phone numbers.

use crate::Timestamp;
use crate::error::KeyError;

/// A certificate that does not parse or does not validate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// The bytes do not decode, or a required field is absent.
    #[error("certificate is malformed (field {field})")]
    Malformed {
        /// The field's name in `sealed.proto`.
        field: &'static str,
    },
    /// A key field is not a valid public key.
    #[error("certificate holds an invalid key: {0}")]
    InvalidKey(KeyError),
    /// The server certificate's key id is on the revocation list.
    #[error("server certificate key id {key_id:#x} is revoked")]
    Revoked {
        /// The revoked key id.
        key_id: u32,
    },
    /// The server certificate is not signed by the trust root.
    #[error("server certificate is not signed by the trust root")]
    UntrustedServer,
    /// The sender certificate is not signed by the server key.
    #[error("sender certificate is not signed by the server key")]
    BadSignature,
    /// The sender certificate expired before the validation time.
    #[error("sender certificate expired at {expiration:?} (validated at {now:?})")]
    Expired {
        /// The certificate's expiry.
        expiration: Timestamp,
        /// The validation time passed in.
        now: Timestamp,
    },
}

/// Sealing failed; nothing was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// A recipient's identity key is of low order.
    #[error("recipient identity key is weak")]
    WeakKey,
    /// A registration id does not fit in 14 bits.
    #[error("registration id {registration_id} does not fit in 14 bits")]
    InvalidRegistrationId {
        /// The id given.
        registration_id: u32,
    },
    /// A device id is outside 1..=127.
    #[error("device id {device_id} is outside 1..=127")]
    InvalidDeviceId {
        /// The id given.
        device_id: u32,
    },
    /// A multi-recipient message needs at least one recipient.
    #[error("no recipients")]
    NoRecipients,
    /// One service id is listed with two different identity keys. A v2 message has one
    /// key share per service id, so it would silently go to one of the keys.
    #[error("one recipient is listed with two different identity keys")]
    ConflictingIdentityKeys,
    /// The same device of one service id is listed twice.
    #[error("recipient device {device_id} is listed twice")]
    DuplicateRecipient {
        /// The repeated device id.
        device_id: u32,
    },
}

/// Sealed-sender wire bytes that are not a valid message (before any decryption).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealedWireError {
    /// Fewer bytes than the smallest valid message.
    #[error("sealed message too short ({len} bytes)")]
    TooShort {
        /// Length given.
        len: usize,
    },
    /// The version byte is not one of `0x11`, `0x22`, `0x23`.
    #[error("unsupported sealed sender version byte {found:#04x}")]
    UnsupportedVersion {
        /// The byte found.
        found: u8,
    },
    /// The body does not decode.
    #[error("malformed sealed message (field {field})")]
    Malformed {
        /// The part that failed.
        field: &'static str,
    },
}

/// Opening a sealed message failed; nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealedOpenError {
    /// The bytes are not a valid sealed message.
    #[error("invalid sealed message: {0}")]
    Wire(#[from] SealedWireError),
    /// Authentication or decryption failed (wrong recipient, corrupted bytes, or a sender
    /// key that does not match the certificate). Deliberately one variant.
    #[error("sealed message failed authentication")]
    InvalidMessage,
    /// The decrypted inner content is malformed.
    #[error("sealed inner content is malformed (field {field})")]
    MalformedContent {
        /// The field that failed.
        field: &'static str,
    },
    /// The sender certificate is malformed or does not validate.
    #[error("sender certificate refused: {0}")]
    Certificate(#[from] CertificateError),
}

impl SealedOpenError {
    /// The variant's name, stable across versions (used as the peer protocol's `code`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Wire(SealedWireError::UnsupportedVersion { .. }) => "UnknownSealedSenderVersion",
            Self::Wire(_) => "InvalidSealedSenderMessage",
            Self::InvalidMessage => "InvalidSealedSenderMessage",
            Self::MalformedContent { .. } => "InvalidSealedSenderMessage",
            Self::Certificate(CertificateError::Expired { .. }) => "CertificateExpired",
            Self::Certificate(CertificateError::Revoked { .. }) => "CertificateRevoked",
            Self::Certificate(_) => "InvalidCertificate",
        }
    }
}
