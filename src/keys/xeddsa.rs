//! XEdDSA (Signal's "XEdDSA and VXEdDSA" spec, section 2.3): Ed25519-style signatures made
//! with an X25519 private key, so one identity key serves for both agreement and signing.
//! AWS-LC has no XEdDSA, so the Edwards arithmetic is curve25519-dalek's; SHA-512 comes
//! from `crate::crypto`.

use curve25519_dalek::constants::ED25519_BASEPOINT_TABLE;
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::Scalar;
use zeroize::Zeroize;

/// Length of an XEdDSA signature.
pub const SIGNATURE_LEN: usize = 64;

/// hash_1 of the spec: SHA-512 with a prefix no Ed25519 hash can start with.
const HASH1_PREFIX: [u8; 32] = {
    let mut p = [0xFFu8; 32];
    p[0] = 0xFE;
    p
};

fn sha512_scalar(parts: &[&[u8]]) -> Scalar {
    let mut wide = crate::crypto::sha512(parts);
    let s = Scalar::from_bytes_mod_order_wide(&wide);
    wide.zeroize();
    s
}

/// Signs `message` with the clamped X25519 private key `k`, using 64 fresh random bytes.
///
/// As in deployed libsignal, the Edwards public key's sign bit travels in the top bit of
/// the signature instead of forcing it to zero, so verifiers recover the point exactly.
pub(crate) fn sign(k: &[u8; 32], message: &[u8], random: &[u8; 64]) -> [u8; SIGNATURE_LEN] {
    let mut a = Scalar::from_bytes_mod_order(*k);
    let cap_a = (&a * ED25519_BASEPOINT_TABLE).compress();
    let sign_bit = cap_a.as_bytes()[31] & 0x80;

    let mut r = sha512_scalar(&[&HASH1_PREFIX, k, message, random]);
    let cap_r = (&r * ED25519_BASEPOINT_TABLE).compress();
    let h = sha512_scalar(&[cap_r.as_bytes(), cap_a.as_bytes(), message]);
    let s = h * a + r;

    let mut sig = [0u8; SIGNATURE_LEN];
    sig[..32].copy_from_slice(cap_r.as_bytes());
    sig[32..].copy_from_slice(s.as_bytes());
    sig[63] = (sig[63] & 0x7F) | sign_bit;
    a.zeroize();
    r.zeroize();
    sig
}

/// The canonical little-endian u-coordinates of every Curve25519 point of small order:
/// 0 (orders 1 and 2), 1 (order 4), p - 1 (no Edwards image; listed by X25519 blocklists)
/// and the two of order 8. Their non-canonical aliases fail [`is_canonical`] instead.
///
/// [`is_canonical`]: crate::keys::is_canonical
const SMALL_ORDER_U: [[u8; 32]; 5] = [
    [0; 32],
    {
        let mut one = [0u8; 32];
        one[0] = 1;
        one
    },
    {
        let mut p_minus_one = [0xffu8; 32];
        p_minus_one[0] = 0xec;
        p_minus_one[31] = 0x7f;
        p_minus_one
    },
    [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4,
        0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
        0xb8, 0x00,
    ],
    [
        0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef,
        0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f,
        0x11, 0x57,
    ],
];

/// Whether signatures under `u` mean anything: a small-order key has no secret behind it
/// (anyone satisfies the equation with good odds), and a non-canonical spelling would let
/// one signature stand for several keys.
pub(crate) fn is_signing_key(u: &[u8; 32]) -> bool {
    crate::keys::is_canonical(u) && !SMALL_ORDER_U.contains(u)
}

