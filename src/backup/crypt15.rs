//! The crypt15 profile: backups in the layout WhatsApp on Android writes
//! (`msgstore.db.crypt15`), so its tools and confide can open each other's files.
//!
//! ```text
//! file = len (1 byte) ‖ [0x01 feature-table flag] ‖ BackupPrefix (len bytes, protobuf)
//!        ‖ AES-256-GCM(file key, IV from the prefix, no AAD, zlib(payload)) ‖ tag (16)
//!        ‖ MD5 of everything before it (16)
//! ```
//!
//! The layout comes from reverse engineering (wa-crypt-tools), not from a specification.
//! Unlike confide's own format ([`super::BackupWriter`]) the header is not
//! authenticated and carries no key check, so a wrong key shows only as a failed tag at
//! the end; prefer the own format unless a file must be read by WhatsApp's tools.
//! The MD5 only catches accidental damage; the GCM tag is what authenticates.
//! Multi-file backups (stickers, wallpapers), which have no MD5, are not supported.

use std::io::{self, Read, Write};

use flate2::write::ZlibEncoder;
use flate2::{Compression, Decompress, FlushDecompress, Status};
use md5::{Digest, Md5};
use prost::Message;
use rand_core::{CryptoRng, RngCore};

use super::BackupKey;
use super::gcm::{GcmDecryptor, GcmEncryptor, IV_LEN, TAG_LEN};
use crate::proto::crypt15 as pb;

const MD5_LEN: usize = 16;
/// The byte after the length that says the prefix carries msgstore's feature table.
const FEATURE_FLAG: u8 = 0x01;
/// Size of every buffer the writer and reader hold.
const CHUNK: usize = 64 * 1024;
/// Bytes at the end of a file that are not ciphertext: the tag and the MD5.
const TRAILER_LEN: usize = TAG_LEN + MD5_LEN;

/// Why a crypt15 file could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Crypt15Error {
    /// Reading or writing the underlying stream failed.
    #[error("backup I/O failed")]
    Io(#[source] io::Error),
    /// The file ended before its header, tag or checksum.
    #[error("the crypt15 file is cut short")]
    Truncated,
    /// The header is not a crypt15 `BackupPrefix`.
    #[error("the crypt15 header does not parse")]
    BadHeader,
    /// The header is crypt14's (a key WhatsApp's servers hold), not crypt15's.
    #[error("this is a crypt14 backup, not crypt15")]
    Crypt14,
    /// The IV in the header is not 16 bytes.
    #[error("the crypt15 IV is {len} bytes, not 16")]
    BadIvLength {
        /// Length found.
        len: usize,
    },
    /// The header would not fit its one length byte (app version or suffix too long).
    #[error("the crypt15 header is {len} bytes, more than 255")]
    HeaderTooLong {
        /// Encoded length.
        len: usize,
    },
    /// The GCM tag does not match: a wrong key, or the file was changed.
    #[error("wrong key, or the crypt15 file was altered")]
    Tampered,
    /// The tag is right but the MD5 at the end is not.
    #[error("the crypt15 checksum does not match")]
    Checksum,
    /// Authentic, but the decrypted payload is not a complete zlib stream.
    #[error("the crypt15 payload is not valid zlib")]
    Corrupt,
    /// Authentic, but bytes follow the end of the zlib stream.
    #[error("data after the end of the crypt15 payload")]
    TrailingData,
    /// More than GCM allows under one key and IV (about 64 GiB).
    #[error("the crypt15 payload is too large")]
    TooLong,
}

impl From<io::Error> for Crypt15Error {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            return Self::Truncated;
        }
        Self::Io(e)
    }
}

/// What a crypt15 header says about the backup.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Crypt15Info {
    /// The app version that wrote the backup, e.g. `"2.23.18.12"`.
    pub app_version: String,
    /// The last two digits of the owner's phone number.
    pub jid_suffix: String,
    /// msgstore's backup (schema) version, when present.
    pub backup_version: Option<i32>,
}

impl Crypt15Info {
    /// Info for a new file; `backup_version` is left out.
    pub fn new(app_version: impl Into<String>, jid_suffix: impl Into<String>) -> Self {
        Self {
            app_version: app_version.into(),
            jid_suffix: jid_suffix.into(),
            backup_version: None,
        }
    }
}

