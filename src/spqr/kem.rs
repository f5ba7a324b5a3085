//! ML-KEM-768 (FIPS 203) as SPQR uses it: the encapsulation split in two halves so the
//! send_ct side can answer the 64-byte header before the 1152-byte key vector arrives.
//!
//! - header (64) = rho || H(ek), H = SHA3-256 over the standard 1184-byte ek = t || rho;
//! - ek vector (1152) = t, checked against the header before use;
//! - ct1 (960) needs only the header, ct2 (128) needs the ek vector;
//! - ct1 || ct2 is exactly the standard ciphertext for the same coins, so decapsulation
//!   is plain FIPS 203 with the standard 2400-byte decapsulation key.
//!
//! libcrux's incremental API does the work. Its 2080-byte encapsulation state is a
//! libcrux-internal layout (its byte order once differed between platforms), so it is
//! never stored: [`EncapsState`] keeps only the 32 coins, and encapsulate1 is rerun from
//! them (it is deterministic) whenever encaps2 needs the state.

use libcrux_ml_kem::mlkem768::incremental;
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

/// The header: rho || SHA3-256(t || rho).
pub(crate) const HEADER_LEN: usize = 64;
/// The encapsulation key vector t.
pub(crate) const EK_LEN: usize = 1152;
/// The standard FIPS 203 decapsulation key.
pub(crate) const DK_LEN: usize = 2400;
/// The first ciphertext part (compressed u).
pub(crate) const CT1_LEN: usize = 960;
/// The second ciphertext part (compressed v).
pub(crate) const CT2_LEN: usize = 128;
/// The shared secret.
pub(crate) const SECRET_LEN: usize = 32;
/// The key generation seed (d || z).
pub(crate) const SEED_LEN: usize = 64;
/// The encapsulation randomness, which is all of a stored [`EncapsState`].
pub(crate) const COINS_LEN: usize = 32;
/// The length of libcrux's (never stored) encapsulation state.
const LIBCRUX_STATE_LEN: usize = incremental::encaps_state_len();

/// An ML-KEM shared secret.
pub(crate) type SharedSecret = Zeroizing<[u8; SECRET_LEN]>;

/// Why a KEM operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum KemError {
    /// An input has the wrong length.
    #[error("ML-KEM input of {got} bytes where {expected} are needed")]
    BadLength {
        /// The length the input must have.
        expected: usize,
        /// The length it had.
        got: usize,
    },
    /// The ek vector does not hash to the header's H(ek), or fails the FIPS 203
    /// modulus check.
    #[error("ML-KEM encapsulation key does not match its header")]
    EkMismatch,
    /// libcrux refused an input this module had already checked (not expected).
    #[error("ML-KEM backend refused its input")]
    Backend,
}

/// `bytes` as an array of exactly `N` bytes.
fn exact<const N: usize>(bytes: &[u8]) -> Result<&[u8; N], KemError> {
    bytes.try_into().map_err(|_| KemError::BadLength {
        expected: N,
        got: bytes.len(),
    })
}

/// A send_ek side's key pair, generated from (and storable as) its 64-byte seed.
/// Shared, not copied, when the SPQR state is cloned (once per message): the keys never
/// change, and they are zeroized when the last state holding them goes.
#[derive(Clone)]
pub(crate) struct KeyPair(std::sync::Arc<Keys>);

struct Keys {
    seed: Zeroizing<[u8; SEED_LEN]>,
    header: [u8; HEADER_LEN],
    ek: Vec<u8>,
    dk: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyPair(***)")
    }
}

impl KeyPair {
    /// A fresh key pair from 64 bytes of `rng`.
    pub(crate) fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        rng.fill_bytes(seed.as_mut());
        Self::from_seed(&seed)
    }

    /// The key pair of `seed` (FIPS 203's d || z): the same seed gives the same keys.
    pub(crate) fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        let pair = incremental::KeyPairCompressedBytes::from_seed(*seed);
        let header = *pair.pk1();
        let ek = pair.pk2().to_vec();
        // Layout of the compressed pair: the standard dk (dk_pke || t || rho || H(ek) || z).
        let raw = Zeroizing::new(pair.to_bytes());
        let dk = Zeroizing::new(raw.to_vec());
        Self(std::sync::Arc::new(Keys {
            seed: Zeroizing::new(*seed),
            header,
            ek,
            dk,
        }))
    }

    /// The seed the pair was made from: what a stored send_ek state keeps.
    pub(crate) fn seed(&self) -> &[u8; SEED_LEN] {
        &self.0.seed
    }

    /// The 64-byte header rho || H(ek).
    pub(crate) fn header(&self) -> &[u8; HEADER_LEN] {
        &self.0.header
    }

    /// The 1152-byte ek vector t.
    pub(crate) fn ek(&self) -> &[u8] {
        &self.0.ek
    }

    /// The standard 2400-byte decapsulation key.
    pub(crate) fn dk(&self) -> &[u8] {
        &self.0.dk
    }
}

