//! Known answers for SPQR's split ML-KEM-768, against RustCrypto's `ml-kem` (an
//! independent FIPS 203 implementation) and AWS-LC's SHA3-256.

use super::*;
use aws_lc_rs::digest;
#[allow(deprecated)]
use ml_kem::ExpandedKeyEncoding;
use ml_kem::kem::Decapsulate;
use ml_kem::{B32, KeyExport, Seed, ml_kem_768};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const KEY_SEED: [u8; SEED_LEN] = {
    let mut s = [0u8; SEED_LEN];
    let mut i = 0;
    while i < SEED_LEN {
        s[i] = (i as u8).wrapping_mul(7).wrapping_add(3);
        i += 1;
    }
    s
};

/// The coins `encaps1` draws from `ChaCha20Rng::from_seed([tag; 32])`.
fn coins_of(tag: u8) -> [u8; 32] {
    let mut coins = [0u8; 32];
    ChaCha20Rng::from_seed([tag; 32]).fill_bytes(&mut coins);
    coins
}

fn rust_crypto_dk(seed: &[u8; SEED_LEN]) -> ml_kem_768::DecapsulationKey {
    ml_kem_768::DecapsulationKey::from_seed(Seed::from(*seed))
}

fn ciphertext(ct1: &[u8], ct2: &[u8]) -> ml_kem_768::Ciphertext {
    let mut ct = ml_kem_768::Ciphertext::default();
    ct[..CT1_LEN].copy_from_slice(ct1);
    ct[CT1_LEN..].copy_from_slice(ct2);
    ct
}

#[test]
fn key_layout_matches_fips_203() {
    let pair = KeyPair::from_seed(&KEY_SEED);
    let theirs = rust_crypto_dk(&KEY_SEED);
    let ek = theirs.encapsulation_key().to_bytes();
    assert_eq!(ek.len(), EK_LEN + 32);
    // ek vector = t, header = rho || SHA3-256(t || rho).
    assert_eq!(pair.ek(), &ek[..EK_LEN]);
    assert_eq!(&pair.header()[..32], &ek[EK_LEN..]);
    let h = digest::digest(&digest::SHA3_256, &ek);
    assert_eq!(&pair.header()[32..], h.as_ref());
    // dk = the standard expanded decapsulation key.
    #[allow(deprecated)]
    let expanded = theirs.to_expanded_bytes();
    assert_eq!(pair.dk(), expanded.as_slice());
    assert_eq!(pair.dk().len(), DK_LEN);
    assert_eq!(pair.seed(), &KEY_SEED);
    // Deterministic from the seed; a different seed, different keys.
    let again = KeyPair::from_seed(&KEY_SEED);
    assert_eq!(
        (again.header(), again.ek(), again.dk()),
        (pair.header(), pair.ek(), pair.dk())
    );
    assert_ne!(KeyPair::from_seed(&[1; 64]).header(), pair.header());
}

#[test]
fn generate_uses_64_bytes_of_the_rng() {
    let pair = KeyPair::generate(&mut ChaCha20Rng::from_seed([9; 32]));
    let mut seed = [0u8; 64];
    ChaCha20Rng::from_seed([9; 32]).fill_bytes(&mut seed);
    assert_eq!(pair.seed(), &seed);
    assert_eq!(pair.header(), KeyPair::from_seed(&seed).header());
}

