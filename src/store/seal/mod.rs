//! Row sealing, shared by the persistent stores: AES-256-GCM-SIV under a key derived
//! from the app's [`StoreKey`] for one device, with the table and row key as associated
//! data and a nonce made of the device's open count and a write counter. Each store has
//! its own [`Domain`], so a value sealed for one backend never opens in another.

mod legacy;

pub(crate) use legacy::LegacySealer;

use std::sync::atomic::{AtomicU64, Ordering};

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::crypto::{self, HmacKey, RowAead};

/// Length of a sealed value's nonce (also its version).
pub(crate) const NONCE_LEN: usize = 12;

/// Length of the GCM tag after each sealed value.
const TAG_LEN: usize = 16;

/// The 32-byte key an app supplies to seal its persistent store (`SqliteStore`,
/// `PostgresStore`). Zeroized on drop; `Debug` prints no key material.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct StoreKey([u8; 32]);

impl StoreKey {
    /// The key's length in bytes.
    pub const LEN: usize = 32;

    /// A key from its 32 bytes (keep them in the platform keystore, not next to the
    /// database).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A fresh random key.
    pub fn generate<R: rand_core::RngCore + rand_core::CryptoRng>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The key's bytes, for the app to keep in its keystore.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl TryFrom<&[u8]> for StoreKey {
    type Error = crate::KeyError;

    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        <[u8; 32]>::try_from(bytes)
            .map(Self)
            .map_err(|_| crate::KeyError::WrongLength {
                expected: Self::LEN,
                found: bytes.len(),
            })
    }
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKey(<redacted>)")
    }
}

/// Domain separation between the stores that seal under a [`StoreKey`]: an app may use
/// one key for a SQLite file and a PostgreSQL database, and their rows must not open in
/// each other.
pub(crate) struct Domain {
    /// HKDF salt for the current format's keys.
    kdf_salt: &'static [u8],
    /// Prefix of every row's associated data.
    aad_prefix: &'static [u8],
    /// The first format of this store, which the message-index key still comes from.
    pub(crate) legacy: &'static legacy::LegacyDomain,
}

/// The SQLite store's domain.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) const SQLITE: Domain = Domain {
    kdf_salt: b"confide sqlite store v2",
    aad_prefix: b"confide/sqlite/v2\0",
    legacy: &legacy::SQLITE_V1,
};

/// The PostgreSQL store's domain.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) const POSTGRES: Domain = Domain {
    kdf_salt: b"confide postgres store v2",
    aad_prefix: b"confide/postgres/v2\0",
    legacy: &legacy::POSTGRES_V1,
};

/// HKDF-SHA256(salt, ikm = the store key, info) to 32 bytes.
fn derive(key: &StoreKey, salt: &[u8], info: &[&[u8]]) -> Zeroizing<[u8; 32]> {
    let info: Vec<u8> = info.concat();
    let mut out = Zeroizing::new([0u8; 32]);
    crypto::hkdf_sha256(salt, &key.0, &info, &mut out);
    out
}

/// The associated data of a row: the prefix, the table, a NUL, the row key.
fn aad(prefix: &[u8], table: &str, row: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(prefix.len() + table.len() + 1 + row.len());
    aad.extend_from_slice(prefix);
    aad.extend_from_slice(table.as_bytes());
    aad.push(0);
    aad.extend_from_slice(row);
    aad
}

/// Opens `nonce ‖ ciphertext ‖ tag` sealed for (`table`, `row`) under `aead`, the one
/// layout both storage formats use.
fn open_sealed(
    aead: &RowAead,
    aad_prefix: &[u8],
    table: &str,
    row: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, OpenFailed> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(OpenFailed);
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = <[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| OpenFailed)?;
    let mut buf = Zeroizing::new(body.to_vec());
    let len = aead
        .open(nonce, &aad(aad_prefix, table, row), &mut buf)
        .ok_or(OpenFailed)?;
    buf.truncate(len);
    Ok(buf)
}

/// The most writes one open seals (the counter half of the nonce is 48 bits).
const MAX_COUNTER: u64 = (1 << 48) - 1;

/// The most opens of one device (the generation half of the nonce is 48 bits).
pub(crate) const MAX_GENERATION: u64 = (1 << 48) - 1;

