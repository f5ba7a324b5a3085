//! Opening a persistent store: the one error both stores report, and the checks both
//! make.

use super::super::rows::Rows;
use super::super::seal::LegacySealer;
use crate::error::{BackendError, StoreError};

/// Opening a persistent store (`SqliteStore`, `PostgresStore`) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The database failed: cannot open the file or connect (no connection from the
    /// pool), an I/O error, not a database, a statement refused.
    #[error("database error")]
    Backend(#[source] BackendError),
    /// The device name is empty, longer than the store allows or holds a NUL
    /// (`PostgresStore`, whose database holds many devices).
    #[error("invalid device name")]
    InvalidDevice,
    /// The rows were sealed with another key.
    #[error("the store key does not match this database")]
    WrongKey,
    /// The database was written by a newer version of confide.
    #[error("database schema version {found} is newer than the supported {supported}")]
    NewerSchema {
        /// The database's version.
        found: u32,
        /// The newest version this release knows.
        supported: u32,
    },
    /// The database lacks its key check, or a stored row fails to load.
    #[error("database is corrupt ({table})")]
    Corrupt {
        /// The table at fault.
        table: &'static str,
    },
    /// The store key could not be expanded (never happens with a 32-byte key).
    #[error("store key derivation failed")]
    KeyDerivation,
}

impl OpenError {
    /// An [`OpenError::Backend`] from the backend's error.
    pub(crate) fn backend(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Backend(BackendError::new(e))
    }

    /// Loading the device's identity after the key check failed: a row that does not
    /// open is corruption of `meta`, anything else the backend's failure.
    pub(crate) fn loading(e: StoreError) -> Self {
        match e {
            StoreError::Tampered(_) | StoreError::Corrupt(_) => Self::Corrupt { table: "meta" },
            StoreError::Backend(b) => Self::Backend(b),
            other => Self::backend(other),
        }
    }
}

/// A known plaintext sealed at a store's (or, in PostgreSQL, a device's) first open, to
/// tell a wrong key from a tampered row.
pub(crate) struct KeyCheck(pub(crate) &'static [u8]);

impl KeyCheck {
    /// The sealed check to store at first open.
    pub(crate) fn seal(&self, rows: &Rows) -> Result<Vec<u8>, StoreError> {
        rows.seal("meta", b"key_check", self.0)
    }

    /// Whether the stored check opens to the known plaintext under this key.
    pub(crate) fn matches(&self, rows: &Rows, sealed: &[u8]) -> Result<(), OpenError> {
        match rows.open("meta", b"key_check", sealed) {
            Ok(v) if v.as_slice() == self.0 => Ok(()),
            _ => Err(OpenError::WrongKey),
        }
    }

    /// Whether a first-format check opens to the known plaintext under this key;
    /// `owner` is the device's row-key prefix.
    pub(crate) fn matches_legacy(
        &self,
        legacy: &LegacySealer,
        owner: &[u8],
        sealed: &[u8],
    ) -> Result<(), OpenError> {
        let mut row = owner.to_vec();
        row.extend_from_slice(b"key_check");
        match legacy.open("meta", &row, sealed) {
            Ok(v) if v.as_slice() == self.0 => Ok(()),
            _ => Err(OpenError::WrongKey),
        }
    }
}

/// A schema found at `found` by a release that supports `supported`: refused if newer.
pub(crate) fn check_schema(found: u32, supported: u32) -> Result<(), OpenError> {
    if found > supported {
        return Err(OpenError::NewerSchema { found, supported });
    }
    Ok(())
}
