//! The backup key: 32 random bytes that only the user (or their password vault) holds.
//!
//! It is shown and typed as 64 hexadecimal digits in sixteen groups of four, as
//! WhatsApp's "64-digit key" is. Parsing is strict: a wrong length or a character that is
//! not a hex digit is a typed [`BackupKeyError`], never a silently different key. A typo
//! that swaps one hex digit for another still parses (the 64 digits carry no checksum,
//! so the key stays crypt15-compatible); the backup header's key check then refuses it
//! as a wrong key before anything is decrypted.

use core::fmt;

use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

use crate::crypto::hkdf_sha256;

/// Number of hex digits in a typed backup key.
pub const BACKUP_KEY_DIGITS: usize = 64;

/// A backup's root key. Secret: zeroized on drop, never printed by `Debug`.
#[derive(Clone)]
pub struct BackupKey(Zeroizing<[u8; 32]>);

/// Why a typed backup key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackupKeyError {
    /// The text held this many hex digits instead of 64.
    #[error("a backup key has 64 hex digits, this one has {digits}")]
    WrongLength {
        /// Hex digits found (separators not counted).
        digits: usize,
    },
    /// A character that is neither a hex digit nor a separator (space, `-`).
    #[error("character {position} of the backup key is not a hex digit")]
    NotHex {
        /// Zero-based position of the character in the text as given.
        position: usize,
    },
}

impl BackupKey {
    /// A fresh random key.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(bytes.as_mut());
        Self(bytes)
    }

    /// A key from its 32 bytes (for example as the password vault releases it).
    pub fn from_bytes(mut bytes: [u8; 32]) -> Self {
        let key = Self(Zeroizing::new(bytes));
        bytes.zeroize();
        key
    }

    /// The 32 key bytes, for handing to a vault or an app's own secure storage.
    pub fn expose_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses the 64 hex digits a user typed. Spaces, tabs, newlines and `-` between
    /// digits are ignored; upper and lower case are accepted.
    pub fn parse(text: &str) -> Result<Self, BackupKeyError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        let mut digits = 0usize;
        for (position, c) in text.chars().enumerate() {
            if c.is_whitespace() || c == '-' {
                continue;
            }
            let value = c.to_digit(16).ok_or(BackupKeyError::NotHex { position })?;
            if digits < BACKUP_KEY_DIGITS {
                // `value` < 16 and `digits / 2` < 32: both casts and the index are in range.
                let byte = &mut bytes[digits / 2];
                *byte = (*byte << 4) | value as u8;
            }
            digits += 1;
        }
        if digits != BACKUP_KEY_DIGITS {
            return Err(BackupKeyError::WrongLength { digits });
        }
        Ok(Self(bytes))
    }

    /// The key as a user writes it down: sixteen groups of four lower-case hex digits.
    /// The returned string zeroizes on drop.
    pub fn to_digits(&self) -> Zeroizing<String> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = Zeroizing::new(String::with_capacity(BACKUP_KEY_DIGITS + 15));
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 && i % 2 == 0 {
                out.push(' ');
            }
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        out
    }

    /// The key that encrypts backup files: HKDF-SHA256 with a zero salt and the info
    /// `"backup encryption"`, as crypt15 derives it.
    pub(crate) fn file_key(&self) -> Zeroizing<[u8; 32]> {
        self.derive(b"backup encryption")
    }

    /// The key that authenticates a backup's header (its key check): crypt15's
    /// `"metadata authentication"` sibling.
    pub(crate) fn metadata_authentication_key(&self) -> Zeroizing<[u8; 32]> {
        self.derive(b"metadata authentication")
    }

    /// crypt15's `"metadata encryption"` key, for metadata kept beside a backup (for
    /// example in cloud storage).
    pub fn metadata_encryption_key(&self) -> Zeroizing<[u8; 32]> {
        self.derive(b"metadata encryption")
    }

    fn derive(&self, info: &[u8]) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        hkdf_sha256(&[0u8; 32], self.0.as_ref(), info, &mut out);
        out
    }
}

impl fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BackupKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_round_trip_and_group() {
        let key = BackupKey::from_bytes(core::array::from_fn(|i| i as u8 * 7));
        let digits = key.to_digits();
        assert_eq!(digits.split(' ').count(), 16);
        assert!(digits.split(' ').all(|g| g.len() == 4));
        let back = BackupKey::parse(&digits.to_uppercase()).unwrap();
        assert_eq!(back.expose_bytes(), key.expose_bytes());
        assert_eq!(format!("{key:?}"), "BackupKey(..)");
    }

    #[test]
    fn typos_are_typed_errors() {
        let key = BackupKey::from_bytes([0xab; 32]);
        let digits = key.to_digits();
        let short = &digits[..digits.len() - 1];
        assert_eq!(
            BackupKey::parse(short).unwrap_err(),
            BackupKeyError::WrongLength { digits: 63 }
        );
        let long = format!("{}0", digits.as_str());
        assert_eq!(
            BackupKey::parse(&long).unwrap_err(),
            BackupKeyError::WrongLength { digits: 65 }
        );
        let mut bad = digits.to_string();
        bad.replace_range(5..6, "g");
        assert_eq!(
            BackupKey::parse(&bad).unwrap_err(),
            BackupKeyError::NotHex { position: 5 }
        );
        // The letter O for a zero.
        let oh = digits.replacen('a', "O", 1);
        assert!(matches!(
            BackupKey::parse(&oh),
            Err(BackupKeyError::NotHex { .. })
        ));
    }

    #[test]
    fn derivations_match_crypt15() {
        // HKDF-SHA256(salt = 32 zero bytes, IKM = root, info) recomputed from RFC 5869
        // with HMAC from the hmac crate's formula here: Extract then one Expand block.
        let key = BackupKey::from_bytes([0x11; 32]);
        let prk = crate::crypto::hmac_sha256(&[0u8; 32], &[&[0x11; 32]]);
        let t1 = crate::crypto::hmac_sha256(&prk, &[b"backup encryption", &[1]]);
        assert_eq!(*key.file_key(), t1);
        assert_ne!(*key.file_key(), *key.metadata_authentication_key());
        assert_ne!(
            *key.metadata_encryption_key(),
            *key.metadata_authentication_key()
        );
    }
}