#[test]
fn split_ciphertext_is_the_standard_one() {
    let pair = KeyPair::from_seed(&KEY_SEED);
    let theirs = rust_crypto_dk(&KEY_SEED);
    for tag in [1u8, 2, 3] {
        let (state, ct1, secret) =
            encaps1(pair.header(), &mut ChaCha20Rng::from_seed([tag; 32])).unwrap();
        let ct2 = encaps2(&state, pair.header(), pair.ek()).unwrap();
        // (a) ct1 || ct2 = ml-kem's ciphertext for the same ek and coins; (b) same secret.
        let (ct, k) = theirs
            .encapsulation_key()
            .encapsulate_deterministic(&B32::from(coins_of(tag)));
        assert_eq!(&ct[..CT1_LEN], ct1.as_slice());
        assert_eq!(&ct[CT1_LEN..], ct2.as_slice());
        assert_eq!(k.as_slice(), secret.as_slice());
        // (c) ml-kem decapsulates it to the same secret; so does our decaps.
        assert_eq!(
            theirs.decapsulate(&ciphertext(&ct1, &ct2)).as_slice(),
            secret.as_slice()
        );
        assert_eq!(*decaps(pair.dk(), &ct1, &ct2).unwrap(), *secret);
    }
}

#[test]
fn decaps_opens_rust_crypto_ciphertexts() {
    let pair = KeyPair::from_seed(&KEY_SEED);
    let theirs = rust_crypto_dk(&KEY_SEED);
    for m in [[0u8; 32], [0x5c; 32], coins_of(77)] {
        let (ct, k) = theirs
            .encapsulation_key()
            .encapsulate_deterministic(&B32::from(m));
        let ours = decaps(pair.dk(), &ct[..CT1_LEN], &ct[CT1_LEN..]).unwrap();
        assert_eq!(ours.as_slice(), k.as_slice());
        // A tampered ciphertext: both reject implicitly, to the same pseudorandom secret.
        let mut bad = ct;
        bad[5] ^= 1;
        let ours = decaps(pair.dk(), &bad[..CT1_LEN], &bad[CT1_LEN..]).unwrap();
        assert_ne!(ours.as_slice(), k.as_slice());
        assert_eq!(ours.as_slice(), theirs.decapsulate(&bad).as_slice());
    }
}

#[test]
fn encaps2_refuses_an_ek_that_is_not_the_headers() {
    let pair = KeyPair::from_seed(&KEY_SEED);
    let (state, _, _) = encaps1(pair.header(), &mut ChaCha20Rng::from_seed([4; 32])).unwrap();
    // A flipped bit in the ek vector, in rho or in the hash.
    let mut ek = pair.ek().to_vec();
    ek[100] ^= 0x10;
    assert_eq!(
        encaps2(&state, pair.header(), &ek),
        Err(KemError::EkMismatch)
    );
    for at in [0, 31, 32, 63] {
        let mut header = *pair.header();
        header[at] ^= 1;
        assert_eq!(
            encaps2(&state, &header, pair.ek()),
            Err(KemError::EkMismatch)
        );
    }
    // Another key's ek.
    let other = KeyPair::from_seed(&[2; 64]);
    assert_eq!(
        encaps2(&state, pair.header(), other.ek()),
        Err(KemError::EkMismatch)
    );
    // An ek whose first coefficient is 4095 >= q, with a header that hashes it correctly:
    // only the FIPS 203 modulus check refuses it.
    let mut ek = pair.ek().to_vec();
    ek[0] = 0xff;
    ek[1] |= 0x0f;
    let mut full = ek.clone();
    full.extend_from_slice(&pair.header()[..32]);
    let mut header = *pair.header();
    header[32..].copy_from_slice(digest::digest(&digest::SHA3_256, &full).as_ref());
    let (state, _, _) = encaps1(&header, &mut ChaCha20Rng::from_seed([4; 32])).unwrap();
    assert_eq!(encaps2(&state, &header, &ek), Err(KemError::EkMismatch));
    // Wrong lengths.
    assert_eq!(
        encaps2(&state, pair.header(), &pair.ek()[..EK_LEN - 1]),
        Err(KemError::BadLength {
            expected: EK_LEN,
            got: EK_LEN - 1
        })
    );
    assert_eq!(
        encaps2(&state, pair.header(), &[0; EK_LEN + 32]),
        Err(KemError::BadLength {
            expected: EK_LEN,
            got: EK_LEN + 32
        })
    );
}

