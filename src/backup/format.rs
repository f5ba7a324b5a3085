//! confide's own backup format.
//!
//! ```text
//! header = "CONFIDEBAK" ‖ version (1) ‖ key kind (1 digits, 2 vault) ‖ generation (u64 BE)
//!          ‖ IV (16 random bytes) ‖ key check (16)
//! body   = AES-256-GCM(file key, IV, AAD = header, zlib(payload)) ‖ tag (16)
//! ```
//!
//! The key check is the first 16 bytes of HMAC-SHA256, under the key's metadata
//! authentication key, over the header bytes before it: a wrong key is told apart
//! from a damaged file before any of the body is read. Both ends stream with fixed
//! 64 KiB buffers, so memory does not grow with the size of the backup.

use std::io::{self, Read, Write};

use flate2::write::ZlibEncoder;
use flate2::{Compression, Decompress, FlushDecompress, Status};
use rand_core::{CryptoRng, RngCore};

use super::gcm::{GcmDecryptor, GcmEncryptor, IV_LEN, TAG_LEN, TooLong};
use super::{BackupKey, BackupStamp};
use crate::crypto::{ct_eq, hmac_sha256, sha256};

const MAGIC: &[u8; 10] = b"CONFIDEBAK";
const VERSION: u8 = 1;
const CHECK_LEN: usize = 16;
/// Bytes of the header before the key check.
const PREFIX_LEN: usize = MAGIC.len() + 1 + 1 + 8 + IV_LEN;
/// Length of the whole header.
pub(crate) const HEADER_LEN: usize = PREFIX_LEN + CHECK_LEN;
/// The size of every buffer the writer and reader hold.
const CHUNK: usize = 64 * 1024;

/// The zlib level backups are written at (zlib's default, 6): most of the gain of
/// level 9 at a fraction of its time.
pub const BACKUP_COMPRESSION_LEVEL: u32 = 6;

/// Where the backup key is kept; recorded in the header so a restore knows what to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(clippy::exhaustive_enums)]
pub enum KeyKind {
    /// The user wrote down the 64 digits.
    DigitKey,
    /// The key is in the password vault.
    Vault,
}

impl KeyKind {
    fn byte(self) -> u8 {
        match self {
            KeyKind::DigitKey => 1,
            KeyKind::Vault => 2,
        }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(KeyKind::DigitKey),
            2 => Some(KeyKind::Vault),
            _ => None,
        }
    }
}

/// Why a backup could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The output failed.
    #[error("writing the backup failed")]
    Io(#[source] io::Error),
    /// More than AES-GCM allows under one IV (about 64 GiB compressed).
    #[error("the backup is larger than AES-GCM allows under one IV")]
    TooLarge,
}

impl From<io::Error> for WriteError {
    fn from(e: io::Error) -> Self {
        if e.get_ref().is_some_and(|inner| inner.is::<TooLong>()) {
            WriteError::TooLarge
        } else {
            WriteError::Io(e)
        }
    }
}

/// Why a backup could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The input failed.
    #[error("reading the backup failed")]
    Io(#[source] io::Error),
    /// The file does not start with confide's backup magic.
    #[error("not a confide backup")]
    NotABackup,
    /// A format version this build does not know.
    #[error("unsupported backup version {version}")]
    UnsupportedVersion {
        /// The version byte in the header.
        version: u8,
    },
    /// A key kind this build does not know.
    #[error("unknown backup key kind {kind}")]
    UnknownKeyKind {
        /// The key kind byte in the header.
        kind: u8,
    },
    /// The header's key check does not match this key (or the header was altered).
    #[error("wrong backup key")]
    WrongKey,
    /// The file ends early (or a flip in the body made its zlib stream seem to run on
    /// past the end; the tag cannot tell these apart, both mean the file is unusable).
    #[error("the backup is truncated")]
    Truncated,
    /// The authentication tag does not match: the file was altered.
    #[error("the backup was altered")]
    Tampered,
    /// Authentic, but the payload is not valid zlib (a writer bug, not an attacker).
    #[error("the backup's payload is corrupt")]
    Corrupt,
    /// Bytes after the end of the backup.
    #[error("data after the end of the backup")]
    TrailingData,
}