/// The ciphertext side of the writer: encrypts what zlib emits, hashes it, writes it.
struct Sink<W: Write> {
    out: W,
    gcm: GcmEncryptor,
    md5: Md5,
    buf: Vec<u8>,
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let data = data.get(..data.len().min(CHUNK)).unwrap_or_default();
        self.buf.clear();
        self.buf.extend_from_slice(data);
        self.gcm
            .update(&mut self.buf)
            .map_err(|_| io::Error::other(Crypt15Error::TooLong))?;
        self.md5.update(&self.buf);
        self.out.write_all(&self.buf)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Writes a crypt15 file as a stream: the header at once, the payload through
/// [`Write`], the tag and checksum at [`Crypt15Writer::finish`].
///
/// The payload is compressed at zlib level 1, as WhatsApp writes its backups. No
/// feature-table flag is written (confide writes no msgstore feature booleans).
pub struct Crypt15Writer<W: Write> {
    zlib: ZlibEncoder<Sink<W>>,
}

impl<W: Write> Crypt15Writer<W> {
    /// Writes the header, with a fresh random IV, to `out`.
    pub fn new(
        mut out: W,
        key: &BackupKey,
        info: &Crypt15Info,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Self, Crypt15Error> {
        let mut iv = [0u8; IV_LEN];
        rng.fill_bytes(&mut iv);
        let prefix = pb::BackupPrefix {
            key_type: Some(pb::KeyType::HsmControlled as i32),
            cipher_info: Some(pb::backup_prefix::CipherInfo::C15Iv(pb::C15Iv {
                iv: iv.to_vec(),
            })),
            info: Some(pb::BackupInfo {
                app_version: info.app_version.clone(),
                jid_suffix: info.jid_suffix.clone(),
                backup_version: info.backup_version,
            }),
        };
        let encoded = prefix.encode_to_vec();
        let len = u8::try_from(encoded.len())
            .map_err(|_| Crypt15Error::HeaderTooLong { len: encoded.len() })?;
        let mut md5 = Md5::new();
        md5.update([len]);
        md5.update(&encoded);
        out.write_all(&[len])?;
        out.write_all(&encoded)?;
        let sink = Sink {
            out,
            gcm: GcmEncryptor::new(&key.file_key(), &iv, &[]),
            md5,
            buf: Vec::with_capacity(CHUNK),
        };
        Ok(Self {
            zlib: ZlibEncoder::new(sink, Compression::fast()),
        })
    }

    /// Ends the zlib stream, writes the tag and the MD5, and hands back the output.
    pub fn finish(self) -> Result<W, Crypt15Error> {
        let sink = self.zlib.finish().map_err(unwrap_io)?;
        let Sink {
            mut out,
            gcm,
            mut md5,
            ..
        } = sink;
        let tag = gcm.finish();
        md5.update(tag);
        out.write_all(&tag)?;
        out.write_all(&md5.finalize())?;
        out.flush()?;
        Ok(out)
    }
}

impl<W: Write> Write for Crypt15Writer<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.zlib.write(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.zlib.flush()
    }
}

/// A [`Crypt15Error`] carried through `io::Error` comes back out as itself.
fn unwrap_io(e: io::Error) -> Crypt15Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Crypt15Error>()) {
        if let Some(inner) = e.into_inner() {
            if let Ok(err) = inner.downcast::<Crypt15Error>() {
                return *err;
            }
        }
        return Crypt15Error::TooLong;
    }
    Crypt15Error::from(e)
}

/// Reads a crypt15 file: the header at [`Crypt15Reader::open`], the payload with
/// [`Crypt15Reader::decrypt_to`].
pub struct Crypt15Reader<R: Read> {
    input: R,
    info: Crypt15Info,
    feature_table: bool,
    gcm: GcmDecryptor,
    md5: Md5,
}

impl<R: Read> Crypt15Reader<R> {
    /// Reads and parses the header. The key is only checked at the end (crypt15 has no
    /// key check), so a wrong key is [`Crypt15Error::Tampered`] from `decrypt_to`.
    pub fn open(mut input: R, key: &BackupKey) -> Result<Self, Crypt15Error> {
        let mut first = [0u8; 2];
        input.read_exact(&mut first)?;
        let [len, second] = first;
        let mut md5 = Md5::new();
        md5.update([len]);
        let mut encoded = vec![0u8; usize::from(len)];
        let feature_table = second == FEATURE_FLAG;
        if feature_table {
            md5.update([second]);
            input.read_exact(&mut encoded)?;
        } else {
            let (head, rest) = encoded.split_first_mut().ok_or(Crypt15Error::BadHeader)?;
            *head = second;
            input.read_exact(rest)?;
        }
        md5.update(&encoded);
        let prefix =
            pb::BackupPrefix::decode(encoded.as_slice()).map_err(|_| Crypt15Error::BadHeader)?;
        let iv: [u8; IV_LEN] = match prefix.cipher_info {
            Some(pb::backup_prefix::CipherInfo::C15Iv(c15)) => c15
                .iv
                .as_slice()
                .try_into()
                .map_err(|_| Crypt15Error::BadIvLength { len: c15.iv.len() })?,
            Some(pb::backup_prefix::CipherInfo::C14Cipher(_)) => return Err(Crypt15Error::Crypt14),
            None => return Err(Crypt15Error::BadHeader),
        };
        let info = prefix.info.unwrap_or_default();
        Ok(Self {
            input,
            info: Crypt15Info {
                app_version: info.app_version,
                jid_suffix: info.jid_suffix,
                backup_version: info.backup_version,
            },
            feature_table,
            gcm: GcmDecryptor::new(&key.file_key(), &iv, &[]),
            md5,
        })
    }