/// Seals and opens one device's rows.
///
/// The key is the device's own (HKDF of the store key with the device's name as info),
/// so devices sharing a database and a `StoreKey` never share a sealing key. The nonce
/// is the device's generation (48 bits: its open count, kept in its sealed integrity
/// head and bumped in the open's own transaction) then a write counter of this open
/// (48 bits): unique by construction while the database is not rolled back. AES-GCM-SIV
/// makes a repeat (a rolled-back database) reveal only that two sealed values are equal,
/// and never lets a row be forged.
pub(crate) struct Sealer {
    aead: RowAead,
    aad_prefix: &'static [u8],
    index: HmacKey,
    entry: HmacKey,
    kyber_use: HmacKey,
    generation: AtomicU64,
    counter: AtomicU64,
}

/// A row failed authentication: wrong key, a swapped or edited row, or corruption.
#[derive(Debug)]
pub(crate) struct OpenFailed;

/// Sealing failed: this open's nonces are used up (2^48 writes) or it has no generation
/// yet. Reopening the store starts a new generation.
#[derive(Debug)]
pub(crate) struct SealFailed;

impl Sealer {
    /// The sealer of the device whose row keys start with `owner` (empty for SQLite).
    pub(crate) fn new(key: &StoreKey, domain: &Domain, owner: &[u8]) -> Option<Self> {
        let seal = derive(key, domain.kdf_salt, &[b"seal\0", owner]);
        let entry = derive(key, domain.kdf_salt, &[b"entry\0", owner]);
        let kyber_use = derive(key, domain.kdf_salt, &[b"kyber use\0", owner]);
        // Unchanged since the first format: stored message ids were made with it.
        let index = derive(key, domain.legacy.index_salt(), &[b"index"]);
        Some(Self {
            aead: RowAead::gcm_siv(&seal)?,
            aad_prefix: domain.aad_prefix,
            index: HmacKey::new(index.as_ref()),
            entry: HmacKey::new(entry.as_ref()),
            kyber_use: HmacKey::new(kyber_use.as_ref()),
            generation: AtomicU64::new(0),
            counter: AtomicU64::new(0),
        })
    }

    /// Sets this open's generation (at most [`MAX_GENERATION`]) and restarts the write
    /// counter.
    pub(crate) fn set_generation(&self, generation: u64) {
        self.generation
            .store(generation.min(MAX_GENERATION), Ordering::SeqCst);
        self.counter.store(0, Ordering::SeqCst);
    }

    fn nonce(&self) -> Result<[u8; NONCE_LEN], SealFailed> {
        let generation = self.generation.load(Ordering::SeqCst);
        let counter = self.counter.fetch_add(1, Ordering::SeqCst);
        if generation == 0 || counter > MAX_COUNTER {
            return Err(SealFailed);
        }
        let mut out = [0u8; NONCE_LEN];
        out[..6].copy_from_slice(&generation.to_be_bytes()[2..]);
        out[6..].copy_from_slice(&counter.to_be_bytes()[2..]);
        Ok(out)
    }

