//! MAC-only verification of an upload read from a `Read`, without decrypting it.

use std::io::Read;

use super::decrypt::split_trailer;
use super::engine::{MAC_LEN, TRAILER};
use super::error::MediaDecryptError;
use super::stream::{DEFAULT_CHUNK_LEN, read_full};
use super::{MediaKey, MediaKind};

/// Checks an upload's MAC and expected upload hash without decrypting it: the first
/// pass of a two-pass decrypt over a seekable source (rewind, then decrypt). Returns
/// the upload's SHA-256.
pub fn verify<R: Read>(
    key: &MediaKey,
    kind: MediaKind,
    mut reader: R,
    expected_enc_sha256: Option<[u8; 32]>,
) -> Result<[u8; 32], MediaDecryptError> {
    let keys = key.expand(kind);
    let mut buf = vec![0u8; DEFAULT_CHUNK_LEN + 64];
    let mut held_len = 0usize;
    let mut total = 0u64;
    let mut mac = crate::crypto::Hmac::new(keys.mac_key());
    mac.update(keys.iv());
    let mut enc = crate::crypto::Sha256::new();
    loop {
        let n = read_full(&mut reader, &mut buf[held_len..])
            .map_err(|source| MediaDecryptError::Read { source })?;
        total += n as u64;
        let avail = held_len + n;
        if avail < buf.len() {
            // End of input: what is left ends with the MAC.
            split_trailer(&buf[..avail], total)?;
            let (ct, tag) = buf[..avail].split_at(avail - MAC_LEN);
            mac.update(ct);
            enc.update(&buf[..avail]);
            let tag_ok = crate::crypto::ct_eq(&mac.finish()[..MAC_LEN], tag);
            if !tag_ok {
                return Err(MediaDecryptError::BadMac);
            }
            let got = enc.finish();
            if let Some(want) = &expected_enc_sha256 {
                if !crate::crypto::ct_eq(want, &got) {
                    return Err(MediaDecryptError::EncSha256Mismatch);
                }
            }
            return Ok(got);
        }
        let process = avail - TRAILER;
        mac.update(&buf[..process]);
        enc.update(&buf[..process]);
        buf.copy_within(process..avail, 0);
        held_len = avail - process;
    }
}
