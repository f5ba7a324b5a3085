//! Encryption and decryption between `Read`/`Write` and files, in constant memory,
//! with the hashes optionally moved to a helper thread.
//!
//! The scheme needs four passes over the data: AES-CBC, the HMAC, and two SHA-256s
//! (plaintext and upload). Only the AES-CBC encryption chain has to stay in order on one
//! thread; the other passes can follow a chunk behind. With
//! [`StreamOptions::with_helper_thread`] on (the default), once the input is longer than
//! one chunk a scoped helper thread takes the hashes while the caller's thread runs the
//! cipher on the next chunk:
//! - encrypting, the caller's thread runs AES-CBC and the helper the HMAC and both
//!   SHA-256s;
//! - decrypting, the caller's thread runs the HMAC and AES-CBC decryption (which is
//!   several times faster than encryption) and the helper the SHA-256s that
//!   [`Expected`] asks to check; when it asks for none, no helper starts.
//!
//! The thread lives only for the call; inputs of one chunk or less never start it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::{Scope, ScopedJoinHandle};

use super::decrypt::split_trailer;
use super::encrypt::EncryptedMedia;
use super::engine::{self, BLOCK, CbcEncryptor, DecryptEngine, MAC_LEN, TRAILER};
use super::error::{MediaDecryptError, MediaEncryptError};
use super::hashes::Hashes;
use super::{DecryptedMedia, Expected, MediaKey, MediaKind};

/// Default chunk: large enough that per-chunk costs vanish, small enough to stay in L2.
pub(super) const DEFAULT_CHUNK_LEN: usize = 256 * 1024;
const MIN_CHUNK_LEN: usize = 4 * 1024;
const MAX_CHUNK_LEN: usize = 16 * 1024 * 1024;
/// Chunk buffers in flight between the two threads.
const POOL: usize = 3;
/// Room beyond a chunk for the bytes carried between chunks (at most 41).
const SLACK: usize = 64;

/// How the streaming functions run. Memory use is about `2 × 3 × chunk_len` with the
/// helper thread and `2 × chunk_len` without, whatever the file size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamOptions {
    chunk_len: usize,
    helper_thread: bool,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            chunk_len: DEFAULT_CHUNK_LEN,
            helper_thread: true,
        }
    }
}

impl StreamOptions {
    /// 256 KiB chunks and a helper thread for the hashes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything on the caller's thread.
    pub fn single_threaded() -> Self {
        Self::default().with_helper_thread(false)
    }

    /// Whether a scoped helper thread runs the hashes once the input is longer than one
    /// chunk. If the thread cannot be started, the call falls back to its own thread.
    pub const fn with_helper_thread(mut self, on: bool) -> Self {
        self.helper_thread = on;
        self
    }

    /// Bytes read per chunk, clamped to 4 KiB..=16 MiB and rounded down to whole blocks.
    pub fn with_chunk_len(mut self, len: usize) -> Self {
        self.chunk_len = len.clamp(MIN_CHUNK_LEN, MAX_CHUNK_LEN) / BLOCK * BLOCK;
        self
    }

    /// Bytes read per chunk.
    pub const fn chunk_len(&self) -> usize {
        self.chunk_len
    }

    /// Whether a helper thread hashes.
    pub const fn helper_thread(&self) -> bool {
        self.helper_thread
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
pub(super) fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// One chunk's plaintext and ciphertext, passed to the hasher and back.
struct Chunk {
    plain: Vec<u8>,
    plain_len: usize,
    cipher: Vec<u8>,
    /// Ciphertext bytes, then `trailer_len` bytes of MAC (last chunk of a decryption).
    cipher_len: usize,
    trailer_len: usize,
}

impl Chunk {
    fn new(chunk_len: usize) -> Self {
        Self {
            plain: vec![0u8; chunk_len + SLACK],
            plain_len: 0,
            cipher: vec![0u8; chunk_len + SLACK],
            cipher_len: 0,
            trailer_len: 0,
        }
    }

    fn hash_into(&self, hashes: &mut Hashes) {
        hashes.update_plain(&self.plain[..self.plain_len]);
        hashes.update_cipher(&self.cipher[..self.cipher_len]);
        hashes.update_trailer(&self.cipher[self.cipher_len..self.cipher_len + self.trailer_len]);
    }
}

/// Where finished chunks go to be hashed: inline, or to the helper thread.
enum Hasher<'scope> {
    Inline {
        hashes: Box<Hashes>,
        spare: Option<Chunk>,
    },
    Helper {
        jobs: SyncSender<Chunk>,
        free: Receiver<Chunk>,
        worker: ScopedJoinHandle<'scope, Box<Hashes>>,
    },
}

impl<'scope> Hasher<'scope> {
    fn new(hashes: Hashes, chunk_len: usize) -> Self {
        Hasher::Inline {
            hashes: Box::new(hashes),
            spare: Some(Chunk::new(chunk_len)),
        }
    }

