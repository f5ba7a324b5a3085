//! The AES-256-CBC + HMAC-SHA256 half of the scheme, on whole blocks, with no
//! allocation: the part that must run in order and so stays on the caller's thread.

use crate::crypto::{self, Hmac};

use super::ExpandedMediaKey;
use super::error::MediaDecryptError;

/// AES block length.
pub(super) const BLOCK: usize = 16;

/// Bytes that every pass (hashes, MAC, cipher) handles before the next pass takes the
/// same bytes: small enough that a piece and its output stay in L1 between passes.
pub(super) const PASS: usize = 16 * 1024;

/// Length of the truncated HMAC appended to the ciphertext.
pub const MAC_LEN: usize = 10;

/// What the end of an upload must hold back: the last ciphertext block and the MAC.
pub(super) const TRAILER: usize = BLOCK + MAC_LEN;

/// `HMAC-SHA256(macKey, iv ‖ …)`, fed the IV already.
pub(super) fn mac_context(keys: &ExpandedMediaKey) -> Hmac {
    let mut ctx = Hmac::new(keys.mac_key());
    ctx.update(keys.iv());
    ctx
}

pub(super) fn truncated(ctx: Hmac) -> [u8; MAC_LEN] {
    let tag = ctx.finish();
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&tag[..MAC_LEN]);
    out
}

/// Copies the longest whole-block prefix that `input` and `output` share into `output`
/// and runs `f` over it in place. If `f` fails (the backend cannot fail on a 32-byte key
/// and whole blocks, but if it did) the prefix is zeroed, so input never passes for
/// output: a zeroed ciphertext fails its MAC, a zeroed plaintext its hashes.
fn in_place_blocks(input: &[u8], output: &mut [u8], f: impl FnOnce(&mut [u8]) -> bool) {
    let n = input.len().min(output.len()) / BLOCK * BLOCK;
    let out = &mut output[..n];
    out.copy_from_slice(&input[..n]);
    if !f(out) {
        out.fill(0);
    }
}

/// CBC encryption with PKCS#7 padding at the end. The MAC runs in [`Hashes`], which
/// may live on another thread.
///
/// [`Hashes`]: super::hashes::Hashes
pub(super) struct CbcEncryptor {
    cbc: crypto::CbcEncryptor,
}

impl CbcEncryptor {
    pub(super) fn new(keys: &ExpandedMediaKey) -> Self {
        Self {
            cbc: crypto::CbcEncryptor::new(keys.cipher_key(), keys.iv()),
        }
    }

    /// Encrypts whole blocks of `input` into `output` (equal lengths, multiples of 16).
    pub(super) fn blocks(&mut self, input: &[u8], output: &mut [u8]) {
        in_place_blocks(input, output, |b| self.cbc.encrypt_in_place(b));
    }

    /// Pads the final 0..=15 plaintext bytes with PKCS#7 and encrypts the block.
    pub(super) fn last(&mut self, tail: &[u8]) -> [u8; BLOCK] {
        let tail = &tail[..tail.len().min(BLOCK - 1)];
        // tail.len() < 16, so the pad byte is 1..=16.
        let mut block = [(BLOCK - tail.len()) as u8; BLOCK];
        block[..tail.len()].copy_from_slice(tail);
        if !self.cbc.encrypt_in_place(&mut block) {
            block = [0u8; BLOCK];
        }
        block
    }
}

/// The running MAC over ciphertext and CBC decryption of it.
pub(super) struct DecryptEngine {
    cbc: crypto::CbcDecryptor,
    mac: Hmac,
}

impl DecryptEngine {
    pub(super) fn new(keys: &ExpandedMediaKey) -> Self {
        Self {
            cbc: crypto::CbcDecryptor::new(keys.cipher_key(), keys.iv()),
            mac: mac_context(keys),
        }
    }

    /// MACs whole ciphertext blocks, then decrypts them into `output` (equal lengths,
    /// multiples of 16). The plaintext is unverified until [`last`](Self::last) succeeds.
    ///
    /// Both passes run over one [`PASS`]-sized piece at a time, so the decryption reads
    /// the ciphertext from L1 where the MAC just left it; the CBC decryption of a piece
    /// is one call, so the AES unit works on many independent blocks at once.
    pub(super) fn blocks(&mut self, input: &[u8], output: &mut [u8]) {
        for (i, o) in input.chunks(PASS).zip(output.chunks_mut(PASS)) {
            self.mac.update(i);
            in_place_blocks(i, o, |b| self.cbc.decrypt_in_place(b));
        }
    }

    /// MACs the last ciphertext block and checks the MAC in constant time; only then
    /// decrypts the block and strips the padding. Returns the block and how many of its
    /// bytes are plaintext.
    pub(super) fn last(
        mut self,
        block: &[u8; BLOCK],
        tag: &[u8],
    ) -> Result<([u8; BLOCK], usize), MediaDecryptError> {
        self.mac.update(block);
        if !crypto::ct_eq(&truncated(self.mac), tag) {
            return Err(MediaDecryptError::BadMac);
        }
        let mut plain = *block;
        if !self.cbc.decrypt_in_place(&mut plain) {
            // Zeros fail the padding check below.
            plain = [0u8; BLOCK];
        }
        let pad = usize::from(plain[BLOCK - 1]);
        let padding_ok = (1..=BLOCK).contains(&pad)
            && plain[BLOCK - pad..].iter().all(|&b| usize::from(b) == pad);
        if !padding_ok {
            return Err(MediaDecryptError::BadPadding);
        }
        Ok((plain, BLOCK - pad))
    }
}

/// Checks the MAC of a whole upload held in memory, without decrypting.
pub(super) fn check_mac(keys: &ExpandedMediaKey, ciphertext: &[u8], tag: &[u8]) -> bool {
    let mut ctx = mac_context(keys);
    ctx.update(ciphertext);
    crypto::ct_eq(&truncated(ctx), tag)
}
