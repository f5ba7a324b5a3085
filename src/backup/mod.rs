//! End-to-end encrypted backups: a backup only its owner can open.
//!
//! A backup is encrypted under a random [`BackupKey`] that the user keeps, either as 64
//! hex digits or in a password [`vault`] (OPAQUE, RFC 9807) that never sees the key or
//! the password.

mod crypt15;
mod format;
mod gcm;
mod key;
pub(crate) mod payload;
mod setting;
pub mod vault;

pub use crypt15::{Crypt15Error, Crypt15Info, Crypt15Reader, Crypt15Writer};
pub use format::{
    BACKUP_COMPRESSION_LEVEL, BackupReader, BackupWriter, KeyKind, ReadError, WriteError,
};
pub use key::{BACKUP_KEY_DIGITS, BackupKey, BackupKeyError};
pub use vault::{RecoveredKey, VaultError, VaultParams, VaultServer};

/// Which backup a file is: its generation (the device counts up with every backup it
/// writes) and the SHA-256 of its header, which binds its random IV and key check.
///
/// The device, or the password vault, keeps the latest stamp; a restore that is handed
/// an older file than the stamp it expects refuses it as rolled back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BackupStamp {
    /// Counts up with every backup a device writes; the first is 1.
    pub generation: u64,
    /// SHA-256 over the file's header.
    pub digest: [u8; 32],
}

impl BackupStamp {
    /// Length of [`BackupStamp::to_bytes`].
    pub const LEN: usize = 40;

    /// Generation (8 bytes, big-endian) then digest.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..8].copy_from_slice(&self.generation.to_be_bytes());
        out[8..].copy_from_slice(&self.digest);
        out
    }

    /// The inverse of [`BackupStamp::to_bytes`]; `None` unless exactly 40 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; Self::LEN] = bytes.try_into().ok()?;
        let (generation, digest) = bytes.split_at(8);
        Some(Self {
            generation: u64::from_be_bytes(generation.try_into().ok()?),
            digest: digest.try_into().ok()?,
        })
    }
}

pub use payload::{BackupGroup, BackupMessage, PayloadError};
pub use setting::{BackupSetting, BackupStatus, RestoreRecord};