    /// Moves the hashing, with what it has hashed so far, to a helper thread with a pool
    /// of chunk buffers. Stays inline if the thread cannot be started.
    fn go_parallel<'env>(self, scope: &'scope Scope<'scope, 'env>, chunk_len: usize) -> Self {
        let Hasher::Inline { hashes, spare } = self else {
            return self;
        };
        let (start_tx, start_rx) = sync_channel::<Box<Hashes>>(1);
        let (jobs, job_rx) = sync_channel::<Chunk>(POOL);
        let (free_tx, free) = sync_channel::<Chunk>(POOL);
        let refill = free_tx.clone();
        let spawned = std::thread::Builder::new()
            .name("confide-media-hash".into())
            .spawn_scoped(scope, move || {
                let Ok(mut hashes) = start_rx.recv() else {
                    return Box::new(Hashes::new(false, false));
                };
                // Drain every job, even once the caller stops taking buffers back (it
                // drops `free` when it finishes): every submitted chunk counts.
                for chunk in job_rx {
                    chunk.hash_into(&mut hashes);
                    let _ = free_tx.send(chunk);
                }
                hashes
            });
        let Ok(worker) = spawned else {
            return Hasher::Inline { hashes, spare };
        };
        // The worker waits for exactly this one message.
        let _ = start_tx.send(hashes);
        // POOL buffers circulate in all (one may be in the caller's hands), so neither
        // channel can ever be full.
        let mut circulating = usize::from(spare.is_none());
        if let Some(chunk) = spare {
            let _ = refill.try_send(chunk);
            circulating += 1;
        }
        while circulating < POOL {
            let _ = refill.try_send(Chunk::new(chunk_len));
            circulating += 1;
        }
        Hasher::Helper { jobs, free, worker }
    }

    /// A free chunk buffer; `None` only if the helper thread died.
    fn take(&mut self) -> Option<Chunk> {
        match self {
            Hasher::Inline { spare, .. } => spare.take(),
            Hasher::Helper { free, .. } => free.recv().ok(),
        }
    }

    /// Hands a filled chunk over; `false` only if the helper thread died.
    fn submit(&mut self, chunk: Chunk) -> bool {
        match self {
            Hasher::Inline { hashes, spare } => {
                chunk.hash_into(hashes);
                *spare = Some(chunk);
                true
            }
            Hasher::Helper { jobs, .. } => jobs.send(chunk).is_ok(),
        }
    }

