//! Push-style encryption and the in-memory shortcut.

use bytes::Bytes;

use super::engine::{self, BLOCK, CbcEncryptor, MAC_LEN};
use super::hashes::Hashes;
use super::{MediaKey, MediaKind};

/// Large inputs are encrypted and hashed in pieces of this size, so each piece is hashed
/// while it is still in cache.
pub(super) const PIECE: usize = 64 * 1024;

/// What the sender puts in the message beside the media key once the upload is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct EncryptedMedia {
    /// `FileSHA256`: SHA-256 of the plaintext.
    pub file_sha256: [u8; 32],
    /// `FileEncSHA256`: SHA-256 of the upload (ciphertext ‖ 10-byte MAC).
    pub file_enc_sha256: [u8; 32],
    /// `FileLength`: length of the plaintext in bytes.
    pub file_length: u64,
    /// The 10-byte truncated HMAC that ends the upload.
    pub mac: [u8; MAC_LEN],
}

/// Length of the upload for a plaintext of `plaintext_len` bytes: PKCS#7 always adds
/// 1..=16 bytes, then the 10-byte MAC.
pub const fn encrypted_len(plaintext_len: u64) -> u64 {
    (plaintext_len / BLOCK as u64 + 1) * BLOCK as u64 + MAC_LEN as u64
}

/// Encrypts a file pushed in chunks of any size, in constant memory.
///
/// Every [`update`](Self::update) returns the ciphertext for the whole blocks seen so
/// far (so up to 15 bytes wait for the next call); [`finish`](Self::finish) returns the
/// padded last block and the MAC, which end the upload. The upload is the concatenation
/// of everything returned, in order.
///
/// ```
/// use confide::media::{Encryptor, MediaKey, MediaKind};
/// # let mut rng = confide::SystemRng::new();
/// let key = MediaKey::generate(&mut rng);
/// let mut enc = Encryptor::new(&key, MediaKind::Image);
/// let mut upload = Vec::new();
/// for chunk in [&b"a picture, "[..], b"in two chunks"] {
///     upload.extend_from_slice(&enc.update(chunk));
/// }
/// let (end, info) = enc.finish();
/// upload.extend_from_slice(&end);
/// assert_eq!(info.file_length, 24);
/// assert_eq!(upload.len(), 32 + 10);
/// ```
pub struct Encryptor {
    cipher: CbcEncryptor,
    hashes: Hashes,
    tail: [u8; BLOCK],
    tail_len: usize,
    length: u64,
}

impl Encryptor {
    /// Starts encrypting a file of `kind` under `key`.
    pub fn new(key: &MediaKey, kind: MediaKind) -> Self {
        let keys = key.expand(kind);
        Self {
            cipher: CbcEncryptor::new(&keys),
            hashes: Hashes::new(true, true).with_mac(engine::mac_context(&keys)),
            tail: [0u8; BLOCK],
            tail_len: 0,
            length: 0,
        }
    }

    /// Encrypts the next chunk; returns the ciphertext that is ready (a multiple of 16
    /// bytes, possibly empty).
    pub fn update(&mut self, chunk: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(chunk.len() + BLOCK);
        self.update_into(chunk, &mut out);
        Bytes::from(out)
    }

    /// As [`update`](Self::update), appending to `out` so a caller can reuse one buffer.
    pub fn update_into(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        self.length += chunk.len() as u64;
        let mut chunk = chunk;
        if self.tail_len > 0 {
            let take = (BLOCK - self.tail_len).min(chunk.len());
            self.tail[self.tail_len..self.tail_len + take].copy_from_slice(&chunk[..take]);
            self.tail_len += take;
            self.hashes.update_plain(&chunk[..take]);
            chunk = &chunk[take..];
            if self.tail_len < BLOCK {
                return;
            }
            let tail = self.tail;
            self.encrypt(&tail, out);
            self.tail_len = 0;
        }
        let whole = chunk.len() / BLOCK * BLOCK;
        for piece in chunk[..whole].chunks(PIECE) {
            self.hashes.update_plain(piece);
            self.encrypt(piece, out);
        }
        let rest = &chunk[whole..];
        self.hashes.update_plain(rest);
        self.tail[..rest.len()].copy_from_slice(rest);
        self.tail_len = rest.len();
    }

    /// Encrypts whole blocks onto the end of `out` and hashes the ciphertext.
    fn encrypt(&mut self, blocks: &[u8], out: &mut Vec<u8>) {
        let at = out.len();
        out.resize(at + blocks.len(), 0);
        self.cipher.blocks(blocks, &mut out[at..]);
        self.hashes.update_cipher(&out[at..]);
    }

    /// Ends the file: returns the last ciphertext block and the MAC (26 bytes that end
    /// the upload) and the hashes and length for the message.
    pub fn finish(self) -> (Bytes, EncryptedMedia) {
        let mut out = Vec::with_capacity(BLOCK + MAC_LEN);
        let info = self.finish_into(&mut out);
        (Bytes::from(out), info)
    }

    /// As [`finish`](Self::finish), appending the last 26 bytes to `out`.
    pub fn finish_into(self, out: &mut Vec<u8>) -> EncryptedMedia {
        let Self {
            mut cipher,
            mut hashes,
            tail,
            tail_len,
            length,
        } = self;
        let block = cipher.last(&tail[..tail_len]);
        hashes.update_cipher(&block);
        let mac = hashes.take_mac().unwrap_or_default();
        hashes.update_trailer(&mac);
        out.extend_from_slice(&block);
        out.extend_from_slice(&mac);
        let (file_enc_sha256, file_sha256) = hashes.finish();
        EncryptedMedia {
            file_sha256: file_sha256.unwrap_or_default(),
            file_enc_sha256: file_enc_sha256.unwrap_or_default(),
            file_length: length,
            mac,
        }
    }
}

impl std::fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encryptor")
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

/// Encrypts a whole file held in memory; returns the upload (ciphertext ‖ MAC).
pub fn encrypt_bytes(
    key: &MediaKey,
    kind: MediaKind,
    plaintext: &[u8],
) -> (Vec<u8>, EncryptedMedia) {
    let mut out = Vec::with_capacity(plaintext.len() + BLOCK + MAC_LEN);
    let mut enc = Encryptor::new(key, kind);
    enc.update_into(plaintext, &mut out);
    let info = enc.finish_into(&mut out);
    (out, info)
}
