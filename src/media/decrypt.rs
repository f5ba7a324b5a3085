//! Push-style decryption and the in-memory shortcut.

use bytes::Bytes;

use super::engine::{self, BLOCK, DecryptEngine, MAC_LEN, PASS, TRAILER};
use super::error::MediaDecryptError;
use super::hashes::Hashes;
use super::{MediaKey, MediaKind};

/// What the message said about the file; every value that is `Some` is checked before
/// the result is final. Build one with [`Expected::none`] and the setters, or take all
/// three from the sender's [`EncryptedMedia`](super::EncryptedMedia).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Expected {
    /// `FileEncSHA256`: SHA-256 of the upload. Asking for it costs one more SHA-256 pass
    /// (the MAC already authenticates the upload under the media key).
    pub file_enc_sha256: Option<[u8; 32]>,
    /// `FileSHA256`: SHA-256 of the plaintext. Asking for it costs one more SHA-256 pass.
    pub file_sha256: Option<[u8; 32]>,
    /// `FileLength`: plaintext length.
    pub file_length: Option<u64>,
}

impl Expected {
    /// Checks nothing beyond the MAC.
    pub const fn none() -> Self {
        Self {
            file_enc_sha256: None,
            file_sha256: None,
            file_length: None,
        }
    }

    /// Also requires this SHA-256 of the upload.
    pub const fn file_enc_sha256(mut self, hash: [u8; 32]) -> Self {
        self.file_enc_sha256 = Some(hash);
        self
    }

    /// Also requires this SHA-256 of the plaintext.
    pub const fn file_sha256(mut self, hash: [u8; 32]) -> Self {
        self.file_sha256 = Some(hash);
        self
    }

    /// Also requires this plaintext length.
    pub const fn file_length(mut self, length: u64) -> Self {
        self.file_length = Some(length);
        self
    }
}

impl From<&super::EncryptedMedia> for Expected {
    fn from(info: &super::EncryptedMedia) -> Self {
        Self::none()
            .file_enc_sha256(info.file_enc_sha256)
            .file_sha256(info.file_sha256)
            .file_length(info.file_length)
    }
}

/// A decryption that passed every check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct DecryptedMedia {
    /// Plaintext length.
    pub file_length: u64,
    /// SHA-256 of the upload, computed only when [`Expected::file_enc_sha256`] was set:
    /// it is a whole extra pass over the data, as costly as the MAC, and the MAC already
    /// authenticates the upload. [`verify`](super::verify) computes it on its own.
    pub file_enc_sha256: Option<[u8; 32]>,
    /// SHA-256 of the plaintext, computed only when [`Expected::file_sha256`] was set.
    pub file_sha256: Option<[u8; 32]>,
}

impl Hashes {
    /// The hashes a decryption checking `expected` needs: each SHA-256 only when asked.
    pub(super) fn for_expected(expected: &Expected) -> Self {
        Self::new(
            expected.file_enc_sha256.is_some(),
            expected.file_sha256.is_some(),
        )
    }

    /// Finishes both hashes and runs the checks that follow a good MAC.
    pub(super) fn check(
        self,
        length: u64,
        expected: &Expected,
    ) -> Result<DecryptedMedia, MediaDecryptError> {
        let (enc, plain) = self.finish();
        check_expected(enc, plain, length, expected)
    }
}

/// The checks that follow a good MAC, in order: upload hash, plaintext hash, length.
fn check_expected(
    file_enc_sha256: Option<[u8; 32]>,
    file_sha256: Option<[u8; 32]>,
    file_length: u64,
    expected: &Expected,
) -> Result<DecryptedMedia, MediaDecryptError> {
    check_enc_sha256(file_enc_sha256.as_ref(), expected)?;
    if let (Some(want), Some(got)) = (&expected.file_sha256, &file_sha256) {
        if !crate::crypto::ct_eq(want, got) {
            return Err(MediaDecryptError::FileSha256Mismatch);
        }
    }
    if let Some(want) = expected.file_length {
        if want != file_length {
            return Err(MediaDecryptError::LengthMismatch {
                expected: want,
                found: file_length,
            });
        }
    }
    Ok(DecryptedMedia {
        file_length,
        file_enc_sha256,
        file_sha256,
    })
}

