//! AES-256-GCM as a stream, with a 16-byte IV.
//!
//! AWS-LC's AEAD is one-shot and takes 96-bit nonces only; a backup is tens of megabytes
//! written and read with constant memory, and crypt15 uses a 128-bit IV. So this is GCM
//! built from its parts (NIST SP 800-38D): AES-256 in 32-bit big-endian counter mode
//! and GHASH. Because the IV is not 96 bits, the pre-counter block is
//! `J0 = GHASH_H(IV ‖ 0^64 ‖ [128]_64)`; the keystream starts at `inc32(J0)` and the
//! tag is `E_K(J0) ⊕ GHASH_H(A ‖ pad ‖ C ‖ pad ‖ [len A]_64 ‖ [len C]_64)`.
//!
//! The round keys, counter state, hash key and tag mask all zeroize on drop (the
//! `zeroize` features of `aes`, `ctr` and `ghash`, and `Zeroizing` here).

use aes::Aes256;
use aes::cipher::{BlockEncrypt, KeyInit, KeyIvInit, StreamCipher};
use ctr::Ctr32BE;
use ghash::GHash;
use ghash::universal_hash::UniversalHash;
use zeroize::{Zeroize, Zeroizing};

use crate::crypto::ct_eq;

/// Length of the IV this GCM takes.
pub(crate) const IV_LEN: usize = 16;
/// Length of the authentication tag.
pub(crate) const TAG_LEN: usize = 16;

/// GCM's limit on one message: 2^32 - 2 blocks of 16 bytes (SP 800-38D, 5.2.1.1).
const MAX_TEXT_LEN: u64 = ((1u64 << 32) - 2) * 16;

/// More text than one GCM message may hold (about 64 GiB) was fed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("more than 64 GiB under one AES-GCM key and IV")]
pub(crate) struct TooLong;

type Block = ghash::Block;

/// What encryption and decryption share: the keystream, the running GHASH over the
/// ciphertext (with its unfinished last block kept aside) and the tag mask.
struct Core {
    ctr: Ctr32BE<Aes256>,
    ghash: GHash,
    tag_mask: Zeroizing<[u8; 16]>,
    /// Ciphertext bytes not yet a whole GHASH block.
    partial: Zeroizing<[u8; 16]>,
    partial_len: usize,
    aad_len: u64,
    text_len: u64,
}

impl Core {
    fn new(key: &[u8; 32], iv: &[u8; IV_LEN], aad: &[u8]) -> Self {
        let aes = Aes256::new(key.into());
        let mut h = Block::default();
        aes.encrypt_block(&mut h);

        // J0 = GHASH_H(IV ‖ 0^64 ‖ [bitlen(IV)]_64) for an IV that is not 96 bits.
        let mut j0_hash = GHash::new(&h);
        j0_hash.update(&[Block::from(*iv)]);
        let mut len_block = [0u8; 16];
        len_block[8..].copy_from_slice(&((IV_LEN as u64) * 8).to_be_bytes());
        j0_hash.update(&[Block::from(len_block)]);
        let mut j0 = j0_hash.finalize();

        let mut counter = j0;
        let mut low = [0u8; 4];
        low.copy_from_slice(&counter[12..]);
        counter[12..].copy_from_slice(&u32::from_be_bytes(low).wrapping_add(1).to_be_bytes());
        let ctr = Ctr32BE::<Aes256>::new(key.into(), &counter);

        aes.encrypt_block(&mut j0);
        let mut tag_mask = Zeroizing::new([0u8; 16]);
        tag_mask.copy_from_slice(&j0);

        let mut ghash = GHash::new(&h);
        ghash.update_padded(aad);
        // The hash key, J0 and E_K(J0) live on in `ghash` and `tag_mask` only.
        h.as_mut_slice().zeroize();
        j0.as_mut_slice().zeroize();
        counter.as_mut_slice().zeroize();
        Self {
            ctr,
            ghash,
            tag_mask,
            partial: Zeroizing::new([0u8; 16]),
            partial_len: 0,
            aad_len: aad.len() as u64,
            text_len: 0,
        }
    }

    /// Counts `len` more bytes of text against GCM's limit.
    fn count(&mut self, len: usize) -> Result<(), TooLong> {
        let total = self.text_len.checked_add(len as u64).ok_or(TooLong)?;
        if total > MAX_TEXT_LEN {
            return Err(TooLong);
        }
        self.text_len = total;
        Ok(())
    }

    fn keystream(&mut self, data: &mut [u8]) -> Result<(), TooLong> {
        self.ctr.try_apply_keystream(data).map_err(|_| TooLong)
    }

