//! The AES modes: CBC with PKCS#7 (1:1 and group messages), raw CBC for the media
//! stream, CTR (sealed sender v1), GCM-SIV (sealed sender v2) and GCM (store rows).

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{
    AES_256, DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext,
    PaddedBlockDecryptingKey, PaddedBlockEncryptingKey, UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;

/// AES block length.
const BLOCK: usize = 16;

fn unbound(key: &[u8; 32]) -> Option<UnboundCipherKey> {
    UnboundCipherKey::new(&AES_256, key).ok()
}

/// AES-256-CBC with PKCS#7 padding. Empty only if the backend fails, which no valid
/// ciphertext is (it always holds at least one block).
pub(crate) fn aes256_cbc_encrypt(key: &[u8; 32], iv: &[u8; 16], plaintext: &[u8]) -> Vec<u8> {
    let Some(key) = unbound(key).and_then(|k| PaddedBlockEncryptingKey::cbc_pkcs7(k).ok()) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(plaintext.len() / BLOCK * BLOCK + BLOCK);
    out.extend_from_slice(plaintext);
    let ctx = EncryptionContext::Iv128(FixedLength::from(iv));
    match key.less_safe_encrypt(&mut out, ctx) {
        Ok(_) => out,
        Err(_) => Vec::new(),
    }
}

/// AES-256-CBC decryption; `None` for a bad length or bad padding. Callers check the
/// MAC first, so a padding failure here is never an oracle for unauthenticated input.
pub(crate) fn aes256_cbc_decrypt(
    key: &[u8; 32],
    iv: &[u8; 16],
    ciphertext: &[u8],
) -> Option<Vec<u8>> {
    if ciphertext.is_empty() || ciphertext.len() % BLOCK != 0 {
        return None;
    }
    let key = PaddedBlockDecryptingKey::cbc_pkcs7(unbound(key)?).ok()?;
    let mut out = ciphertext.to_vec();
    let len = key
        .decrypt(&mut out, DecryptionContext::Iv128(FixedLength::from(iv)))
        .ok()?
        .len();
    out.truncate(len);
    Some(out)
}

/// CBC encryption of whole blocks, chaining across calls (the media stream).
pub(crate) struct CbcEncryptor {
    key: Option<EncryptingKey>,
    iv: [u8; BLOCK],
}

impl CbcEncryptor {
    pub(crate) fn new(key: &[u8; 32], iv: &[u8; 16]) -> Self {
        Self {
            key: unbound(key).and_then(|k| EncryptingKey::cbc(k).ok()),
            iv: *iv,
        }
    }

    /// Encrypts `blocks` in place; its length must be a multiple of 16. Returns false if
    /// the length is wrong or the backend fails (the buffer is then unusable).
    pub(crate) fn encrypt_in_place(&mut self, blocks: &mut [u8]) -> bool {
        if blocks.len() % BLOCK != 0 {
            return false;
        }
        if blocks.is_empty() {
            return true;
        }
        let Some(key) = &self.key else {
            return false;
        };
        let ctx = EncryptionContext::Iv128(FixedLength::from(&self.iv));
        if key.less_safe_encrypt(blocks, ctx).is_err() {
            return false;
        }
        self.iv.copy_from_slice(&blocks[blocks.len() - BLOCK..]);
        true
    }
}

/// CBC decryption of whole blocks, chaining across calls (the media stream).
pub(crate) struct CbcDecryptor {
    key: Option<DecryptingKey>,
    iv: [u8; BLOCK],
}

impl CbcDecryptor {
    pub(crate) fn new(key: &[u8; 32], iv: &[u8; 16]) -> Self {
        Self {
            key: unbound(key).and_then(|k| DecryptingKey::cbc(k).ok()),
            iv: *iv,
        }
    }

    /// Decrypts `blocks` in place; its length must be a multiple of 16. Returns false if
    /// the length is wrong or the backend fails.
    pub(crate) fn decrypt_in_place(&mut self, blocks: &mut [u8]) -> bool {
        if blocks.len() % BLOCK != 0 {
            return false;
        }
        if blocks.is_empty() {
            return true;
        }
        let Some(key) = &self.key else {
            return false;
        };
        let mut next = [0u8; BLOCK];
        next.copy_from_slice(&blocks[blocks.len() - BLOCK..]);
        let ctx = DecryptionContext::Iv128(FixedLength::from(&self.iv));
        if key.decrypt(blocks, ctx).is_err() {
            return false;
        }
        self.iv = next;
        true
    }
}

/// XORs `data` with the AES-256-CTR keystream from the 16-byte initial counter block
/// `iv` (big-endian increments of the whole block; with the zero IV and any message
/// shorter than 2^36 bytes this equals a 32-bit counter).
pub(crate) fn aes256_ctr_apply(key: &[u8; 32], iv: &[u8; 16], data: &mut [u8]) -> bool {
    let Some(key) = unbound(key).and_then(|k| EncryptingKey::ctr(k).ok()) else {
        return false;
    };
    key.less_safe_encrypt(data, EncryptionContext::Iv128(FixedLength::from(iv)))
        .is_ok()
}

/// AES-256-GCM-SIV with an all-zero nonce and no associated data: ciphertext ‖ tag.
/// Empty only if the backend fails.
pub(crate) fn gcm_siv_encrypt(key: &[u8; 32], msg: &[u8]) -> Vec<u8> {
    let Ok(key) = UnboundKey::new(&aead::AES_256_GCM_SIV, key).map(LessSafeKey::new) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(msg.len() + aead::MAX_TAG_LEN);
    out.extend_from_slice(msg);
    let nonce = Nonce::assume_unique_for_key([0u8; aead::NONCE_LEN]);
    match key.seal_in_place_append_tag(nonce, Aad::empty(), &mut out) {
        Ok(()) => out,
        Err(_) => Vec::new(),
    }
}

/// Decrypts and authenticates `ciphertext ‖ tag`; `None` on failure.
pub(crate) fn gcm_siv_decrypt(key: &[u8; 32], ct: &[u8]) -> Option<Vec<u8>> {
    let key = LessSafeKey::new(UnboundKey::new(&aead::AES_256_GCM_SIV, key).ok()?);
    let mut out = ct.to_vec();
    let nonce = Nonce::assume_unique_for_key([0u8; aead::NONCE_LEN]);
    let len = key.open_in_place(nonce, Aad::empty(), &mut out).ok()?.len();
    out.truncate(len);
    Some(out)
}

/// An AEAD under one key with caller-chosen nonces and associated data: the stores' row
/// sealing. [`RowAead::gcm_siv`] seals rows since the stores' second format (a repeated
/// nonce reveals only that two sealed values were equal, never the authentication key);
/// [`RowAead::gcm`] opens first-format rows, once, to migrate them.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) struct RowAead(LessSafeKey);

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl RowAead {
    /// AES-256-GCM.
    pub(crate) fn gcm(key: &[u8; 32]) -> Option<Self> {
        Self::new(&aead::AES_256_GCM, key)
    }

    /// AES-256-GCM-SIV (RFC 8452).
    pub(crate) fn gcm_siv(key: &[u8; 32]) -> Option<Self> {
        Self::new(&aead::AES_256_GCM_SIV, key)
    }

    fn new(algorithm: &'static aead::Algorithm, key: &[u8; 32]) -> Option<Self> {
        Some(Self(LessSafeKey::new(
            UnboundKey::new(algorithm, key).ok()?,
        )))
    }

    /// Encrypts `in_out` in place and returns the 16-byte tag.
    pub(crate) fn seal(
        &self,
        nonce: [u8; aead::NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Option<[u8; 16]> {
        let tag = self
            .0
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), in_out)
            .ok()?;
        <[u8; 16]>::try_from(tag.as_ref()).ok()
    }

    /// Opens `ciphertext ‖ tag` in place; the plaintext length on success.
    pub(crate) fn open(
        &self,
        nonce: [u8; aead::NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Option<usize> {
        self.0
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), in_out)
            .ok()
            .map(|p| p.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
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
        // A last block whose padding byte is 0 or whose padding bytes disagree.
        let mut ct = aes256_cbc_encrypt(&key, &iv, &[1u8; 16]);
        let n = ct.len();
        ct[n - 17] ^= 0x01;
        assert_eq!(aes256_cbc_decrypt(&key, &iv, &ct), None);
    }

    /// NIST SP 800-38A F.2.5 (CBC-AES256.Encrypt), two blocks at a time and in pieces.
    #[test]
    fn cbc_sp800_38a_chained_across_calls() {
        let key: [u8; 32] =
            unhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
                .try_into()
                .unwrap();
        let iv: [u8; 16] = unhex("000102030405060708090a0b0c0d0e0f")
            .try_into()
            .unwrap();
        let pt = unhex(
            "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51\
             30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710",
        );
        let want = unhex(
            "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d\
             39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b",
        );
        let mut enc = CbcEncryptor::new(&key, &iv);
        let mut buf = pt.clone();
        let (a, b) = buf.split_at_mut(16);
        assert!(enc.encrypt_in_place(a));
        assert!(enc.encrypt_in_place(b));
        assert_eq!(buf, want);
        assert!(!enc.encrypt_in_place(&mut [0u8; 15]));
        let mut dec = CbcDecryptor::new(&key, &iv);
        let (a, b) = buf.split_at_mut(32);
        assert!(dec.decrypt_in_place(a));
        assert!(dec.decrypt_in_place(b));
        assert_eq!(buf, pt);
    }

    /// NIST SP 800-38A F.5.5 (CTR-AES256.Encrypt).
    #[test]
    fn ctr_sp800_38a() {
        let key: [u8; 32] =
            unhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
                .try_into()
                .unwrap();
        let iv: [u8; 16] = unhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
            .try_into()
            .unwrap();
        let mut data = unhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51");
        assert!(aes256_ctr_apply(&key, &iv, &mut data));
        assert_eq!(
            data,
            unhex("601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5")
        );
    }

    /// The zero nonce sealed sender v2 uses has no RFC 8452 vector, so the round trip,
    /// tampering and wrong keys are checked here and the bytes against an independent
    /// implementation in `tests/crypto_backend.rs`.
    #[test]
    fn gcm_siv_round_trip_and_tamper() {
        let key = [3u8; 32];
        let ct = gcm_siv_encrypt(&key, b"sealed sender v2");
        assert_eq!(ct.len(), 16 + 16);
        assert_eq!(gcm_siv_decrypt(&key, &ct).unwrap(), b"sealed sender v2");
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert_eq!(gcm_siv_decrypt(&key, &bad), None);
        assert_eq!(gcm_siv_decrypt(&key, &ct[..ct.len() - 1]), None);
        assert_eq!(gcm_siv_decrypt(&[4u8; 32], &ct), None);
    }

    /// Deterministic test data of `len` bytes.
    fn data(seed: u8, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 32);
        let mut block = crate::crypto::sha256(&[seed]);
        while out.len() < len {
            out.extend_from_slice(&block);
            block = crate::crypto::sha256(&block);
        }
        out.truncate(len);
        out
    }

    /// The bytes AWS-LC produces are the bytes RustCrypto produces, for every mode
    /// confide uses, at lengths around the block size (a different backend must produce
    /// the same wire bytes).
    #[test]
    fn every_mode_matches_an_independent_implementation() {
        use aes_gcm_siv::aead::{Aead, KeyInit};
        use cbc::cipher::{BlockEncryptMut, KeyIvInit, StreamCipher, block_padding::Pkcs7};
        for (i, len) in [0usize, 1, 15, 16, 17, 31, 32, 33, 140, 1000]
            .into_iter()
            .enumerate()
        {
            let seed = u8::try_from(i).unwrap();
            let key: [u8; 32] = data(seed, 32).try_into().unwrap();
            let iv: [u8; 16] = data(seed + 100, 16).try_into().unwrap();
            let msg = data(seed + 200, len);

            let want = cbc::Encryptor::<::aes::Aes256>::new(&key.into(), &iv.into())
                .encrypt_padded_vec_mut::<Pkcs7>(&msg);
            assert_eq!(aes256_cbc_encrypt(&key, &iv, &msg), want, "cbc {len}");
            assert_eq!(aes256_cbc_decrypt(&key, &iv, &want).unwrap(), msg);

            let mut want = msg.clone();
            ctr::Ctr32BE::<::aes::Aes256>::new(&key.into(), &[0u8; 16].into())
                .apply_keystream(&mut want);
            let mut got = msg.clone();
            assert!(aes256_ctr_apply(&key, &[0u8; 16], &mut got));
            assert_eq!(got, want, "ctr {len}");

            let want = aes_gcm_siv::Aes256GcmSiv::new(&key.into())
                .encrypt(&aes_gcm_siv::Nonce::default(), msg.as_slice())
                .unwrap();
            assert_eq!(gcm_siv_encrypt(&key, &msg), want, "gcm-siv {len}");
            assert_eq!(gcm_siv_decrypt(&key, &want).unwrap(), msg);

            let whole = len / 16 * 16;
            let mut got = msg[..whole].to_vec();
            assert!(CbcEncryptor::new(&key, &iv).encrypt_in_place(&mut got));
            let mut want = msg[..whole].to_vec();
            let mut enc = cbc::Encryptor::<::aes::Aes256>::new(&key.into(), &iv.into());
            for block in want.chunks_exact_mut(16) {
                enc.encrypt_block_mut(block.into());
            }
            assert_eq!(got, want, "raw cbc {len}");
        }
    }

    #[test]
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    fn gcm_round_trip_binds_nonce_and_aad() {
        let k = RowAead::gcm(&[5u8; 32]).unwrap();
        let mut buf = b"row".to_vec();
        let tag = k.seal([1u8; 12], b"table", &mut buf).unwrap();
        buf.extend_from_slice(&tag);
        let mut a = buf.clone();
        assert_eq!(k.open([1u8; 12], b"table", &mut a), Some(3));
        assert_eq!(&a[..3], b"row");
        assert_eq!(k.open([2u8; 12], b"table", &mut buf.clone()), None);
        assert_eq!(k.open([1u8; 12], b"other", &mut buf.clone()), None);
    }

    /// The stores' current sealing: AES-256-GCM-SIV (RFC 8452) agrees with RustCrypto's,
    /// binds nonce and associated data, and a repeated nonce leaks no keystream: two
    /// plaintexts sealed under one nonce do not XOR to their ciphertexts' XOR.
    #[test]
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    fn gcm_siv_agrees_binds_and_survives_a_repeated_nonce() {
        use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
        let key = [9u8; 32];
        let k = RowAead::gcm_siv(&key).unwrap();
        let seal = |msg: &[u8], nonce: [u8; 12], aad: &[u8]| {
            let mut buf = msg.to_vec();
            let tag = k.seal(nonce, aad, &mut buf).unwrap();
            buf.extend_from_slice(&tag);
            buf
        };
        let ours = seal(b"a row value", [3; 12], b"aad");
        let theirs = aes_gcm_siv::Aes256GcmSiv::new(&key.into())
            .encrypt(
                &[3u8; 12].into(),
                Payload {
                    msg: b"a row value",
                    aad: b"aad",
                },
            )
            .unwrap();
        assert_eq!(ours, theirs);
        assert_eq!(k.open([3; 12], b"aad", &mut ours.clone()), Some(11));
        assert_eq!(k.open([4; 12], b"aad", &mut ours.clone()), None);
        assert_eq!(k.open([3; 12], b"other", &mut ours.clone()), None);

        let (p1, p2) = ([0u8; 32], [0xffu8; 32]);
        let (c1, c2) = (seal(&p1, [7; 12], b""), seal(&p2, [7; 12], b""));
        let xor_c: Vec<u8> = c1[..32].iter().zip(&c2[..32]).map(|(a, b)| a ^ b).collect();
        assert_ne!(
            xor_c,
            vec![0xffu8; 32],
            "a repeated nonce reused the keystream"
        );
    }
}