    /// Waits for every submitted chunk to be hashed. `None` if the helper thread
    /// stopped early; a panic in it is re-raised here.
    fn finish(self) -> Option<Box<Hashes>> {
        match self {
            Hasher::Inline { hashes, .. } => Some(hashes),
            Hasher::Helper { jobs, free, worker } => {
                drop(jobs);
                drop(free);
                match worker.join() {
                    Ok(hashes) => Some(hashes),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        }
    }
}

/// Encrypts everything `reader` yields into `writer` as the upload (ciphertext ‖ MAC).
/// Memory use does not depend on the length; see [`StreamOptions`].
pub fn encrypt_stream<R: Read, W: Write>(
    key: &MediaKey,
    kind: MediaKind,
    mut reader: R,
    mut writer: W,
    options: StreamOptions,
) -> Result<EncryptedMedia, MediaEncryptError> {
    let keys = key.expand(kind);
    let chunk_len = options.chunk_len;
    std::thread::scope(|scope| {
        let hashes = Hashes::new(true, true).with_mac(engine::mac_context(&keys));
        let mut hasher = Hasher::new(hashes, chunk_len);
        let mut cipher = CbcEncryptor::new(&keys);
        let mut length = 0u64;
        loop {
            let mut c = hasher.take().ok_or(MediaEncryptError::HelperStopped)?;
            let n = read_full(&mut reader, &mut c.plain[..chunk_len])
                .map_err(|source| MediaEncryptError::Read { source })?;
            length += n as u64;
            let whole = n / BLOCK * BLOCK;
            cipher.blocks(&c.plain[..whole], &mut c.cipher[..whole]);
            c.plain_len = n;
            c.cipher_len = whole;
            if n == chunk_len {
                writer
                    .write_all(&c.cipher[..whole])
                    .map_err(|source| MediaEncryptError::Write { source })?;
                if options.helper_thread {
                    hasher = hasher.go_parallel(scope, chunk_len);
                }
                if !hasher.submit(c) {
                    return Err(MediaEncryptError::HelperStopped);
                }
                continue;
            }
            // The last chunk: pad, then the MAC once every chunk has been through it.
            let block = cipher.last(&c.plain[whole..n]);
            c.cipher[whole..whole + BLOCK].copy_from_slice(&block);
            c.cipher_len += BLOCK;
            writer
                .write_all(&c.cipher[..c.cipher_len])
                .map_err(|source| MediaEncryptError::Write { source })?;
            let mut hashes = hasher.finish().ok_or(MediaEncryptError::HelperStopped)?;
            c.hash_into(&mut hashes);
            let mac = hashes.take_mac().unwrap_or_default();
            hashes.update_trailer(&mac);
            let write = |w: &mut W| {
                w.write_all(&mac)?;
                w.flush()
            };
            write(&mut writer).map_err(|source| MediaEncryptError::Write { source })?;
            let (file_enc_sha256, file_sha256) = hashes.finish();
            return Ok(EncryptedMedia {
                file_sha256: file_sha256.unwrap_or_default(),
                file_enc_sha256: file_enc_sha256.unwrap_or_default(),
                file_length: length,
                mac,
            });
        }
    })
}

/// Decrypts the upload `reader` yields into `writer`, checking the MAC and `expected`.
///
/// Plaintext of all but the last chunk reaches `writer` before the MAC at the end of the
/// upload has been read, so it is **unverified** until this returns `Ok`; on `Err` the
/// caller must discard what was written. The last chunk (the whole file, for files
/// shorter than [`StreamOptions::chunk_len`]) is written only after every check passed.
/// [`decrypt_file`] does the discarding for you.
pub fn decrypt_stream<R: Read, W: Write>(
    key: &MediaKey,
    kind: MediaKind,
    mut reader: R,
    mut writer: W,
    expected: Expected,
    options: StreamOptions,
) -> Result<DecryptedMedia, MediaDecryptError> {
    let keys = key.expand(kind);
    let chunk_len = options.chunk_len;
    std::thread::scope(|scope| {
        let mut hasher = Hasher::new(Hashes::for_expected(&expected), chunk_len);
        // With no SHA-256 to run, a helper would only pass buffers back and forth.
        let helper = options.helper_thread
            && (expected.file_enc_sha256.is_some() || expected.file_sha256.is_some());
        let mut engine = DecryptEngine::new(&keys);
        let mut carry = [0u8; SLACK];
        let mut carry_len = 0usize;
        let mut total = 0u64;
        let mut length = 0u64;
        loop {
            let mut c = hasher.take().ok_or(MediaDecryptError::HelperStopped)?;
            c.cipher[..carry_len].copy_from_slice(&carry[..carry_len]);
            let n = read_full(&mut reader, &mut c.cipher[carry_len..carry_len + chunk_len])
                .map_err(|source| MediaDecryptError::Read { source })?;
            total += n as u64;
            let avail = carry_len + n;
            if n == chunk_len {
                // More may follow: keep back the last block and what may be the MAC.
                let process = (avail - TRAILER) / BLOCK * BLOCK;
                engine.blocks(&c.cipher[..process], &mut c.plain[..process]);
                writer
                    .write_all(&c.plain[..process])
                    .map_err(|source| MediaDecryptError::Write { source })?;
                carry_len = avail - process;
                carry[..carry_len].copy_from_slice(&c.cipher[process..avail]);
                c.cipher_len = process;
                c.plain_len = process;
                length += process as u64;
                if helper {
                    hasher = hasher.go_parallel(scope, chunk_len);
                }
                if !hasher.submit(c) {
                    return Err(MediaDecryptError::HelperStopped);
                }
                continue;
            }
            let (block, tag) = split_trailer(&c.cipher[..avail], total)?;
            let body = avail - TRAILER;
            engine.blocks(&c.cipher[..body], &mut c.plain[..body]);
            let (last, m) = engine.last(&block, tag)?;
            c.plain[body..body + m].copy_from_slice(&last[..m]);
            c.plain_len = body + m;
            c.cipher_len = avail - MAC_LEN;
            c.trailer_len = MAC_LEN;
            let mut hashes = hasher.finish().ok_or(MediaDecryptError::HelperStopped)?;
            c.hash_into(&mut hashes);
            let info = hashes.check(length + c.plain_len as u64, &expected)?;
            let write = |w: &mut W| {
                w.write_all(&c.plain[..c.plain_len])?;
                w.flush()
            };
            write(&mut writer).map_err(|source| MediaDecryptError::Write { source })?;
            return Ok(info);
        }
    })
}

/// Encrypts the file at `in_path` to `out_path`. The output is written to a temporary
/// file beside `out_path` (owner-only on unix, as [`decrypt_file`]'s) and renamed over it
/// only on success.
pub fn encrypt_file(
    key: &MediaKey,
    kind: MediaKind,
    in_path: impl AsRef<Path>,
    out_path: impl AsRef<Path>,
    options: StreamOptions,
) -> Result<EncryptedMedia, MediaEncryptError> {
    let input = File::open(in_path).map_err(|source| MediaEncryptError::Read { source })?;
    with_temp_output(
        out_path.as_ref(),
        |out| encrypt_stream(key, kind, input, out, options),
        |source| MediaEncryptError::Output { source },
    )
}

/// Decrypts the upload at `in_path` to `out_path`, checking the MAC and `expected`.
///
/// The plaintext goes to a temporary file beside `out_path` (created fresh, never
/// shared, mode `0o600` on unix whatever the umask, so other local users cannot read
/// it), which is synced and renamed to `out_path` only after every check passed. On
/// any error the temporary file is removed and `out_path` is left as it was: no
/// unverified plaintext is ever published under the caller's name.
///
/// A process that dies mid-call cannot remove its temporary file
/// (`.<name>.<pid>-<n>.partial`, hidden, never `out_path`), which holds unverified
/// plaintext. The next call for the same `out_path` removes every such file that
/// another process left (this process's own belong to calls still running), before it
/// starts and whether or not it succeeds. A call by one process can therefore make a
/// concurrent call by another process to the same `out_path` fail, never publish.
pub fn decrypt_file(
    key: &MediaKey,
    kind: MediaKind,
    in_path: impl AsRef<Path>,
    out_path: impl AsRef<Path>,
    expected: Expected,
    options: StreamOptions,
) -> Result<DecryptedMedia, MediaDecryptError> {
    let input = File::open(in_path).map_err(|source| MediaDecryptError::Read { source })?;
    with_temp_output(
        out_path.as_ref(),
        |out| decrypt_stream(key, kind, input, out, expected, options),
        |source| MediaDecryptError::Output { source },
    )
}

/// Runs `run` against a fresh temporary file beside `out`, then syncs and renames it to
/// `out`; removes it on any failure.
fn with_temp_output<T, E>(
    out: &Path,
    run: impl FnOnce(&mut File) -> Result<T, E>,
    output_err: impl Fn(io::Error) -> E,
) -> Result<T, E> {
    let (tmp, mut file) = create_temp(out).map_err(&output_err)?;
    let result = run(&mut file).and_then(|v| file.sync_all().map(|()| v).map_err(&output_err));
    drop(file);
    let result = result.and_then(|v| std::fs::rename(&tmp, out).map(|()| v).map_err(&output_err));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn create_temp(out: &Path) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = out.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "output path has no file name")
    })?;
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    remove_stale_temps(&dir, name);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    // Owner-only from the first byte: a chmod after creation would leave a window.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut last_err = None;
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}-{n}.partial", std::process::id()));
        let tmp = dir.join(tmp_name);
        match options.open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)))
}

