//! One error enum per group operation. `Display` texts never contain keys, plaintext or
//! addresses.

use crate::error::{KeyError, RecordError};

/// Group wire bytes that are not a valid sender-key message or distribution message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupWireError {
    /// Fewer bytes than the smallest valid message.
    #[error("group message too short ({len} bytes)")]
    TooShort {
        /// Length given.
        len: usize,
    },
    /// The version byte is not `0x33`.
    #[error("unsupported group message version byte {found:#04x}")]
    UnsupportedVersion {
        /// The version byte found.
        found: u8,
    },
    /// The protobuf body does not decode.
    #[error("malformed group message body")]
    Malformed,
    /// A required field is absent or has the wrong length.
    #[error("group message lacks a valid field {field}")]
    MissingField {
        /// The field's name in `group.proto`.
        field: &'static str,
    },
    /// The signing key field is not a valid public key.
    #[error("group message holds an invalid signing key: {0}")]
    InvalidKey(KeyError),
}

/// Processing a sender-key distribution message failed; nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupProcessError {
    /// The message is for another distribution (group) than this record's.
    #[error("distribution message is for another distribution")]
    WrongDistribution,
    /// The message uses the other group layout than this record.
    #[error("distribution message uses another group layout")]
    WrongLayout,
    /// The signing key is of small order or not canonically encoded: signatures under
    /// it could be made without its private key, by the server for one.
    #[error("distribution message holds a weak signing key")]
    WeakSigningKey,
    /// The chain starts at iteration `u32::MAX`, which no message may use (it has no
    /// successor, so its key could not be marked as used).
    #[error("distribution message starts an exhausted chain")]
    ChainExhausted,
}

/// Encrypting a group message failed; nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupEncryptError {
    /// There is no own sending chain for this distribution: call `distribution`.
    #[error("no own sender key for this distribution")]
    NoSenderKey,
    /// The sending chain used all 2^32 iterations; rotate.
    #[error("sender key chain exhausted")]
    ChainExhausted,
}

/// Decrypting a group message failed. Every variant leaves all state exactly as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupDecryptError {
    /// No distribution message was processed for this sender and distribution, or none
    /// for the message's chain id (it may have been evicted, see
    /// [`crate::group::limits::MAX_SENDER_KEY_STATES`]).
    #[error("no sender key for chain {chain_id}")]
    NoSenderKey {
        /// The chain id named by the message.
        chain_id: u32,
    },
    /// The message is for another distribution than this record's.
    #[error("group message is for another distribution")]
    WrongDistribution,
    /// The message uses the other group layout than this record.
    #[error("group message uses another group layout")]
    WrongLayout,
    /// The message was already decrypted, or it is older than the keys kept for
    /// skipped iterations ([`crate::group::limits::MAX_MESSAGE_KEYS`]).
    #[error("duplicate or too old group message (iteration {iteration})")]
    DuplicateMessage {
        /// The message's iteration.
        iteration: u32,
    },
    /// The message is further ahead than [`crate::group::limits::MAX_FORWARD_JUMP`].
    #[error("group message too far ahead (iteration {iteration}, expected about {expected})")]
    TooFarAhead {
        /// The message's iteration.
        iteration: u32,
        /// The next iteration the chain expected.
        expected: u32,
    },
    /// The message claims iteration `u32::MAX`, which no sender may use: the chain has no
    /// position after it to record that its key was used.
    #[error("group message past the end of the chain (iteration {iteration})")]
    ChainExhausted {
        /// The message's iteration.
        iteration: u32,
    },
    /// The signature, padding or decryption failed. Deliberately one variant.
    #[error("group message failed authentication")]
    InvalidMessage,
}

impl GroupDecryptError {
    /// The variant's name, stable across versions (used as the peer protocol's `code`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoSenderKey { .. } => "NoSenderKeyState",
            Self::WrongDistribution => "WrongDistribution",
            Self::WrongLayout => "WrongLayout",
            Self::DuplicateMessage { .. } => "DuplicateMessage",
            Self::TooFarAhead { .. } => "TooFarAhead",
            Self::ChainExhausted { .. } => "ChainExhausted",
            Self::InvalidMessage => "InvalidMessage",
        }
    }
}

/// A sender-key record that cannot be loaded.
pub type GroupRecordError = RecordError;
