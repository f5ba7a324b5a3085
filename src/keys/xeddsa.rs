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

/// Verifies an XEdDSA signature by the X25519 public key `u`. Stricter than libsignal:
/// `s` must be a canonical scalar, which every honest signer produces.
pub(crate) fn verify(u: &[u8; 32], message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
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