    /// The header's app version, phone suffix and backup version (unauthenticated).
    pub fn info(&self) -> &Crypt15Info {
        &self.info
    }

    /// Whether the header had msgstore's feature-table flag.
    pub fn has_feature_table(&self) -> bool {
        self.feature_table
    }

    /// Decrypts and decompresses the payload into `out` as it streams, then checks the
    /// tag and the checksum; returns the payload's length.
    ///
    /// What reaches `out` is unauthenticated until this returns `Ok`: on any error the
    /// caller must discard it (write to a temporary file, rename on success).
    pub fn decrypt_to(mut self, out: &mut impl Write) -> Result<u64, Crypt15Error> {
        let mut inflater = Inflater::new();
        let mut pending: Vec<u8> = Vec::with_capacity(CHUNK + TRAILER_LEN);
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match self.input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Crypt15Error::Io(e)),
            };
            pending.extend_from_slice(buf.get(..n).unwrap_or_default());
            if pending.len() > TRAILER_LEN {
                let ready = pending.len() - TRAILER_LEN;
                if let Some(chunk) = pending.get_mut(..ready) {
                    self.md5.update(&*chunk);
                    self.gcm.update(chunk).map_err(|_| Crypt15Error::TooLong)?;
                    inflater.feed(chunk, out)?;
                }
                pending.drain(..ready);
            }
        }
        let trailer: &[u8; TRAILER_LEN] = pending
            .as_slice()
            .try_into()
            .map_err(|_| Crypt15Error::Truncated)?;
        let (tag, checksum) = trailer.split_at(TAG_LEN);
        let tag: &[u8; TAG_LEN] = tag.try_into().map_err(|_| Crypt15Error::Truncated)?;
        inflater.drain(out)?;
        if !self.gcm.finish(tag) {
            return Err(Crypt15Error::Tampered);
        }
        self.md5.update(tag);
        if self.md5.finalize().as_slice() != checksum {
            return Err(Crypt15Error::Checksum);
        }
        inflater.result()
    }
}

/// zlib decompression that records, rather than stops at, a bad or overlong stream,
/// so the tag is still checked first (a tampered file is `Tampered`, not `Corrupt`).
struct Inflater {
    z: Decompress,
    buf: Vec<u8>,
    ended: bool,
    bad: bool,
    trailing: bool,
    total: u64,
}

impl Inflater {
    fn new() -> Self {
        Self {
            z: Decompress::new(true),
            buf: vec![0u8; CHUNK],
            ended: false,
            bad: false,
            trailing: false,
            total: 0,
        }
    }

    /// One decompression step; `Ok(true)` when it made progress.
    fn step(&mut self, data: &[u8], out: &mut impl Write) -> Result<(usize, bool), Crypt15Error> {
        let (in_before, out_before) = (self.z.total_in(), self.z.total_out());
        let status = self
            .z
            .decompress(data, &mut self.buf, FlushDecompress::None);
        let consumed = usize::try_from(self.z.total_in() - in_before).unwrap_or(usize::MAX);
        let produced = usize::try_from(self.z.total_out() - out_before).unwrap_or(usize::MAX);
        if let Some(bytes) = self.buf.get(..produced) {
            out.write_all(bytes).map_err(Crypt15Error::Io)?;
        }
        self.total += produced as u64;
        match status {
            Ok(Status::StreamEnd) => self.ended = true,
            Ok(_) => {}
            Err(_) => self.bad = true,
        }
        Ok((consumed, consumed > 0 || produced > 0))
    }

    fn feed(&mut self, mut data: &[u8], out: &mut impl Write) -> Result<(), Crypt15Error> {
        while !data.is_empty() && !self.bad {
            if self.ended {
                self.trailing = true;
                return Ok(());
            }
            let (consumed, progress) = self.step(data, out)?;
            data = data.get(consumed..).unwrap_or_default();
            if !progress {
                break;
            }
        }
        Ok(())
    }