/// Verifies an XEdDSA signature by the X25519 public key `u`. Stricter than libsignal:
/// the key must pass [`is_signing_key`], and `s` must be a canonical scalar, which every
/// honest signer produces.
pub(crate) fn verify(u: &[u8; 32], message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
    if !is_signing_key(u) {
        return false;
    }
    let sign_bit = (signature[63] & 0x80) >> 7;
    let Some(cap_a_point) = MontgomeryPoint(*u).to_edwards(sign_bit) else {
        return false;
    };
    let mut s_bytes = [0u8; 32];
    s_bytes.copy_from_slice(&signature[32..]);
    s_bytes[31] &= 0x7F;
    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
        return false;
    };
    let cap_a = cap_a_point.compress();
    let h = sha512_scalar(&[&signature[..32], cap_a.as_bytes(), message]);
    let check = EdwardsPoint::vartime_double_scalar_mul_basepoint(&h, &-cap_a_point, &s);
    crate::crypto::ct_eq(check.compress().as_bytes(), &signature[..32])
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};

    /// Little-endian u-coordinates of the small-order points: 0, 1, p - 1 and the two
    /// order-8 values, as the audit (issue 16) lists them.
    const LISTED: [&str; 5] = [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    ];

    fn u(hex_str: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_str, &mut out).unwrap();
        out
    }

    /// `u + p` (little-endian), when it still fits below 2^255.
    fn plus_p(u: &[u8; 32]) -> Option<[u8; 32]> {
        let mut p = [0xffu8; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        let mut out = [0u8; 32];
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = u16::from(u[i]) + u16::from(p[i]) + carry;
            out[i] = sum as u8;
            carry = sum >> 8;
        }
        (carry == 0 && out[31] & 0x80 == 0).then_some(out)
    }

    /// Every spelling of a listed key: itself, with bit 255 set, and `u + p` below 2^255.
    fn spellings() -> Vec<[u8; 32]> {
        let mut all = Vec::new();
        for h in LISTED {
            let k = u(h);
            let mut high = k;
            high[31] |= 0x80;
            all.push(k);
            all.push(high);
            all.extend(plus_p(&k));
        }
        all
    }

    #[test]
    fn small_order_list_is_derived_from_the_torsion_points() {
        // Every point of order dividing 8 maps onto a listed u ...
        let listed: Vec<[u8; 32]> = LISTED.iter().map(|h| u(h)).collect();
        assert_eq!(listed, SMALL_ORDER_U);
        for t in EIGHT_TORSION {
            assert!(listed.contains(&t.to_montgomery().to_bytes()), "{t:?}");
        }
        // ... and every spelling of a listed u is no point at all or a small-order one,
        // whichever sign bit is asked for.
        let aliases = spellings();
        assert_eq!(
            aliases.len(),
            12,
            "0 + p and 1 + p are the only aliases below 2^255"
        );
        for k in &aliases {
            for sign in [0, 1] {
                if let Some(point) = MontgomeryPoint(*k).to_edwards(sign) {
                    assert!(point.is_small_order(), "{k:02x?}");
                }
            }
        }
        let mut rng = ChaCha20Rng::seed_from_u64(16);
        let mut k = [0u8; 32];
        rng.fill_bytes(&mut k);
        let random = crate::keys::PrivateKey::from_bytes(k).public_key();
        let point = MontgomeryPoint(*random.x25519_bytes())
            .to_edwards(0)
            .unwrap();
        assert!(!point.is_small_order());
        assert!(!aliases.contains(random.x25519_bytes()));
        assert!(is_signing_key(random.x25519_bytes()));
        assert!(aliases.iter().all(|k| !is_signing_key(k)));
    }

    /// The verification equation alone, `[s]B - [h]A == R`, without any key check: what
    /// `verify` accepted before it refused weak keys.
    fn equation_holds(u: &[u8; 32], message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
        let Some(a) = MontgomeryPoint(*u).to_edwards(signature[63] >> 7) else {
            return false;
        };
        let mut s_bytes = [0u8; 32];
        s_bytes.copy_from_slice(&signature[32..]);
        s_bytes[31] &= 0x7f;
        let s = Scalar::from_canonical_bytes(s_bytes).unwrap();
        let h = sha512_scalar(&[&signature[..32], a.compress().as_bytes(), message]);
        EdwardsPoint::vartime_double_scalar_mul_basepoint(&h, &-a, &s)
            .compress()
            .as_bytes()
            == &signature[..32]
    }

    #[test]
    fn forgeries_under_small_order_keys_are_refused() {
        // With A of small order, s = 0 and R = [k]A satisfy the equation whenever
        // -h = k modulo A's order: no private key needed, only a few tries.
        for key in spellings() {
            let Some(a) = MontgomeryPoint(key).to_edwards(0) else {
                continue;
            };
            let mut forged = 0;
            for n in 0u32..64 {
                let message = n.to_le_bytes();
                let mut r = EdwardsPoint::default();
                for _ in 0..8 {
                    let mut sig = [0u8; SIGNATURE_LEN];
                    sig[..32].copy_from_slice(r.compress().as_bytes());
                    if equation_holds(&key, &message, &sig) {
                        forged += 1;
                        assert!(!verify(&key, &message, &sig), "{key:02x?}");
                    }
                    r += a;
                }
            }
            assert!(forged > 0, "no forgery found for {key:02x?}");
        }
    }

    #[test]
    fn a_signature_is_refused_under_a_non_canonical_alias_of_its_key() {
        let mut rng = ChaCha20Rng::seed_from_u64(17);
        let key = crate::keys::PrivateKey::generate(&mut rng);
        let public = *key.public_key().x25519_bytes();
        let sig = key.sign(&mut rng, b"m");
        assert!(verify(&public, b"m", &sig));
        let mut high = public;
        high[31] |= 0x80;
        assert!(equation_holds(&high, b"m", &sig));
        assert!(!verify(&high, b"m", &sig));
    }

    /// `s + k·L` (little-endian, 255 bits: the top bit of the last byte is the sign bit
    /// and stays as it was), or `None` once it no longer fits.
    fn s_plus_l(sig: &[u8; SIGNATURE_LEN], k: u8) -> Option<[u8; SIGNATURE_LEN]> {
        // L = 2^252 + 27742317777372353535851937790883648493, little-endian.
        let l = u("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
        assert_eq!(Scalar::from_bytes_mod_order(l), Scalar::ZERO);
        let mut out = *sig;
        let mut carry = 0u16;
        for i in 0..32 {
            let top = if i == 31 { 0x7f } else { 0xff };
            let sum = u16::from(sig[32 + i] & top) + u16::from(l[i]) * u16::from(k) + carry;
            out[32 + i] = sum as u8;
            carry = sum >> 8;
        }
        if carry != 0 || out[63] & 0x80 != 0 {
            return None;
        }
        out[63] |= sig[63] & 0x80;
        Some(out)
    }

    /// README: "refuses non-canonical XEdDSA signatures". `s` and `s + L` satisfy the
    /// same equation, so a verifier that reduces `s` mod L accepts a second spelling of
    /// every signature; confide refuses every `s` from L up.
    #[test]
    fn a_signature_with_a_non_canonical_s_is_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(18);
        let mut tried = 0;
        for round in 0..16 {
            let key = crate::keys::PrivateKey::generate(&mut rng);
            let public = *key.public_key().x25519_bytes();
            let message = [round as u8; 7];
            let sig = key.sign(&mut rng, &message);
            assert!(verify(&public, &message, &sig));
            for k in 1..=15 {
                let Some(alias) = s_plus_l(&sig, k) else {
                    break;
                };
                tried += 1;
                assert_ne!(alias, sig);
                // Reduced mod L it is the valid signature again.
                assert_eq!(reduced(&alias), sig);
                assert!(!verify(&public, &message, &alias), "s + {k}L accepted");
            }
        }
        // 2^255 / L is about 8: each signature has aliases up to s + 6L or s + 7L.
        assert!(tried >= 16 * 6, "only {tried} aliases tried");
    }

    /// The same signature with `s` reduced mod L (what a lax verifier computes).
    fn reduced(sig: &[u8; SIGNATURE_LEN]) -> [u8; SIGNATURE_LEN] {
        let mut s = [0u8; 32];
        s.copy_from_slice(&sig[32..]);
        s[31] &= 0x7f;
        let mut out = *sig;
        out[32..].copy_from_slice(Scalar::from_bytes_mod_order(s).as_bytes());
        out[63] |= sig[63] & 0x80;
        out
    }
}