/// What encaps2 needs from encaps1: the encapsulation coins, in confide's own format.
/// The header given to encaps1 must be given again to encaps2 (the caller keeps it).
#[derive(Clone)]
pub(crate) struct EncapsState {
    coins: Zeroizing<[u8; COINS_LEN]>,
}

impl std::fmt::Debug for EncapsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EncapsState(***)")
    }
}

impl EncapsState {
    /// The stored form: the 32 coins, nothing else (secret: zeroized on drop).
    pub(crate) fn to_bytes(&self) -> Zeroizing<[u8; COINS_LEN]> {
        self.coins.clone()
    }

    /// Parses [`to_bytes`](Self::to_bytes)'s output: exactly 32 bytes.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, KemError> {
        Ok(Self {
            coins: Zeroizing::new(*exact::<COINS_LEN>(bytes)?),
        })
    }
}

/// What libcrux's encapsulate1 gives: ct1, its internal state and the shared secret.
type Encapsulated = (
    [u8; CT1_LEN],
    Zeroizing<[u8; LIBCRUX_STATE_LEN]>,
    SharedSecret,
);

/// libcrux's encapsulate1 on `header` with `coins`.
fn encapsulate1(
    header: &[u8; HEADER_LEN],
    coins: &[u8; COINS_LEN],
) -> Result<Encapsulated, KemError> {
    let mut state = Zeroizing::new([0u8; LIBCRUX_STATE_LEN]);
    let mut secret = Zeroizing::new([0u8; SECRET_LEN]);
    let ct1 = incremental::encapsulate1(header, *coins, state.as_mut(), secret.as_mut())
        .map_err(|_| KemError::Backend)?;
    Ok((ct1.value, state, secret))
}

/// The first half of an encapsulation to `header`, with 32 coins from `rng`: the state
/// encaps2 needs, ct1 and the shared secret (known before ct2 exists).
pub(crate) fn encaps1<R: RngCore + CryptoRng>(
    header: &[u8; HEADER_LEN],
    rng: &mut R,
) -> Result<(EncapsState, [u8; CT1_LEN], SharedSecret), KemError> {
    let mut coins = Zeroizing::new([0u8; COINS_LEN]);
    rng.fill_bytes(coins.as_mut());
    let (ct1, _, secret) = encapsulate1(header, &coins)?;
    Ok((EncapsState { coins }, ct1, secret))
}

/// The second half: ct2 for the ek vector `ek`, after checking that `ek` belongs to
/// `header` (SHA3-256(ek || rho) equals the header's hash, and every coefficient is
/// below q). `header` must be the one encaps1 was given.
pub(crate) fn encaps2(
    state: &EncapsState,
    header: &[u8; HEADER_LEN],
    ek: &[u8],
) -> Result<[u8; CT2_LEN], KemError> {
    let ek = exact::<EK_LEN>(ek)?;
    incremental::validate_pk_bytes(header, ek).map_err(|_| KemError::EkMismatch)?;
    let (_, libcrux_state, _) = encapsulate1(header, &state.coins)?;
    Ok(incremental::encapsulate2(&libcrux_state, ek).value)
}

/// The shared secret of ct1 || ct2 under the standard decapsulation key `dk` (implicit
/// rejection: a wrong ciphertext gives a pseudorandom secret, not an error).
pub(crate) fn decaps(dk: &[u8], ct1: &[u8], ct2: &[u8]) -> Result<SharedSecret, KemError> {
    let dk = exact::<DK_LEN>(dk)?;
    let ct1 = *exact::<CT1_LEN>(ct1)?;
    let ct2 = *exact::<CT2_LEN>(ct2)?;
    let secret = incremental::decapsulate_compressed_key(
        dk,
        &incremental::Ciphertext1 { value: ct1 },
        &incremental::Ciphertext2 { value: ct2 },
    );
    Ok(Zeroizing::new(secret))
}

#[cfg(test)]
#[path = "kem_tests.rs"]
mod tests;