/// The non-I/O outcomes, kept so every later call reports the same failure.
#[derive(Debug, Clone, Copy)]
enum Bad {
    Truncated,
    Tampered,
    Corrupt,
    TrailingData,
}

impl Bad {
    fn error(self) -> ReadError {
        match self {
            Bad::Truncated => ReadError::Truncated,
            Bad::Tampered => ReadError::Tampered,
            Bad::Corrupt => ReadError::Corrupt,
            Bad::TrailingData => ReadError::TrailingData,
        }
    }
}

fn key_check(key: &BackupKey, prefix: &[u8]) -> [u8; CHECK_LEN] {
    let mac = hmac_sha256(key.metadata_authentication_key().as_ref(), &[prefix]);
    let mut check = [0u8; CHECK_LEN];
    for (c, m) in check.iter_mut().zip(mac.iter()) {
        *c = *m;
    }
    check
}

/// The header fields once checked.
pub(crate) struct Header {
    pub(crate) kind: KeyKind,
    pub(crate) generation: u64,
    pub(crate) iv: [u8; IV_LEN],
    pub(crate) bytes: [u8; HEADER_LEN],
}

/// Parses and checks a header (`bytes` may be short: the file's first bytes).
pub(crate) fn read_header(bytes: &[u8], key: &BackupKey) -> Result<Header, ReadError> {
    let magic_seen = bytes.len().min(MAGIC.len());
    if bytes.get(..magic_seen) != MAGIC.get(..magic_seen) || bytes.is_empty() {
        return Err(ReadError::NotABackup);
    }
    if let Some(&version) = bytes.get(MAGIC.len()) {
        if version != VERSION {
            return Err(ReadError::UnsupportedVersion { version });
        }
    }
    let kind = match bytes.get(MAGIC.len() + 1) {
        Some(&kind) => KeyKind::from_byte(kind).ok_or(ReadError::UnknownKeyKind { kind })?,
        None => return Err(ReadError::Truncated),
    };
    let header: [u8; HEADER_LEN] = bytes
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(ReadError::Truncated)?;
    let (prefix, check) = header.split_at(PREFIX_LEN);
    if !ct_eq(&key_check(key, prefix), check) {
        return Err(ReadError::WrongKey);
    }
    let mut generation = [0u8; 8];
    generation.copy_from_slice(prefix.get(12..20).ok_or(ReadError::Truncated)?);
    let mut iv = [0u8; IV_LEN];
    iv.copy_from_slice(prefix.get(20..PREFIX_LEN).ok_or(ReadError::Truncated)?);
    Ok(Header {
        kind,
        generation: u64::from_be_bytes(generation),
        iv,
        bytes: header,
    })
}

/// Encrypts what zlib emits, a bounded chunk at a time.
struct Sealer<W: Write> {
    out: W,
    gcm: GcmEncryptor,
    scratch: Box<[u8]>,
}

impl<W: Write> Write for Sealer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(self.scratch.len());
        let (Some(dst), Some(src)) = (self.scratch.get_mut(..n), buf.get(..n)) else {
            return Ok(0);
        };
        dst.copy_from_slice(src);
        self.gcm.update(dst).map_err(io::Error::other)?;
        self.out.write_all(dst)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Writes a backup: compresses and encrypts as it goes, with constant memory.
///
/// Nothing is a valid backup until [`BackupWriter::finish`] has written the tag.
pub struct BackupWriter<W: Write> {
    zlib: ZlibEncoder<Sealer<W>>,
    stamp: BackupStamp,
}

impl<W: Write> BackupWriter<W> {
    /// Writes the header with a fresh random IV. `generation` counts up with every
    /// backup the device writes, so a restore can refuse an older file.
    pub fn new(
        mut out: W,
        key: &BackupKey,
        kind: KeyKind,
        generation: u64,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Self, WriteError> {
        let mut iv = [0u8; IV_LEN];
        rng.fill_bytes(&mut iv);
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.push(VERSION);
        header.push(kind.byte());
        header.extend_from_slice(&generation.to_be_bytes());
        header.extend_from_slice(&iv);
        let check = key_check(key, &header);
        header.extend_from_slice(&check);
        out.write_all(&header)?;
        let gcm = GcmEncryptor::new(&key.file_key(), &iv, &header);
        let sealer = Sealer {
            out,
            gcm,
            scratch: vec![0u8; CHUNK].into_boxed_slice(),
        };
        Ok(Self {
            zlib: ZlibEncoder::new(sealer, Compression::new(BACKUP_COMPRESSION_LEVEL)),
            stamp: BackupStamp {
                generation,
                digest: sha256(&header),
            },
        })
    }

    /// Ends the zlib stream, writes the tag and hands back the output and the stamp.
    pub fn finish(self) -> Result<(W, BackupStamp), WriteError> {
        let Sealer { mut out, gcm, .. } = self.zlib.finish()?;
        out.write_all(&gcm.finish())?;
        out.flush()?;
        Ok((out, self.stamp))
    }
}

impl<W: Write> Write for BackupWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.zlib.write(buf)
    }

    /// Passes on to the output what is compressed so far (zlib keeps a window back).
    fn flush(&mut self) -> io::Result<()> {
        self.zlib.get_mut().flush()
    }
}