/// Removes the temporary files of output `name` in `dir` that another process left
/// (`.<name>.<pid>-<n>.partial` with a pid not ours): a crash mid-decrypt leaves
/// unverified plaintext there. Best effort: a file that cannot be removed stays.
fn remove_stale_temps(dir: &Path, name: &std::ffi::OsStr) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let name = name.as_encoded_bytes();
    let own_pid = std::process::id();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(middle) = file_name
            .as_encoded_bytes()
            .strip_prefix(b".")
            .and_then(|rest| rest.strip_prefix(name))
            .and_then(|rest| rest.strip_prefix(b"."))
            .and_then(|rest| rest.strip_suffix(b".partial"))
        else {
            continue;
        };
        if let Some(pid) = temp_pid(middle) {
            if pid != own_pid {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// The pid in a temporary name's `<pid>-<n>`, if `middle` is exactly that.
fn temp_pid(middle: &[u8]) -> Option<u32> {
    let digits = |b: &[u8]| !b.is_empty() && b.iter().all(u8::is_ascii_digit);
    let dash = middle.iter().position(|&b| b == b'-')?;
    let (pid, n) = (&middle[..dash], &middle[dash + 1..]);
    if !digits(pid) || !digits(n) {
        return None;
    }
    std::str::from_utf8(pid).ok()?.parse().ok()
}
