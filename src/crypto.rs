//! Thin wrappers over the primitives, so every other module speaks in fixed-size arrays.

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use ring::{hkdf, hmac};
use subtle::ConstantTimeEq;

/// ring's HKDF wants an output-length type; this one takes any length.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// The RFC 5869 default salt (32 zero bytes), keyed once: most derivations use it.
static EMPTY_SALT: std::sync::LazyLock<hkdf::Salt> =
    std::sync::LazyLock::new(|| hkdf::Salt::new(hkdf::HKDF_SHA256, &[]));

/// HKDF-SHA256 into `out`. An empty salt is the RFC 5869 default (32 zero bytes).
pub(crate) fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[u8], out: &mut [u8]) {
    let prk = if salt.is_empty() {
        EMPTY_SALT.extract(ikm)
    } else {
        hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm)
    };
    let info = [info];
    // Lengths here are compile-time constants far below 255 * 32, so expansion cannot
    // fail; the zeroed output would make any misuse visible in every test.
    if let Ok(okm) = prk.expand(&info, Len(out.len())) {
        if okm.fill(out).is_err() {
            out.fill(0);
        }
    } else {
        out.fill(0);
    }
}

/// HMAC-SHA256 over the concatenation of `parts`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    for p in parts {
        ctx.update(p);
    }
    let tag = ctx.sign();
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// HMAC-SHA256 of two one-part messages under the same key, keying once.
pub(crate) fn hmac_sha256_two(key: &[u8], a: &[u8], b: &[u8]) -> ([u8; 32], [u8; 32]) {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut out_a = [0u8; 32];
    let mut out_b = [0u8; 32];
    out_a.copy_from_slice(hmac::sign(&key, a).as_ref());
    out_b.copy_from_slice(hmac::sign(&key, b).as_ref());
    (out_a, out_b)
}

/// Constant-time equality of two byte strings (lengths are public).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// AES-256-CBC with PKCS#7 padding.
pub(crate) fn aes256_cbc_encrypt(key: &[u8; 32], iv: &[u8; 16], plaintext: &[u8]) -> Vec<u8> {
    Aes256CbcEnc::new(key.into(), iv.into()).encrypt_padded_vec_mut::<Pkcs7>(plaintext)
}

/// AES-256-CBC decryption; `None` for a bad length or bad padding. Callers check the
/// MAC first, so a padding failure here is never an oracle for unauthenticated input.
pub(crate) fn aes256_cbc_decrypt(
    key: &[u8; 32],
    iv: &[u8; 16],
    ciphertext: &[u8],
) -> Option<Vec<u8>> {
    if ciphertext.is_empty() || ciphertext.len() % 16 != 0 {
        return None;
    }
    Aes256CbcDec::new(key.into(), iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hkdf_rfc5869_case_1() {
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0u8..=0x0c).collect();
        let info: Vec<u8> = (0xf0u8..=0xf9).collect();
        let mut okm = [0u8; 42];
        hkdf_sha256(&salt, &ikm, &info, &mut okm);
        assert_eq!(
            hex(&okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }

    #[test]
    fn cbc_round_trip_and_bad_padding() {
        let key = [7u8; 32];
        let iv = [9u8; 16];
        for len in [0usize, 1, 15, 16, 17, 100] {
            let pt = vec![0xabu8; len];
            let ct = aes256_cbc_encrypt(&key, &iv, &pt);
            assert_eq!(ct.len(), (len / 16 + 1) * 16);
            assert_eq!(aes256_cbc_decrypt(&key, &iv, &ct), Some(pt));
        }
        assert_eq!(aes256_cbc_decrypt(&key, &iv, &[0u8; 15]), None);
        assert_eq!(aes256_cbc_decrypt(&key, &iv, &[]), None);
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