/// Reads a backup: decrypts and decompresses as it goes, with two fixed 64 KiB buffers.
///
/// What [`Read::read`] returns is **unauthenticated** until the stream reaches its
/// end: only then is the tag checked. A read that reaches the end returns `Ok(0)`
/// only if the tag matches and nothing follows it; otherwise it fails with
/// [`io::ErrorKind::InvalidData`] wrapping a [`ReadError`] (`Tampered`, `Truncated`,
/// `Corrupt` or `TrailingData`). Use [`BackupReader::finish`] to get the typed error,
/// and do not act on the plaintext before it succeeds.
pub struct BackupReader<R: Read> {
    input: R,
    gcm: Option<GcmDecryptor>,
    zlib: Decompress,
    /// Ciphertext as read; `plain` holds the same bytes decrypted, at the same positions.
    raw: Box<[u8]>,
    plain: Box<[u8]>,
    start: usize,
    end: usize,
    eof: bool,
    done: bool,
    failed: Option<Bad>,
    kind: KeyKind,
    stamp: BackupStamp,
}

impl<R: Read> BackupReader<R> {
    /// Reads and checks the header.
    pub fn open(mut input: R, key: &BackupKey) -> Result<Self, ReadError> {
        let mut header = [0u8; HEADER_LEN];
        let mut got = 0;
        while let Some(dst) = header.get_mut(got..).filter(|d| !d.is_empty()) {
            match input.read(dst) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
        let header = read_header(header.get(..got).unwrap_or_default(), key)?;
        Ok(Self {
            input,
            gcm: Some(GcmDecryptor::new(
                &key.file_key(),
                &header.iv,
                &header.bytes,
            )),
            zlib: Decompress::new(true),
            raw: vec![0u8; CHUNK].into_boxed_slice(),
            plain: vec![0u8; CHUNK].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            done: false,
            failed: None,
            kind: header.kind,
            stamp: BackupStamp {
                generation: header.generation,
                digest: sha256(&header.bytes),
            },
        })
    }

    /// Where the key is kept, as the header says.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The backup's generation, as the header says.
    pub fn generation(&self) -> u64 {
        self.stamp.generation
    }

    /// The stamp of this file (from its header).
    pub fn stamp(&self) -> BackupStamp {
        self.stamp
    }

    /// Reads the rest, checks the tag and that nothing follows, and gives the stamp.
    pub fn finish(mut self) -> Result<BackupStamp, ReadError> {
        let mut scratch = vec![0u8; 16 * 1024];
        while self.read_inner(&mut scratch)? > 0 {}
        Ok(self.stamp)
    }

    /// Reads more input after the bytes held, decrypting it ahead.
    fn fill(&mut self) -> Result<(), ReadError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.raw.len() {
            self.raw.copy_within(self.start..self.end, 0);
            self.plain.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let Some(dst) = self.raw.get_mut(self.end..) else {
            return Ok(());
        };
        let n = loop {
            match self.input.read(dst) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
        };
        if n == 0 {
            self.eof = true;
            return Ok(());
        }
        let new_end = self.end + n;
        if let (Some(p), Some(r), Some(gcm)) = (
            self.plain.get_mut(self.end..new_end),
            self.raw.get(self.end..new_end),
            self.gcm.as_mut(),
        ) {
            p.copy_from_slice(r);
            gcm.decrypt(p).map_err(|_| ReadError::Tampered)?;
        }
        self.end = new_end;
        Ok(())
    }

    fn absorb(&mut self, len: usize) -> Result<(), ReadError> {
        if let (Some(raw), Some(gcm)) = (
            self.raw.get(self.start..self.start + len),
            self.gcm.as_mut(),
        ) {
            gcm.absorb(raw).map_err(|_| ReadError::Tampered)?;
        }
        self.start += len;
        Ok(())
    }

    fn check_tag(&mut self, tag: &[u8; TAG_LEN]) -> bool {
        self.gcm.take().is_some_and(|gcm| gcm.finish(tag))
    }

    /// The zlib stream ended: the next 16 bytes are the tag and nothing may follow.
    fn end_of_stream(&mut self) -> Result<(), Bad> {
        let mut tag = [0u8; TAG_LEN];
        let mut got = 0;
        while got < TAG_LEN {
            if self.start == self.end {
                if self.eof {
                    return Err(Bad::Truncated);
                }
                self.fill().map_err(|_| Bad::Truncated)?;
                continue;
            }
            let take = (TAG_LEN - got).min(self.end - self.start);
            if let (Some(dst), Some(src)) = (
                tag.get_mut(got..got + take),
                self.raw.get(self.start..self.start + take),
            ) {
                dst.copy_from_slice(src);
            }
            got += take;
            self.start += take;
        }
        if !self.check_tag(&tag) {
            return Err(Bad::Tampered);
        }
        while self.start == self.end && !self.eof {
            self.fill().map_err(|_| Bad::TrailingData)?;
        }
        if self.start != self.end {
            return Err(Bad::TrailingData);
        }
        Ok(())
    }

    /// The zlib stream failed or the input ended inside it: authenticate all but the
    /// last 16 bytes to tell damage from a writer bug.
    fn diagnose(&mut self, zlib_failed: bool) -> Result<Bad, ReadError> {
        loop {
            if self.end - self.start > TAG_LEN {
                self.absorb(self.end - self.start - TAG_LEN)?;
            }
            if self.eof {
                break;
            }
            self.fill()?;
        }
        let Some(tag) = self
            .raw
            .get(self.start..self.end)
            .and_then(|t| <[u8; TAG_LEN]>::try_from(t).ok())
        else {
            return Ok(if zlib_failed {
                Bad::Tampered
            } else {
                Bad::Truncated
            });
        };
        Ok(if self.check_tag(&tag) {
            Bad::Corrupt
        } else if zlib_failed {
            Bad::Tampered
        } else {
            Bad::Truncated
        })
    }

    fn read_inner(&mut self, out: &mut [u8]) -> Result<usize, ReadError> {
        if let Some(bad) = self.failed {
            return Err(bad.error());
        }
        if self.done || out.is_empty() {
            return Ok(0);
        }
        loop {
            let before_in = self.zlib.total_in();
            let before_out = self.zlib.total_out();
            let input = self.plain.get(self.start..self.end).unwrap_or_default();
            let status = self.zlib.decompress(input, out, FlushDecompress::None);
            let consumed = usize::try_from(self.zlib.total_in() - before_in).unwrap_or(usize::MAX);
            let produced =
                usize::try_from(self.zlib.total_out() - before_out).unwrap_or(usize::MAX);
            let consumed = consumed.min(self.end - self.start);
            self.absorb(consumed)?;
            let outcome = match status {
                Ok(Status::StreamEnd) => Some(self.end_of_stream()),
                Ok(_) if produced == 0 && consumed == 0 && self.start == self.end && self.eof => {
                    Some(Err(self.diagnose(false)?))
                }
                Ok(_) => None,
                Err(_) => Some(Err(self.diagnose(true)?)),
            };
            match outcome {
                Some(Ok(())) => {
                    self.done = true;
                    return Ok(produced);
                }
                Some(Err(bad)) => {
                    self.failed = Some(bad);
                    return Err(bad.error());
                }
                None if produced > 0 => return Ok(produced),
                None => {
                    if self.start == self.end || consumed == 0 {
                        if self.eof {
                            let bad = self.diagnose(false)?;
                            self.failed = Some(bad);
                            return Err(bad.error());
                        }
                        self.fill()?;
                    }
                }
            }
        }
    }
}

impl<R: Read> Read for BackupReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf).map_err(|e| match e {
            ReadError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        })
    }
}
