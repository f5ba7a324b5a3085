//! The errors of decoding keys and loading stored records: the lowest layer, which every
//! other error may carry (`crate::error` re-exports both).

/// A key or signature had the wrong encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The bytes had the wrong length.
    #[error("key has the wrong length: expected {expected} bytes, found {found}")]
    WrongLength {
        /// Required length.
        expected: usize,
        /// Length given.
        found: usize,
    },
    /// The type byte was not `0x05` (Curve25519).
    #[error("unknown key type byte {found:#04x}")]
    UnknownKeyType {
        /// The type byte found.
        found: u8,
    },
    /// Not the canonical encoding of a Curve25519 key (bit 255 set, or not below
    /// 2^255 - 19): another spelling of some key, which no honest peer sends.
    #[error("key is not canonically encoded")]
    NonCanonical,
    /// A public key given with a private key is not that private key's.
    #[error("public key does not belong to the private key")]
    MismatchedPair,
}

/// A stored record that cannot be loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The protobuf does not decode.
    #[error("record is malformed")]
    Malformed,
    /// Written by a format this version does not know.
    #[error("record format version {found} is not supported")]
    UnsupportedVersion {
        /// The format version found.
        found: u32,
    },
    /// A required field is absent.
    #[error("record lacks field {field}")]
    MissingField {
        /// The field's name in `storage.proto`.
        field: &'static str,
    },
    /// A key field is invalid.
    #[error("record holds an invalid key: {0}")]
    Key(KeyError),
    /// Two fields contradict each other (for example a public key that does not match
    /// its private key).
    #[error("record field {field} is inconsistent")]
    Inconsistent {
        /// The field's name in `storage.proto`.
        field: &'static str,
    },
}
