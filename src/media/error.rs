//! One error enum per media operation. `Display` texts name no key, hash or content.

/// Key bytes that are not a media key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediaKeyError {
    /// The bytes had the wrong length.
    #[error("media key has the wrong length: expected {expected} bytes, found {found}")]
    WrongLength {
        /// Required length.
        expected: usize,
        /// Length given.
        found: usize,
    },
}

/// A media kind name that [`MediaKind`](super::MediaKind) does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediaKindError {
    /// Not one of the kind names or aliases.
    #[error("unknown media kind")]
    Unknown,
}

/// Why encrypting a media stream or file failed. Encrypting bytes in memory cannot fail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaEncryptError {
    /// Reading the plaintext failed.
    #[error("reading the media plaintext failed")]
    Read {
        /// The reader's error.
        #[source]
        source: std::io::Error,
    },
    /// Writing the encrypted upload failed.
    #[error("writing the encrypted media failed")]
    Write {
        /// The writer's error.
        #[source]
        source: std::io::Error,
    },
    /// Creating, syncing or renaming the output file failed.
    #[error("creating or moving the encrypted media file failed")]
    Output {
        /// The file system's error.
        #[source]
        source: std::io::Error,
    },
    /// The helper thread that hashes stopped before the stream ended.
    #[error("the media hashing thread stopped unexpectedly")]
    HelperStopped,
}

/// Why decrypting or verifying a media upload failed. Every check on the content runs
/// before the plaintext is handed over as final; see [the module docs](super).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaDecryptError {
    /// The upload is shorter than one AES block and the MAC.
    #[error("encrypted media too short: {found} bytes, at least {minimum} needed")]
    TooShort {
        /// Length of the upload.
        found: u64,
        /// The shortest valid upload (16-byte block and 10-byte MAC).
        minimum: u64,
    },
    /// The ciphertext (the upload less its MAC) is not a whole number of AES blocks.
    #[error("encrypted media of {ciphertext_len} ciphertext bytes is not block aligned")]
    NotBlockAligned {
        /// Length of the upload less its 10-byte MAC.
        ciphertext_len: u64,
    },
    /// The truncated HMAC does not match: wrong key, wrong kind, or a modified upload.
    #[error("encrypted media MAC mismatch")]
    BadMac,
    /// The SHA-256 of the upload is not the `file_enc_sha256` the message gave.
    #[error("encrypted media SHA-256 does not match the expected value")]
    EncSha256Mismatch,
    /// The MAC held but the PKCS#7 padding is invalid: the sender encrypted it wrongly.
    #[error("authenticated media has invalid padding")]
    BadPadding,
    /// The SHA-256 of the plaintext is not the `file_sha256` the message gave.
    #[error("decrypted media SHA-256 does not match the expected value")]
    FileSha256Mismatch,
    /// The plaintext length is not the `file_length` the message gave.
    #[error("decrypted media is {found} bytes, the message said {expected}")]
    LengthMismatch {
        /// Length the message gave.
        expected: u64,
        /// Length decrypted.
        found: u64,
    },
    /// Reading the upload failed.
    #[error("reading the encrypted media failed")]
    Read {
        /// The reader's error.
        #[source]
        source: std::io::Error,
    },
    /// Writing the plaintext failed.
    #[error("writing the decrypted media failed")]
    Write {
        /// The writer's error.
        #[source]
        source: std::io::Error,
    },
    /// Creating, syncing or renaming the output file failed.
    #[error("creating or moving the decrypted media file failed")]
    Output {
        /// The file system's error.
        #[source]
        source: std::io::Error,
    },
    /// The helper thread that hashes stopped before the stream ended.
    #[error("the media hashing thread stopped unexpectedly")]
    HelperStopped,
}