    /// Feeds ciphertext into GHASH, a whole block at a time.
    fn hash(&mut self, mut data: &[u8]) {
        if self.partial_len > 0 {
            let take = (16 - self.partial_len).min(data.len());
            let (head, rest) = data.split_at(take);
            if let Some(dst) = self
                .partial
                .get_mut(self.partial_len..self.partial_len + take)
            {
                dst.copy_from_slice(head);
            }
            self.partial_len += take;
            data = rest;
            if self.partial_len < 16 {
                return;
            }
            self.ghash.update(&[Block::from(*self.partial)]);
            self.partial_len = 0;
        }
        // Eight blocks per call, so polyval's CLMUL backend can interleave them.
        let whole = data.len() - data.len() % 16;
        let (full, rest) = data.split_at(whole);
        let mut group = [Block::default(); 8];
        for chunk in full.chunks(128) {
            let n = chunk.len() / 16;
            for (b, c) in group.iter_mut().zip(chunk.chunks_exact(16)) {
                b.copy_from_slice(c);
            }
            if let Some(blocks) = group.get(..n) {
                self.ghash.update(blocks);
            }
        }
        if let Some(dst) = self.partial.get_mut(..rest.len()) {
            dst.copy_from_slice(rest);
        }
        self.partial_len = rest.len();
    }

    fn tag(mut self) -> [u8; TAG_LEN] {
        if let Some(rest) = self.partial.get(..self.partial_len) {
            self.ghash.update_padded(rest);
        }
        let mut len_block = [0u8; 16];
        len_block[..8].copy_from_slice(&self.aad_len.wrapping_mul(8).to_be_bytes());
        len_block[8..].copy_from_slice(&self.text_len.wrapping_mul(8).to_be_bytes());
        self.ghash.update(&[Block::from(len_block)]);
        let mut s = self.ghash.finalize();
        let mut tag = [0u8; TAG_LEN];
        for ((t, s), m) in tag.iter_mut().zip(s.iter()).zip(self.tag_mask.iter()) {
            *t = s ^ m;
        }
        s.as_mut_slice().zeroize();
        tag
    }
}

/// Encrypts a stream in place; [`GcmEncryptor::finish`] gives the tag.
pub(crate) struct GcmEncryptor(Core);

impl GcmEncryptor {
    /// `aad` is authenticated, not encrypted, and fixed at the start.
    pub(crate) fn new(key: &[u8; 32], iv: &[u8; IV_LEN], aad: &[u8]) -> Self {
        Self(Core::new(key, iv, aad))
    }

    /// Encrypts the next `data` (any length) in place.
    pub(crate) fn update(&mut self, data: &mut [u8]) -> Result<(), TooLong> {
        self.0.count(data.len())?;
        self.0.keystream(data)?;
        self.0.hash(data);
        Ok(())
    }

    /// The tag over the associated data and all the ciphertext.
    pub(crate) fn finish(self) -> [u8; TAG_LEN] {
        self.0.tag()
    }
}

/// Decrypts a stream in place. What it returns is unauthenticated until
/// [`GcmDecryptor::finish`] accepts the tag.
pub(crate) struct GcmDecryptor(Core);

impl GcmDecryptor {
    /// `aad` must be what the encryptor was given.
    pub(crate) fn new(key: &[u8; 32], iv: &[u8; IV_LEN], aad: &[u8]) -> Self {
        Self(Core::new(key, iv, aad))
    }

    /// Decrypts the next `data` (any length) in place.
    pub(crate) fn update(&mut self, data: &mut [u8]) -> Result<(), TooLong> {
        self.absorb(data)?;
        self.decrypt(data)
    }

    /// Authenticates the next ciphertext without decrypting it. With
    /// [`GcmDecryptor::decrypt`] this lets a reader decrypt ahead and authenticate
    /// only the bytes that turn out to be ciphertext (a backup's ends where its zlib
    /// stream does).
    pub(crate) fn absorb(&mut self, data: &[u8]) -> Result<(), TooLong> {
        self.0.count(data.len())?;
        self.0.hash(data);
        Ok(())
    }

    /// Applies the next keystream to `data` in place, without authenticating it.
    pub(crate) fn decrypt(&mut self, data: &mut [u8]) -> Result<(), TooLong> {
        self.0.keystream(data)
    }

