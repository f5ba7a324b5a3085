//! The first storage format's sealing, kept only to open a store written by it once and
//! reseal every row in the current format ([`super::Sealer`]): AES-256-GCM under one key
//! per `StoreKey` and backend (shared by every device in a PostgreSQL database), with
//! hashed nonces and no row versions.

use zeroize::Zeroizing;

use super::{OpenFailed, StoreKey, derive};
use crate::crypto::RowAead;

/// The first format's KDF salt and associated-data prefix of a backend.
pub(crate) struct LegacyDomain {
    kdf_salt: &'static [u8],
    aad_prefix: &'static [u8],
}

/// The SQLite store's first format.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) const SQLITE_V1: LegacyDomain = LegacyDomain {
    kdf_salt: b"confide sqlite store v1",
    aad_prefix: b"confide/sqlite/v1\0",
};

/// The PostgreSQL store's first format.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) const POSTGRES_V1: LegacyDomain = LegacyDomain {
    kdf_salt: b"confide postgres store v1",
    aad_prefix: b"confide/postgres/v1\0",
};

impl LegacyDomain {
    /// The current format's domain keeps the first format's salt for the one key that
    /// must not change: the message-index key (a stored message's row id is an HMAC
    /// under it, and the message id it was made from is not stored).
    pub(crate) const fn index_salt(&self) -> &'static [u8] {
        self.kdf_salt
    }
}

/// Opens first-format rows.
pub(crate) struct LegacySealer {
    aead: RowAead,
    aad_prefix: &'static [u8],
}

impl LegacySealer {
    pub(crate) fn new(key: &StoreKey, domain: &LegacyDomain) -> Option<Self> {
        let seal = derive(key, domain.kdf_salt, &[b"seal"]);
        Some(Self {
            aead: RowAead::gcm(&seal)?,
            aad_prefix: domain.aad_prefix,
        })
    }

    /// Opens what the first format sealed for (`table`, `row`), `row` starting with the
    /// owner prefix.
    pub(crate) fn open(
        &self,
        table: &str,
        row: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, OpenFailed> {
        super::open_sealed(&self.aead, self.aad_prefix, table, row, sealed)
    }
}