#[test]
fn stored_encaps_state_gives_the_same_ct2() {
    let pair = KeyPair::from_seed(&KEY_SEED);
    let (state, ct1, secret) =
        encaps1(pair.header(), &mut ChaCha20Rng::from_seed([6; 32])).unwrap();
    let ct2 = encaps2(&state, pair.header(), pair.ek()).unwrap();
    let stored = state.to_bytes();
    assert_eq!(*stored, coins_of(6));
    let resumed = EncapsState::from_bytes(stored.as_slice()).unwrap();
    assert_eq!(encaps2(&resumed, pair.header(), pair.ek()).unwrap(), ct2);
    assert_eq!(*decaps(pair.dk(), &ct1, &ct2).unwrap(), *secret);
    for len in [0, 31, 33, 2080] {
        assert_eq!(
            EncapsState::from_bytes(&vec![0; len]).unwrap_err(),
            KemError::BadLength {
                expected: 32,
                got: len
            }
        );
    }
}

#[test]
fn decaps_refuses_wrong_lengths() {
    let pair = KeyPair::from_seed(&KEY_SEED);
    let (ct1, ct2) = ([0u8; CT1_LEN], [0u8; CT2_LEN]);
    assert!(decaps(pair.dk(), &ct1, &ct2).is_ok());
    assert_eq!(
        decaps(&pair.dk()[1..], &ct1, &ct2).unwrap_err(),
        KemError::BadLength {
            expected: DK_LEN,
            got: DK_LEN - 1
        }
    );
    assert_eq!(
        decaps(pair.dk(), &ct1[1..], &ct2).unwrap_err(),
        KemError::BadLength {
            expected: CT1_LEN,
            got: CT1_LEN - 1
        }
    );
    assert_eq!(
        decaps(pair.dk(), &ct1, &[0; CT2_LEN + 32]).unwrap_err(),
        KemError::BadLength {
            expected: CT2_LEN,
            got: CT2_LEN + 32
        }
    );
}

#[test]
fn pinned_transcript() {
    // SHA-256 of header || ek || ct1 || ct2 for KEY_SEED and the coins of tag 1, with the
    // shared secret: computed by this code (whose bytes the tests above check against
    // ml-kem) and pinned so that any change in libcrux or here fails.
    let pair = KeyPair::from_seed(&KEY_SEED);
    let (state, ct1, secret) =
        encaps1(pair.header(), &mut ChaCha20Rng::from_seed([1; 32])).unwrap();
    let ct2 = encaps2(&state, pair.header(), pair.ek()).unwrap();
    let mut transcript = Vec::new();
    transcript.extend_from_slice(pair.header());
    transcript.extend_from_slice(pair.ek());
    transcript.extend_from_slice(&ct1);
    transcript.extend_from_slice(&ct2);
    assert_eq!(transcript.len(), HEADER_LEN + EK_LEN + CT1_LEN + CT2_LEN);
    let hash = digest::digest(&digest::SHA256, &transcript);
    assert_eq!(hex::encode(hash.as_ref()), PINNED_TRANSCRIPT);
    assert_eq!(hex::encode(*secret), PINNED_SECRET);
}

const PINNED_TRANSCRIPT: &str = "57b624173c76e94086baefbcf17859cbb1641b161f795a6fa9dafcf4328b843d";
const PINNED_SECRET: &str = "d07d3c3b9bb6170ebd94829fb2fbfa1fea01de0de8b7bba30473ef021b7a2db3";

#[test]
fn debug_hides_secrets() {
    let pair = KeyPair::from_seed(&KEY_SEED);
    assert_eq!(format!("{pair:?}"), "KeyPair(***)");
    let (state, _, _) = encaps1(pair.header(), &mut ChaCha20Rng::from_seed([1; 32])).unwrap();
    assert_eq!(format!("{state:?}"), "EncapsState(***)");
}