/// A wanted upload hash that was not computed counts as a mismatch (never reached:
/// [`Hashes::for_expected`] computes it whenever it is wanted).
fn check_enc_sha256(got: Option<&[u8; 32]>, expected: &Expected) -> Result<(), MediaDecryptError> {
    match (&expected.file_enc_sha256, got) {
        (None, _) => Ok(()),
        (Some(want), Some(got)) if crate::crypto::ct_eq(want, got) => Ok(()),
        (Some(_), _) => Err(MediaDecryptError::EncSha256Mismatch),
    }
}

/// Splits the end of an upload into its last ciphertext block and MAC, checking the
/// shape. `held` is the tail of the upload, `total` the whole upload's length.
pub(super) fn split_trailer(
    held: &[u8],
    total: u64,
) -> Result<([u8; BLOCK], &[u8]), MediaDecryptError> {
    if total < TRAILER as u64 || held.len() < TRAILER {
        return Err(MediaDecryptError::TooShort {
            found: total,
            minimum: TRAILER as u64,
        });
    }
    let ciphertext_len = total - MAC_LEN as u64;
    if ciphertext_len % BLOCK as u64 != 0 {
        return Err(MediaDecryptError::NotBlockAligned { ciphertext_len });
    }
    let (ct, tag) = held.split_at(held.len() - MAC_LEN);
    let mut block = [0u8; BLOCK];
    block.copy_from_slice(&ct[ct.len() - BLOCK..]);
    Ok((block, tag))
}

/// Decrypts an upload pushed in chunks of any size, in constant memory.
///
/// The MAC is at the end of the upload, so a one-pass streaming decryptor cannot know
/// the data is authentic until it has seen everything. The contract:
/// - [`update`](Self::update) returns **unverified** plaintext for the blocks seen so far
///   (it holds back the last block and the MAC). Write it somewhere provisional (a temp
///   file, a buffer) and do not act on it.
/// - [`finish`](Self::finish) checks the MAC first (constant time), then the padding,
///   the expected upload hash, plaintext hash and length, and only then returns the last
///   plaintext bytes with the verified [`DecryptedMedia`]. On `Err`, discard everything
///   `update` returned.
///
/// The padding is looked at only after the MAC holds, so bad padding is never an oracle.
/// [`decrypt_file`](super::decrypt_file) applies this contract for you (it publishes the
/// output file only after `finish` succeeds), and [`verify`](super::verify) checks an
/// upload without decrypting, for a two-pass decrypt of a seekable source.
pub struct Decryptor {
    engine: DecryptEngine,
    hashes: Hashes,
    expected: Expected,
    held: [u8; 64],
    held_len: usize,
    total: u64,
    length: u64,
}

impl Decryptor {
    /// Starts decrypting an upload of `kind` under `key`, to be checked against
    /// `expected` at the end.
    pub fn new(key: &MediaKey, kind: MediaKind, expected: Expected) -> Self {
        Self {
            engine: DecryptEngine::new(&key.expand(kind)),
            hashes: Hashes::for_expected(&expected),
            expected,
            held: [0u8; 64],
            held_len: 0,
            total: 0,
            length: 0,
        }
    }

    /// Takes the next chunk of the upload; returns unverified plaintext (a multiple of 16
    /// bytes, possibly empty). See the type's docs for what "unverified" obliges.
    pub fn update(&mut self, chunk: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(chunk.len() + BLOCK);
        self.update_into(chunk, &mut out);
        Bytes::from(out)
    }