    /// Whether `expected` is the tag of everything fed in, compared in constant time.
    pub(crate) fn finish(self, expected: &[u8; TAG_LEN]) -> bool {
        let tag = Zeroizing::new(self.0.tag());
        ct_eq(tag.as_ref(), expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes_gcm::AesGcm;
    use aes_gcm::aead::consts::U16;
    use aes_gcm::aead::{Aead, Payload};

    type Reference = AesGcm<Aes256, U16>;

    fn bytes(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    fn reference(key: &[u8; 32], iv: &[u8; 16], aad: &[u8], msg: &[u8]) -> Vec<u8> {
        Reference::new(key.into())
            .encrypt(iv.into(), Payload { msg, aad })
            .unwrap()
    }

    #[test]
    fn matches_one_shot_aes_gcm_for_lengths_and_splits() {
        let key: [u8; 32] = core::array::from_fn(|i| i as u8 ^ 0x5a);
        let iv: [u8; 16] = core::array::from_fn(|i| 0xf0 ^ i as u8);
        let lengths = [
            0usize, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 1000, 4099,
        ];
        for (n, &len) in lengths.iter().enumerate() {
            let aad = bytes(n * 7 % 40, 3);
            let msg = bytes(len, n as u8);
            let expected = reference(&key, &iv, &aad, &msg);
            let (expected_ct, expected_tag) = expected.split_at(len);
            let splits: Vec<usize> = [0, 1, 7, 15, 16, 17, 33, len / 2, len.saturating_sub(1), len]
                .into_iter()
                .filter(|&s| s <= len)
                .collect();
            for &a in &splits {
                for &b in &splits {
                    let (a, b) = (a.min(b), a.max(b));
                    let mut buf = msg.clone();
                    let mut enc = GcmEncryptor::new(&key, &iv, &aad);
                    let (x, rest) = buf.split_at_mut(a);
                    let (y, z) = rest.split_at_mut(b - a);
                    enc.update(x).unwrap();
                    enc.update(y).unwrap();
                    enc.update(&mut []).unwrap();
                    enc.update(z).unwrap();
                    let tag = enc.finish();
                    assert_eq!(buf, expected_ct, "len {len} split {a}/{b}");
                    assert_eq!(&tag[..], expected_tag, "len {len} split {a}/{b}");

                    let mut dec = GcmDecryptor::new(&key, &iv, &aad);
                    let (x, rest) = buf.split_at_mut(b);
                    let (y, z) = rest.split_at_mut(0);
                    dec.update(x).unwrap();
                    dec.update(y).unwrap();
                    dec.update(z).unwrap();
                    assert!(dec.finish(&tag));
                    assert_eq!(buf, msg);
                }
            }
        }
    }

    #[test]
    fn byte_at_a_time_and_large() {
        let key = [7u8; 32];
        let iv = [9u8; 16];
        let msg = bytes(70_001, 11);
        let expected = reference(&key, &iv, b"header", &msg);
        let mut buf = msg.clone();
        let mut enc = GcmEncryptor::new(&key, &iv, b"header");
        for chunk in buf.chunks_mut(4093) {
            enc.update(chunk).unwrap();
        }
        let tag = enc.finish();
        assert_eq!(&buf[..], &expected[..msg.len()]);
        assert_eq!(&tag[..], &expected[msg.len()..]);

        let small = bytes(100, 1);
        let expected = reference(&key, &iv, b"", &small);
        let mut buf = small.clone();
        let mut enc = GcmEncryptor::new(&key, &iv, b"");
        for byte in buf.chunks_mut(1) {
            enc.update(byte).unwrap();
        }
        assert_eq!(&enc.finish()[..], &expected[100..]);
    }

    #[test]
    fn wrong_tag_aad_or_ciphertext_is_refused() {
        let key = [1u8; 32];
        let iv = [2u8; 16];
        let msg = bytes(50, 0);
        let sealed = reference(&key, &iv, b"aad", &msg);
        let (ct, tag) = sealed.split_at(50);
        let tag: [u8; 16] = tag.try_into().unwrap();

        let open = |aad: &[u8], ct: &[u8], tag: &[u8; 16]| {
            let mut buf = ct.to_vec();
            let mut dec = GcmDecryptor::new(&key, &iv, aad);
            dec.update(&mut buf).unwrap();
            dec.finish(tag)
        };
        assert!(open(b"aad", ct, &tag));
        assert!(!open(b"aae", ct, &tag));
        let mut bad = ct.to_vec();
        bad[49] ^= 1;
        assert!(!open(b"aad", &bad, &tag));
        let mut bad_tag = tag;
        bad_tag[0] ^= 0x80;
        assert!(!open(b"aad", ct, &bad_tag));
        assert!(!open(b"aad", &ct[..49], &tag));
    }
}
