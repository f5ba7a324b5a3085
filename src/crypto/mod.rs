//! Every primitive confide uses, behind fixed-size arrays: the one module that names the
//! backend. Everything runs on aws-lc-rs (AWS-LC), except XEdDSA's Edwards arithmetic,
//! which AWS-LC lacks and `keys::xeddsa` takes from curve25519-dalek.
//!
//! How secrets are wiped: AWS-LC allocates through `OPENSSL_malloc`, whose `OPENSSL_free`
//! cleanses the whole block, so the X25519 private key inside an `EVP_PKEY` is wiped when
//! the key object drops; aws-lc-rs zeroizes its AES key schedules, HKDF PRKs and HMAC
//! contexts in their `Drop`, and returns agreement secrets in `Zeroizing`. The copies
//! confide makes (the arrays returned here) are the callers' to wipe, as before.

mod aes;
#[cfg(feature = "kt")]
mod ed25519;
mod x25519;

// Only the persistent stores seal rows with AES-GCM.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) use aes::RowAead;
pub(crate) use aes::{CbcDecryptor, CbcEncryptor};
pub(crate) use aes::{
    aes256_cbc_decrypt, aes256_cbc_encrypt, aes256_ctr_apply, gcm_siv_decrypt, gcm_siv_encrypt,
};
#[cfg(all(feature = "kt", test))]
pub(crate) use ed25519::ed25519_public_key;
#[cfg(feature = "kt")]
pub(crate) use ed25519::{ed25519_sign, ed25519_verify};
pub(crate) use x25519::X25519Private;

use aws_lc_rs::{digest, hkdf, hmac};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// Incremental SHA-256.
#[derive(Clone)]
pub(crate) struct Sha256(digest::Context);

impl Sha256 {
    pub(crate) fn new() -> Self {
        Self(digest::Context::new(&digest::SHA256))
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub(crate) fn finish(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.0.finish().as_ref());
        out
    }
}

/// SHA-256 of `data`.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

/// SHA-512 of the concatenation of `parts`.
pub(crate) fn sha512(parts: &[&[u8]]) -> [u8; 64] {
    let mut ctx = digest::Context::new(&digest::SHA512);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 64];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// An HMAC-SHA256 key, keyed once for several tags.
pub(crate) struct HmacKey(hmac::Key);

impl HmacKey {
    pub(crate) fn new(key: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, key))
    }

    /// The tag over the concatenation of `parts`.
    pub(crate) fn sign(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut ctx = self.context();
        for p in parts {
            ctx.update(p);
        }
        ctx.finish()
    }

    /// The tag over one message (one call into the backend).
    pub(crate) fn sign_one(&self, message: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(hmac::sign(&self.0, message).as_ref());
        out
    }

    /// An incremental HMAC under this key.
    pub(crate) fn context(&self) -> Hmac {
        Hmac(hmac::Context::with_key(&self.0))
    }
}

/// Incremental HMAC-SHA256.
pub(crate) struct Hmac(hmac::Context);

impl Hmac {
    pub(crate) fn new(key: &[u8]) -> Self {
        HmacKey::new(key).context()
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub(crate) fn finish(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.0.sign().as_ref());
        out
    }
}

/// HMAC-SHA256 over the concatenation of `parts`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    HmacKey::new(key).sign(parts)
}

/// HMAC-SHA256 of two one-part messages under the same key, keying once.
pub(crate) fn hmac_sha256_two(key: &[u8], a: &[u8], b: &[u8]) -> ([u8; 32], [u8; 32]) {
    let key = HmacKey::new(key);
    (key.sign_one(a), key.sign_one(b))
}

/// HKDF's output-length type; `hkdf_sha256` bounds it at compile time.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// The most output HKDF-SHA256 can give: 255 blocks of 32 bytes (RFC 5869 §2.3).
pub(crate) const HKDF_SHA256_MAX_LEN: usize = 255 * 32;