    /// Takes what the decompressor still holds after the last input.
    fn drain(&mut self, out: &mut impl Write) -> Result<(), Crypt15Error> {
        while !self.ended && !self.bad {
            let (_, progress) = self.step(&[], out)?;
            if !progress {
                break;
            }
        }
        Ok(())
    }

    fn result(&self) -> Result<u64, Crypt15Error> {
        if self.bad || !self.ended {
            Err(Crypt15Error::Corrupt)
        } else if self.trailing {
            Err(Crypt15Error::TrailingData)
        } else {
            Ok(self.total)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_chacha::rand_core::SeedableRng;

    fn write(key: &BackupKey, payload: &[u8]) -> Vec<u8> {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let mut w = Crypt15Writer::new(
            Vec::new(),
            key,
            &Crypt15Info::new("2.23.18.12", "42"),
            &mut rng,
        )
        .unwrap();
        for chunk in payload.chunks(7919) {
            w.write_all(chunk).unwrap();
        }
        w.finish().unwrap()
    }

    fn read(key: &BackupKey, file: &[u8]) -> Result<Vec<u8>, Crypt15Error> {
        let r = Crypt15Reader::open(file, key)?;
        let mut out = Vec::new();
        r.decrypt_to(&mut out)?;
        Ok(out)
    }

    #[test]
    fn round_trip_and_failures() {
        let key = BackupKey::from_bytes([3; 32]);
        for payload in [
            Vec::new(),
            b"hello".to_vec(),
            (0..300_000u32).map(|i| (i % 251) as u8).collect(),
        ] {
            let file = write(&key, &payload);
            assert_eq!(read(&key, &file).unwrap(), payload);
            let r = Crypt15Reader::open(file.as_slice(), &key).unwrap();
            assert_eq!(r.info().jid_suffix, "42");
            assert!(!r.has_feature_table());
        }
        let file = write(&key, b"some payload bytes");
        let wrong = BackupKey::from_bytes([4; 32]);
        assert!(matches!(read(&wrong, &file), Err(Crypt15Error::Tampered)));
        let header_len = usize::from(file[0]) + 1;
        for i in header_len..file.len() - MD5_LEN {
            let mut bad = file.clone();
            bad[i] ^= 1;
            assert!(
                matches!(read(&key, &bad), Err(Crypt15Error::Tampered)),
                "{i}"
            );
        }
        let mut bad = file.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(matches!(read(&key, &bad), Err(Crypt15Error::Checksum)));
        for cut in 0..file.len() {
            assert!(read(&key, &file[..cut]).is_err(), "{cut}");
        }
        assert!(matches!(
            read(&key, &file[..1]),
            Err(Crypt15Error::Truncated)
        ));
    }

    fn header_only(prefix: &pb::BackupPrefix) -> Vec<u8> {
        let encoded = prefix.encode_to_vec();
        let mut file = vec![u8::try_from(encoded.len()).unwrap()];
        file.extend_from_slice(&encoded);
        file.extend_from_slice(&[0u8; 64]);
        file
    }

    #[test]
    fn header_errors_are_typed() {
        let key = BackupKey::from_bytes([3; 32]);
        let open = |file: &[u8]| Crypt15Reader::open(file, &key).map(|_| ());
        let c14 = pb::BackupPrefix {
            key_type: Some(0),
            cipher_info: Some(pb::backup_prefix::CipherInfo::C14Cipher(pb::C14Cipher {
                iv: vec![0; 16],
            })),
            info: None,
        };
        assert!(matches!(
            open(&header_only(&c14)),
            Err(Crypt15Error::Crypt14)
        ));
        let short_iv = pb::BackupPrefix {
            key_type: Some(1),
            cipher_info: Some(pb::backup_prefix::CipherInfo::C15Iv(pb::C15Iv {
                iv: vec![0; 12],
            })),
            info: None,
        };
        assert!(matches!(
            open(&header_only(&short_iv)),
            Err(Crypt15Error::BadIvLength { len: 12 })
        ));
        let no_iv = pb::BackupPrefix::default();
        assert!(matches!(
            open(&header_only(&no_iv)),
            Err(Crypt15Error::BadHeader)
        ));
        assert!(matches!(
            open(&[3, 0xff, 0xff, 0xff]),
            Err(Crypt15Error::BadHeader)
        ));
        assert!(matches!(open(&[0, 0]), Err(Crypt15Error::BadHeader)));
        assert!(matches!(open(&[200, 8, 1]), Err(Crypt15Error::Truncated)));

        let long = Crypt15Info::new("9".repeat(300), "42");
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        assert!(matches!(
            Crypt15Writer::new(Vec::new(), &key, &long, &mut rng),
            Err(Crypt15Error::HeaderTooLong { .. })
        ));
    }
}