    /// `nonce ‖ AES-256-GCM-SIV(value) ‖ tag`, bound to (`table`, `row`).
    pub(crate) fn seal(
        &self,
        table: &str,
        row: &[u8],
        value: &[u8],
    ) -> Result<Vec<u8>, SealFailed> {
        let nonce = self.nonce()?;
        let mut out = Vec::with_capacity(NONCE_LEN + value.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(value);
        let aad = aad(self.aad_prefix, table, row);
        match self.aead.seal(nonce, &aad, &mut out[NONCE_LEN..]) {
            Some(tag) => {
                out.extend_from_slice(&tag);
                Ok(out)
            }
            None => {
                out.zeroize();
                Err(SealFailed)
            }
        }
    }

    /// Opens what [`Sealer::seal`] wrote for (`table`, `row`).
    pub(crate) fn open(
        &self,
        table: &str,
        row: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, OpenFailed> {
        open_sealed(&self.aead, self.aad_prefix, table, row, sealed)
    }

    /// The row key a message id is stored under: HMAC(index key, address ‖ id), so the
    /// file does not show which of the server's ciphertexts this device received.
    pub(crate) fn message_index(&self, address_row: &[u8], id: &[u8; 32]) -> [u8; 32] {
        self.index.sign(&[address_row, id])
    }

    /// The row id a use of a Kyber prekey is recorded under: an HMAC of the use (ids
    /// and base key) under the device's own key, so the database shows no base key.
    pub(crate) fn kyber_use_index(&self, used: &[u8]) -> [u8; 32] {
        self.kyber_use.sign_one(used)
    }

    /// Where the integrity head records the version of (`table`, `row`): an HMAC under
    /// the device's entry key, so the head shows no row keys.
    pub(crate) fn entry(&self, table: &str, row: &[u8]) -> [u8; 16] {
        let mac = self.entry.sign(&[table.as_bytes(), &[0], row]);
        let mut out = [0u8; 16];
        out.copy_from_slice(&mac[..16]);
        out
    }
}

/// The nonce of a sealed value: unique per write, so it doubles as the row's version.
pub(crate) fn nonce_of(sealed: &[u8]) -> Option<[u8; NONCE_LEN]> {
    sealed.get(..NONCE_LEN)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(owner: &[u8]) -> Sealer {
        Sealer::new(&StoreKey::from_bytes([3; 32]), &SQLITE, owner).unwrap()
    }

    /// Nonces are the generation then a counter: distinct within an open and across
    /// generations by construction, and nothing is sealed without a generation or past
    /// the counter's end.
    #[test]
    fn nonces_are_unique_by_construction_and_bounded() {
        let s = sealer(b"");
        assert!(s.seal("t", b"r", b"v").is_err(), "no generation yet");
        let mut seen = std::collections::HashSet::new();
        for generation in [1u64, 2, MAX_GENERATION] {
            s.set_generation(generation);
            for _ in 0..100 {
                let sealed = s.seal("t", b"r", b"same value").unwrap();
                assert!(seen.insert(nonce_of(&sealed).unwrap()));
            }
        }
        s.set_generation(1);
        let first = nonce_of(&s.seal("t", b"r", b"v").unwrap()).unwrap();
        assert_eq!(first, [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        s.counter.store(MAX_COUNTER, Ordering::SeqCst);
        assert!(s.seal("t", b"r", b"v").is_ok());
        assert!(s.seal("t", b"r", b"v").is_err(), "counter used up");
    }

    /// Each device has its own key: a value sealed for one device's row does not open
    /// as the same row of another, even with a repeated nonce.
    #[test]
    fn devices_do_not_share_a_sealing_key() {
        let (a, b) = (sealer(b"\0\0\0\x01a"), sealer(b"\0\0\0\x01b"));
        a.set_generation(1);
        b.set_generation(1);
        let sealed = a.seal("session", b"row", b"value").unwrap();
        assert_eq!(
            a.open("session", b"row", &sealed).unwrap().as_slice(),
            b"value"
        );
        assert!(b.open("session", b"row", &sealed).is_err());
        let other = b.seal("session", b"row", b"value").unwrap();
        assert_eq!(nonce_of(&sealed), nonce_of(&other));
        assert_ne!(sealed, other);
        assert_ne!(a.entry("session", b"row"), b.entry("session", b"row"));
    }

    /// A repeated nonce (a rolled-back database) lets no row be forged: the bytes of
    /// two values sealed under one nonce, combined, open as nothing.
    #[test]
    fn a_repeated_nonce_forges_nothing() {
        let s = sealer(b"");
        s.set_generation(1);
        let one = s.seal("t", b"r", &[0u8; 32]).unwrap();
        s.set_generation(1);
        let two = s.seal("t", b"r", &[1u8; 32]).unwrap();
        assert_eq!(nonce_of(&one), nonce_of(&two));
        // GCM's forgery from a repeated nonce: flip the plaintext difference into one
        // ciphertext and keep a tag. Under GCM-SIV the keystreams differ, so it fails.
        let mut forged = one.clone();
        for (f, (a, b)) in forged[NONCE_LEN..NONCE_LEN + 32]
            .iter_mut()
            .zip(one[NONCE_LEN..].iter().zip(&two[NONCE_LEN..]))
        {
            *f ^= a ^ b ^ 1;
        }
        assert!(s.open("t", b"r", &forged).is_err());
        assert_ne!(
            one[NONCE_LEN..NONCE_LEN + 32]
                .iter()
                .zip(&two[NONCE_LEN..])
                .map(|(a, b)| a ^ b)
                .collect::<Vec<_>>(),
            vec![1u8; 32]
        );
    }
}