/// HKDF-SHA256 into `out`. An empty salt is the RFC 5869 default (32 zero bytes).
///
/// The length is the array's, and asking for more than [`HKDF_SHA256_MAX_LEN`] bytes
/// fails the build (a `const` assertion, checked for each size used), so the one
/// failure HKDF defines cannot happen at run time. Should AWS-LC still fail (it cannot allocate, say), the
/// same RFC 5869 expansion runs on its HMAC instead: never zeros, never an unset output.
pub(crate) fn hkdf_sha256<const N: usize>(salt: &[u8], ikm: &[u8], info: &[u8], out: &mut [u8; N]) {
    const {
        assert!(
            N <= HKDF_SHA256_MAX_LEN,
            "HKDF-SHA256 cannot give more than 255 * 32 bytes"
        )
    };
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
    let info_parts = [info];
    let filled = prk
        .expand(&info_parts, Len(N))
        .and_then(|okm| okm.fill(out));
    if filled.is_err() {
        hkdf_sha256_on_hmac(salt, ikm, info, out);
    }
}

/// RFC 5869 built on HMAC-SHA256, for `hkdf_sha256` when the backend's HKDF fails.
/// `out` is at most [`HKDF_SHA256_MAX_LEN`] bytes (its caller's compile-time bound), so
/// the block counter never passes 255.
fn hkdf_sha256_on_hmac(salt: &[u8], ikm: &[u8], info: &[u8], out: &mut [u8]) {
    // Extract: PRK = HMAC(salt, IKM). An empty HMAC key is the same key as 32 zero
    // bytes (both are zero-padded to the block size), RFC 5869's default salt.
    let mut prk_bytes = hmac_sha256(salt, &[ikm]);
    let prk = HmacKey::new(&prk_bytes);
    prk_bytes.zeroize();
    // Expand: T(i) = HMAC(PRK, T(i-1) || info || i).
    let mut block = [0u8; 32];
    for (i, chunk) in (1u8..=255).zip(out.chunks_mut(32)) {
        let previous: &[u8] = if i == 1 { &[] } else { &block };
        let mut ctx = prk.context();
        ctx.update(previous);
        ctx.update(info);
        ctx.update(&[i]);
        block = ctx.finish();
        chunk.copy_from_slice(&block[..chunk.len()]);
    }
    block.zeroize();
}

/// Constant-time equality of two byte strings (lengths are public).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Fills `dest` from the operating system's CSPRNG (AWS-LC's, seeded by the kernel).
pub(crate) fn system_random(dest: &mut [u8]) -> Result<(), ()> {
    aws_lc_rs::rand::SecureRandom::fill(&aws_lc_rs::rand::SystemRandom::new(), dest).map_err(|_| ())
}

