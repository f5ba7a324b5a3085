//! The authenticator: a root key and a MAC key, refreshed with every epoch's secret, that
//! MAC the ML-KEM header and ciphertext so a party without the session's secrets cannot
//! inject its own encapsulation (facts §2.6).

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::{ct_eq, hkdf_sha256, hmac_sha256};

/// Size of every MAC the authenticator makes.
pub(crate) const MAC_SIZE: usize = 32;

const UPDATE_INFO: &[u8] = b"Signal_PQCKA_V1_MLKEM768:Authenticator Update";
const HEADER_INFO: &[u8] = b"Signal_PQCKA_V1_MLKEM768:ekheader";
const CIPHERTEXT_INFO: &[u8] = b"Signal_PQCKA_V1_MLKEM768:ciphertext";

/// The authenticator of one side: both sides hold equal values at equal points.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub(crate) struct Authenticator {
    root_key: [u8; 32],
    mac_key: [u8; 32],
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticator(***)")
    }
}

impl Authenticator {
    /// The authenticator of a new session: zero keys updated with PQXDH's SPQR key for
    /// epoch 1.
    pub(crate) fn new(auth_key: &[u8]) -> Self {
        let mut auth = Self {
            root_key: [0; 32],
            mac_key: [0; 32],
        };
        auth.update(1, auth_key);
        auth
    }

    /// Rebuilds a stored authenticator.
    pub(crate) fn from_parts(root_key: [u8; 32], mac_key: [u8; 32]) -> Self {
        Self { root_key, mac_key }
    }

    /// The stored form: (root_key, mac_key).
    pub(crate) fn parts(&self) -> (&[u8; 32], &[u8; 32]) {
        (&self.root_key, &self.mac_key)
    }

    /// Mixes `secret` (an epoch secret, or the initial auth key) into both keys.
    pub(crate) fn update(&mut self, epoch: u64, secret: &[u8]) {
        let mut ikm = zeroize::Zeroizing::new(Vec::with_capacity(32 + secret.len()));
        ikm.extend_from_slice(&self.root_key);
        ikm.extend_from_slice(secret);
        let mut info = Vec::with_capacity(UPDATE_INFO.len() + 8);
        info.extend_from_slice(UPDATE_INFO);
        info.extend_from_slice(&epoch.to_be_bytes());
        let mut out = [0u8; 64];
        hkdf_sha256(&[0u8; 32], &ikm, &info, &mut out);
        self.root_key.copy_from_slice(&out[..32]);
        self.mac_key.copy_from_slice(&out[32..]);
        out.zeroize();
    }

    /// The MAC of epoch `epoch`'s 64-byte header (made before that epoch's update).
    pub(crate) fn mac_header(&self, epoch: u64, header: &[u8]) -> [u8; MAC_SIZE] {
        hmac_sha256(&self.mac_key, &[HEADER_INFO, &epoch.to_be_bytes(), header])
    }

    /// Whether `mac` is the header's MAC, compared in constant time.
    pub(crate) fn verify_header(&self, epoch: u64, header: &[u8], mac: &[u8]) -> bool {
        ct_eq(&self.mac_header(epoch, header), mac)
    }

    /// The MAC of epoch `epoch`'s ciphertext ct1 ‖ ct2 (made after that epoch's update).
    pub(crate) fn mac_ciphertext(&self, epoch: u64, ct1: &[u8], ct2: &[u8]) -> [u8; MAC_SIZE] {
        hmac_sha256(
            &self.mac_key,
            &[CIPHERTEXT_INFO, &epoch.to_be_bytes(), ct1, ct2],
        )
    }

    /// Whether `mac` is the ciphertext's MAC, compared in constant time.
    pub(crate) fn verify_ciphertext(&self, epoch: u64, ct1: &[u8], ct2: &[u8], mac: &[u8]) -> bool {
        ct_eq(&self.mac_ciphertext(epoch, ct1, ct2), mac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_is_update_of_zero_keys() {
        let auth = Authenticator::new(&[7u8; 32]);
        let mut ikm = [0u8; 64];
        ikm[32..].copy_from_slice(&[7u8; 32]);
        let mut info = UPDATE_INFO.to_vec();
        info.extend_from_slice(&1u64.to_be_bytes());
        let mut out = [0u8; 64];
        hkdf_sha256(&[0u8; 32], &ikm, &info, &mut out);
        assert_eq!(auth.root_key[..], out[..32]);
        assert_eq!(auth.mac_key[..], out[32..]);
    }

    #[test]
    fn macs_use_labels_epoch_and_mac_key() {
        let auth = Authenticator::new(&[1u8; 32]);
        let hdr = [3u8; 64];
        let mut data = HEADER_INFO.to_vec();
        data.extend_from_slice(&5u64.to_be_bytes());
        data.extend_from_slice(&hdr);
        assert_eq!(
            auth.mac_header(5, &hdr),
            hmac_sha256(&auth.mac_key, &[&data])
        );
        let mac = auth.mac_header(5, &hdr);
        assert!(auth.verify_header(5, &hdr, &mac));
        assert!(!auth.verify_header(6, &hdr, &mac));
        let ct = auth.mac_ciphertext(5, &[1; 960], &[2; 128]);
        assert_ne!(ct, auth.mac_ciphertext(5, &[1; 960], &[3; 128]));
        assert!(auth.verify_ciphertext(5, &[1; 960], &[2; 128], &ct));
        let mut bad = ct;
        bad[31] ^= 1;
        assert!(!auth.verify_ciphertext(5, &[1; 960], &[2; 128], &bad));
        let mut updated = auth.clone();
        updated.update(2, &[9; 32]);
        assert_ne!(updated.mac_header(5, &hdr), auth.mac_header(5, &hdr));
        assert_eq!(format!("{auth:?}"), "Authenticator(***)");
    }
}
