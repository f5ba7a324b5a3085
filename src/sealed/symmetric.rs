//! AES-256-CTR (zero IV) with a truncated HMAC-SHA256, as sealed sender v1 uses, and
//! AES-256-GCM-SIV (zero nonce, one-use key) for v2.

use crate::crypto;

/// Length of the truncated MAC after each v1 ciphertext.
pub(super) const MAC_LEN: usize = 10;

/// `AES-256-CTR(key, msg) ‖ HMAC(mac_key, ct)[..10]`; empty only if the backend fails
/// (which the recipient then refuses).
pub(super) fn ctr_hmac_encrypt(msg: &[u8], key: &[u8; 32], mac_key: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + MAC_LEN);
    out.extend_from_slice(msg);
    if !crypto::aes256_ctr_apply(key, &[0u8; 16], &mut out) {
        return Vec::new();
    }
    let mac = crypto::hmac_sha256(mac_key, &[&out]);
    out.extend_from_slice(&mac[..MAC_LEN]);
    out
}

/// Checks the MAC, then decrypts; `None` on a bad MAC or a short input.
pub(super) fn ctr_hmac_decrypt(ct: &[u8], key: &[u8; 32], mac_key: &[u8; 32]) -> Option<Vec<u8>> {
    let split = ct.len().checked_sub(MAC_LEN)?;
    let (body, mac) = ct.split_at(split);
    let expected = crypto::hmac_sha256(mac_key, &[body]);
    if !crypto::ct_eq(&expected[..MAC_LEN], mac) {
        return None;
    }
    let mut out = body.to_vec();
    crypto::aes256_ctr_apply(key, &[0u8; 16], &mut out).then_some(out)
}

/// AES-256-GCM-SIV with an all-zero nonce and no associated data: ciphertext ‖ tag.
pub(super) fn gcm_siv_encrypt(key: &[u8; 32], msg: &[u8]) -> Vec<u8> {
    crypto::gcm_siv_encrypt(key, msg)
}

/// Decrypts and authenticates; `None` on failure.
pub(super) fn gcm_siv_decrypt(key: &[u8; 32], ct: &[u8]) -> Option<Vec<u8>> {
    crypto::gcm_siv_decrypt(key, ct)
}
