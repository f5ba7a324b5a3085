//! Row sealing, shared by the persistent stores: AES-256-GCM under a key derived from
//! the app's [`StoreKey`], with the table and row key as associated data. Each store
//! has its own [`Domain`], so a value sealed for one backend never opens in another.

use std::sync::atomic::{AtomicU64, Ordering};

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::crypto::{self, Aes256Gcm, HmacKey};

const NONCE_LEN: usize = Aes256Gcm::NONCE_LEN;

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
    /// HKDF salt for everything derived from the key.
    kdf_salt: &'static [u8],
    /// Prefix of every row's associated data.
    aad_prefix: &'static [u8],
}

/// The SQLite store's domain (unchanged since its first release: its files must open).
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) const SQLITE: Domain = Domain {
    kdf_salt: b"confide sqlite store v1",
    aad_prefix: b"confide/sqlite/v1\0",
};

/// The PostgreSQL store's domain.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) const POSTGRES: Domain = Domain {
    kdf_salt: b"confide postgres store v1",
    aad_prefix: b"confide/postgres/v1\0",
};

/// HKDF-SHA256(salt = the domain's, ikm = the store key, info) to 32 bytes.
fn derive(key: &StoreKey, domain: &Domain, info: &'static [u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    crypto::hkdf_sha256(domain.kdf_salt, &key.0, info, &mut out);
    out
}

/// Seals and opens rows. Nonces are SHA-256(salt ‖ generation ‖ counter) truncated to
/// 96 bits: `salt` is drawn from the caller's RNG at open, `generation` is a counter the
/// database bumps (durably) at every open, `counter` counts writes within this open.
/// Either a good RNG or an un-rolled-back database alone keeps nonces unique.
pub(crate) struct Sealer {
    aead: Aes256Gcm,
    aad_prefix: &'static [u8],
    index: HmacKey,
    salt: [u8; 16],
    generation: AtomicU64,
    counter: AtomicU64,
}

/// A row failed authentication: wrong key, a swapped or edited row, or corruption.
#[derive(Debug)]
pub(crate) struct OpenFailed;

impl Sealer {
    /// A sealer in the SQLite store's domain.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn new(key: &StoreKey, salt: [u8; 16]) -> Option<Self> {
        Self::in_domain(key, salt, &SQLITE)
    }

    /// A sealer whose keys and associated data are separated by `domain`.
    pub(crate) fn in_domain(key: &StoreKey, salt: [u8; 16], domain: &Domain) -> Option<Self> {
        let seal = derive(key, domain, b"seal");
        let index = derive(key, domain, b"index");
        let aead = Aes256Gcm::new(&seal)?;
        Some(Self {
            aead,
            aad_prefix: domain.aad_prefix,
            index: HmacKey::new(index.as_ref()),
            salt,
            generation: AtomicU64::new(0),
            counter: AtomicU64::new(0),
        })
    }

    pub(crate) fn set_generation(&self, generation: u64) {
        self.generation.store(generation, Ordering::SeqCst);
    }

    fn nonce(&self) -> [u8; NONCE_LEN] {
        let counter = self.counter.fetch_add(1, Ordering::SeqCst);
        let mut ctx = crypto::Sha256::new();
        ctx.update(b"confide nonce");
        ctx.update(&self.salt);
        ctx.update(&self.generation.load(Ordering::SeqCst).to_be_bytes());
        ctx.update(&counter.to_be_bytes());
        let mut out = [0u8; NONCE_LEN];
        out.copy_from_slice(&ctx.finish()[..NONCE_LEN]);
        out
    }

    /// `nonce ‖ AES-256-GCM(value)`, bound to (`table`, `row`).
    pub(crate) fn seal(&self, table: &str, row: &[u8], value: &[u8]) -> Vec<u8> {
        let nonce = self.nonce();
        let mut out = Vec::with_capacity(NONCE_LEN + value.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(value);
        let aad = self.aad(table, row);
        // Sealing fails only for inputs over 2^36 bytes, which no row comes near; an
        // empty sealed value then fails to open, loudly, instead of leaking plaintext.
        match self.aead.seal(nonce, &aad, &mut out[NONCE_LEN..]) {
            Some(tag) => out.extend_from_slice(&tag),
            None => {
                out.zeroize();
                out.clear();
            }
        }
        out
    }

    /// Opens what [`Sealer::seal`] wrote for (`table`, `row`).
    pub(crate) fn open(
        &self,
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
        let aad = self.aad(table, row);
        let len = self.aead.open(nonce, &aad, &mut buf).ok_or(OpenFailed)?;
        buf.truncate(len);
        Ok(buf)
    }

    fn aad(&self, table: &str, row: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(self.aad_prefix.len() + table.len() + 1 + row.len());
        aad.extend_from_slice(self.aad_prefix);
        aad.extend_from_slice(table.as_bytes());
        aad.push(0);
        aad.extend_from_slice(row);
        aad
    }

    /// The row key a message id is stored under: HMAC(index key, address ‖ id), so the
    /// file does not show which of the server's ciphertexts this device received.
    pub(crate) fn message_index(&self, address_row: &[u8], id: &[u8; 32]) -> [u8; 32] {
        self.index.sign(&[address_row, id])
    }
}

/// The nonce of a sealed value: unique per write, so it doubles as the row's version.
pub(crate) fn nonce_of(sealed: &[u8]) -> Option<[u8; NONCE_LEN]> {
    sealed.get(..NONCE_LEN)?.try_into().ok()
}