    /// As [`update`](Self::update), appending to `out` so a caller can reuse one buffer.
    pub fn update_into(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        self.total += chunk.len() as u64;
        let avail = self.held_len + chunk.len();
        // Keep at least the last block and the MAC, and keep `held` under 42 bytes.
        if avail < TRAILER + BLOCK {
            self.held[self.held_len..avail].copy_from_slice(chunk);
            self.held_len = avail;
            return;
        }
        let process = (avail - TRAILER) / BLOCK * BLOCK;
        let held = self.held;
        let held_len = self.held_len;
        if process <= held_len {
            self.consume(&held[..process], out);
            let keep = held_len - process;
            self.held[..keep].copy_from_slice(&held[process..held_len]);
            self.held[keep..keep + chunk.len()].copy_from_slice(chunk);
            self.held_len = keep + chunk.len();
        } else {
            // Complete the held partial block from the chunk, then decrypt the rest of
            // the chunk straight from the caller's buffer.
            let fill = (BLOCK - held_len % BLOCK) % BLOCK;
            let mut first = held;
            first[held_len..held_len + fill].copy_from_slice(&chunk[..fill]);
            self.consume(&first[..held_len + fill], out);
            let direct = process - held_len - fill;
            self.consume(&chunk[fill..fill + direct], out);
            let rest = &chunk[fill + direct..];
            self.held[..rest.len()].copy_from_slice(rest);
            self.held_len = rest.len();
        }
    }

    /// Hashes, MACs and decrypts whole blocks onto the end of `out`, an L1-sized piece
    /// at a time.
    fn consume(&mut self, ciphertext: &[u8], out: &mut Vec<u8>) {
        out.reserve(ciphertext.len());
        for piece in ciphertext.chunks(PASS) {
            self.hashes.update_cipher(piece);
            let at = out.len();
            out.resize(at + piece.len(), 0);
            self.engine.blocks(piece, &mut out[at..]);
            self.hashes.update_plain(&out[at..]);
        }
        self.length += ciphertext.len() as u64;
    }

    /// Ends the upload: checks everything, then returns the last 0..=15 plaintext bytes
    /// and the verified result.
    pub fn finish(self) -> Result<(Bytes, DecryptedMedia), MediaDecryptError> {
        let Self {
            engine,
            mut hashes,
            expected,
            held,
            held_len,
            total,
            length,
        } = self;
        let held = &held[..held_len];
        let (block, tag) = split_trailer(held, total)?;
        let (plain, n) = engine.last(&block, tag)?;
        let (ct, mac) = held.split_at(held.len() - MAC_LEN);
        hashes.update_cipher(ct);
        hashes.update_trailer(mac);
        hashes.update_plain(&plain[..n]);
        let info = hashes.check(length + n as u64, &expected)?;
        Ok((Bytes::copy_from_slice(&plain[..n]), info))
    }
}

impl std::fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decryptor")
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

/// Decrypts a whole upload held in memory. The MAC and the expected upload hash are
/// checked before anything is decrypted, so no unverified plaintext ever exists.
pub fn decrypt_bytes(
    key: &MediaKey,
    kind: MediaKind,
    upload: &[u8],
    expected: Expected,
) -> Result<(Vec<u8>, DecryptedMedia), MediaDecryptError> {
    let keys = key.expand(kind);
    let (_, tag) = split_trailer(upload, upload.len() as u64)?;
    let ciphertext = &upload[..upload.len() - MAC_LEN];
    if !engine::check_mac(&keys, ciphertext, tag) {
        return Err(MediaDecryptError::BadMac);
    }
    let file_enc_sha256 = expected.file_enc_sha256.map(|_| sha256_of(upload));
    check_enc_sha256(file_enc_sha256.as_ref(), &expected)?;
    let plain = crate::crypto::aes256_cbc_decrypt(keys.cipher_key(), keys.iv(), ciphertext)
        .ok_or(MediaDecryptError::BadPadding)?;
    let file_sha256 = expected.file_sha256.map(|_| sha256_of(&plain));
    let info = check_expected(file_enc_sha256, file_sha256, plain.len() as u64, &expected)?;
    Ok((plain, info))
}

fn sha256_of(data: &[u8]) -> [u8; 32] {
    crate::crypto::sha256(data)
}
