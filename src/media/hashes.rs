//! The running hashes beside the cipher: SHA-256 of the upload and of the plaintext
//! (each when wanted) and, for encryption, the HMAC. None of them depends on the others or on
//! the cipher's state, so they can run on a helper thread.

use crate::crypto::{Hmac, Sha256};

use super::engine::{self, MAC_LEN};

/// SHA-256 of the upload and of the plaintext, each optional, optionally the HMAC. Each
/// hash is a full pass over the data, as costly as the MAC, so a decryption runs only the
/// ones its caller asked to check.
pub(super) struct Hashes {
    enc: Sha256,
    enc_on: bool,
    plain: Sha256,
    plain_on: bool,
    mac: Option<Hmac>,
}

impl Hashes {
    /// Upload hash if `enc_on`, plaintext hash if `plain_on`; no MAC.
    pub(super) fn new(enc_on: bool, plain_on: bool) -> Self {
        Self {
            enc: Sha256::new(),
            enc_on,
            plain: Sha256::new(),
            plain_on,
            mac: None,
        }
    }

    /// Also runs the MAC (already fed the IV) over the ciphertext.
    pub(super) fn with_mac(mut self, mac: Hmac) -> Self {
        self.mac = Some(mac);
        self
    }

    pub(super) fn update_plain(&mut self, data: &[u8]) {
        if self.plain_on {
            self.plain.update(data);
        }
    }

    /// Ciphertext: into the MAC (if any) and the upload hash.
    pub(super) fn update_cipher(&mut self, data: &[u8]) {
        if let Some(mac) = &mut self.mac {
            mac.update(data);
        }
        if self.enc_on {
            self.enc.update(data);
        }
    }

    /// Bytes of the upload that are not ciphertext (the MAC itself): upload hash only.
    pub(super) fn update_trailer(&mut self, data: &[u8]) {
        if self.enc_on {
            self.enc.update(data);
        }
    }

    /// Ends the MAC: the 10-byte tag, if this runs one.
    pub(super) fn take_mac(&mut self) -> Option<[u8; MAC_LEN]> {
        self.mac.take().map(engine::truncated)
    }

    /// The upload digest and the plaintext digest, each if it was asked for.
    pub(super) fn finish(self) -> (Option<[u8; 32]>, Option<[u8; 32]>) {
        let plain = self.plain_on.then(|| self.plain.finish());
        let enc = self.enc_on.then(|| self.enc.finish());
        (enc, plain)
    }
}
