//! The Kyber prekey rows (protocol v4): a record sealed with its last-resort flag, and
//! the recorded uses of last-resort keys, each under an HMAC of the use so the database
//! shows neither the signed prekey it went with nor the initiator's base key.

use zeroize::Zeroizing;

use super::{Rows, tampered};
use crate::error::StoreError;
use crate::store::KyberPreKeyUse;

/// The flag byte before a one-time key's record.
const ONE_TIME: u8 = 0;
/// The flag byte before a last-resort key's record.
const LAST_RESORT: u8 = 1;

/// The length of a use's sealed value: both ids and the base key's 32 bytes.
const USE_LEN: usize = 4 + 4 + 32;

/// The row key of a recorded use: the Kyber prekey's id, then the use's HMAC.
pub(crate) fn use_row(kyber_id: u32, idx: &[u8]) -> Vec<u8> {
    let mut row = Vec::with_capacity(4 + idx.len());
    row.extend_from_slice(&kyber_id.to_be_bytes());
    row.extend_from_slice(idx);
    row
}

/// What a use is recorded as, sealed: the Kyber prekey id, the signed prekey id and the
/// base key (its 32 bytes, which is what tells two keys apart).
fn use_value(used: &KyberPreKeyUse) -> [u8; USE_LEN] {
    let mut out = [0u8; USE_LEN];
    out[..4].copy_from_slice(&used.kyber_pre_key_id.to_be_bytes());
    out[4..8].copy_from_slice(&used.signed_pre_key_id.to_be_bytes());
    out[8..].copy_from_slice(used.base_key.x25519_bytes());
    out
}

/// A Kyber prekey row, opened.
pub(crate) struct KyberRow {
    /// The record, as the app saved it.
    pub(crate) record: Zeroizing<Vec<u8>>,
    /// Whether the key stays after use.
    pub(crate) last_resort: bool,
}

impl Rows {
    /// The sealed row of Kyber prekey `id`: its flag, then its record.
    pub(crate) fn seal_kyber_pre_key(
        &self,
        id: u32,
        record: &[u8],
        last_resort: bool,
    ) -> Result<Vec<u8>, StoreError> {
        let mut plain = Zeroizing::new(Vec::with_capacity(1 + record.len()));
        plain.push(if last_resort { LAST_RESORT } else { ONE_TIME });
        plain.extend_from_slice(record);
        self.seal("kyber_pre_key", &id.to_be_bytes(), &plain)
    }

    /// Kyber prekey `id` from its sealed row.
    pub(crate) fn open_kyber_pre_key(
        &self,
        id: u32,
        sealed: &[u8],
    ) -> Result<KyberRow, StoreError> {
        let plain = self.open("kyber_pre_key", &id.to_be_bytes(), sealed)?;
        let (flag, record) = plain
            .split_first()
            .ok_or_else(|| tampered("kyber_pre_key"))?;
        let last_resort = match *flag {
            ONE_TIME => false,
            LAST_RESORT => true,
            _ => return Err(tampered("kyber_pre_key")),
        };
        Ok(KyberRow {
            record: Zeroizing::new(record.to_vec()),
            last_resort,
        })
    }

    /// The row id a use is recorded under: an HMAC of the use under the device's key.
    pub(crate) fn kyber_use_index(&self, used: &KyberPreKeyUse) -> [u8; 32] {
        self.sealer.kyber_use_index(&use_value(used))
    }

    /// The sealed record of `used`, whose row id is `idx`.
    pub(crate) fn seal_kyber_use(
        &self,
        used: &KyberPreKeyUse,
        idx: &[u8; 32],
    ) -> Result<Vec<u8>, StoreError> {
        let row = use_row(used.kyber_pre_key_id, idx);
        self.seal("kyber_pre_key_use", &row, &use_value(used))
    }

    /// Checks that the sealed use under `idx` records `used`.
    pub(crate) fn check_kyber_use(
        &self,
        used: &KyberPreKeyUse,
        idx: &[u8; 32],
        sealed: &[u8],
    ) -> Result<(), StoreError> {
        let row = use_row(used.kyber_pre_key_id, idx);
        let plain = self.open("kyber_pre_key_use", &row, sealed)?;
        if plain.as_slice() != use_value(used) {
            return Err(tampered("kyber_pre_key_use"));
        }
        Ok(())
    }
}