/// Whether AWS-LC runs as its FIPS 140-3 validated module (the `fips` feature).
pub(crate) fn fips_mode() -> bool {
    aws_lc_rs::try_fips_mode().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fips_mode_follows_the_feature() {
        assert_eq!(fips_mode(), cfg!(feature = "fips"));
    }

    /// HMAC, HKDF and SHA-2 agree with ring's on the lengths confide uses.
    #[test]
    fn hashes_match_ring() {
        for len in [0usize, 1, 32, 33, 64, 65, 200] {
            let msg: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let key = sha256(&msg);
            let want = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key), &msg);
            assert_eq!(&hmac_sha256(&key, &[&msg])[..], want.as_ref());
            assert_eq!(
                &sha256(&msg)[..],
                ring::digest::digest(&ring::digest::SHA256, &msg).as_ref()
            );
            assert_eq!(
                &sha512(&[&msg])[..],
                ring::digest::digest(&ring::digest::SHA512, &msg).as_ref()
            );
            let ring_hkdf = |salt: &[u8], out: &mut [u8]| {
                ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, salt)
                    .extract(&msg)
                    .expand(&[b"info"], RingLen(out.len()))
                    .unwrap()
                    .fill(out)
                    .unwrap();
            };
            let mut got32 = [0u8; 32];
            let mut got64 = [0u8; 64];
            let mut got80 = [0u8; 80];
            let mut got96 = [0u8; 96];
            hkdf_sha256(&[], &msg, b"info", &mut got32);
            hkdf_sha256(&key, &msg, b"info", &mut got64);
            hkdf_sha256(&msg, &msg, b"info", &mut got80);
            hkdf_sha256(&[], &msg, b"info", &mut got96);
            for (salt, got) in [
                (&[][..], &got32[..]),
                (&key[..], &got64[..]),
                (&msg[..], &got80[..]),
                (&[][..], &got96[..]),
            ] {
                let mut want = vec![0u8; got.len()];
                ring_hkdf(salt, &mut want);
                assert_eq!(got, &want[..]);
                let mut fallback = vec![0u8; got.len()];
                hkdf_sha256_on_hmac(salt, &msg, b"info", &mut fallback);
                assert_eq!(fallback, want);
            }
        }
    }

    struct RingLen(usize);

    impl ring::hkdf::KeyType for RingLen {
        fn len(&self) -> usize {
            self.0
        }
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn hkdf_rfc5869_cases_1_and_3() {
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0u8..=0x0c).collect();
        let info: Vec<u8> = (0xf0u8..=0xf9).collect();
        let mut okm = [0u8; 42];
        hkdf_sha256(&salt, &ikm, &info, &mut okm);
        assert_eq!(
            hex(&okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
        // Case 3: empty salt and info, the form most derivations here use.
        hkdf_sha256(&[], &ikm, &[], &mut okm);
        assert_eq!(
            hex(&okm),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
        );
    }

    /// The longest output HKDF defines (255 blocks) is given in full by both paths, and
    /// its last block is not zeros; one byte more is a compile error (the `const`
    /// assertion in `hkdf_sha256`), so no run-time length can be too long.
    #[test]
    fn hkdf_gives_the_longest_output_in_full() {
        let mut okm = Box::new([0u8; HKDF_SHA256_MAX_LEN]);
        hkdf_sha256(b"salt", b"ikm", b"info", &mut okm);
        let mut want = vec![0u8; HKDF_SHA256_MAX_LEN];
        ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"salt")
            .extract(b"ikm")
            .expand(&[b"info"], RingLen(HKDF_SHA256_MAX_LEN))
            .unwrap()
            .fill(&mut want)
            .unwrap();
        assert_eq!(&okm[..], &want[..]);
        assert_ne!(&okm[HKDF_SHA256_MAX_LEN - 32..], &[0u8; 32][..]);
        let mut fallback = vec![0u8; HKDF_SHA256_MAX_LEN];
        hkdf_sha256_on_hmac(b"salt", b"ikm", b"info", &mut fallback);
        assert_eq!(fallback, want);
    }

    /// The fallback matches RFC 5869's own vectors, not only AWS-LC.
    #[test]
    fn hkdf_fallback_rfc5869_cases_1_and_3() {
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0u8..=0x0c).collect();
        let info: Vec<u8> = (0xf0u8..=0xf9).collect();
        let mut okm = [0u8; 42];
        hkdf_sha256_on_hmac(&salt, &ikm, &info, &mut okm);
        assert_eq!(
            hex(&okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
        hkdf_sha256_on_hmac(&[], &ikm, &[], &mut okm);
        assert_eq!(
            hex(&okm),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
        );
    }

    #[test]
    fn hmac_rfc4231_case_2_whole_split_and_twice() {
        let want = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", &[b"what do ya want for nothing?"])),
            want
        );
        assert_eq!(
            hex(&hmac_sha256(
                b"Jefe",
                &[b"what do ya ", b"want for nothing?"]
            )),
            want
        );
        let mut h = Hmac::new(b"Jefe");
        h.update(b"what do ya want ");
        h.update(b"for nothing?");
        assert_eq!(hex(&h.finish()), want);
        let (a, b) = hmac_sha256_two(b"Jefe", b"what do ya want for nothing?", b"");
        assert_eq!(hex(&a), want);
        assert_eq!(b, hmac_sha256(b"Jefe", &[]));
    }

    #[test]
    fn sha2_known_answers() {
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut s = Sha256::new();
        s.update(b"a");
        s.update(b"bc");
        assert_eq!(s.finish(), sha256(b"abc"));
        assert_eq!(
            hex(&sha512(&[b"a", b"bc"])),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
    }

    #[test]
    fn ct_eq_compares_bytes_and_lengths() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }

    #[test]
    fn system_random_fills() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        assert!(system_random(&mut a).is_ok());
        assert!(system_random(&mut b).is_ok());
        assert_ne!(a, b);
    }
}
