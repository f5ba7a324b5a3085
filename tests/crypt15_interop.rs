//! crypt15 interop with a real peer: wa-crypt-tools 0.1.0 from PyPI (`wadecrypt`,
//! `waencrypt`), installed into a venv under target/ and run as a separate process only
//! (it is GPL-3.0; nothing of it is linked or copied).
//!
//! confide writes a crypt15 file and `wadecrypt` must give back the exact payload;
//! `waencrypt` writes one and confide must. Needs `python3` with `venv` and network
//! access to PyPI on the first run; the install is stamped with the pinned
//! requirements (tests/crypt15/requirements.txt), so later runs reuse it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use confide::backup::{BackupKey, Crypt15Error, Crypt15Info, Crypt15Reader, Crypt15Writer};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

const HELP: &str = "tests/crypt15_interop.rs needs `python3` (3.8+) with the venv module \
(Debian: `apt-get install python3-venv`) and access to PyPI on its first run, to install \
the pinned tests/crypt15/requirements.txt into target/tmp/crypt15-venv.";

fn requirements() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/crypt15/requirements.txt")
}

fn venv_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("crypt15-venv")
}

/// A cross-process lock (a directory created atomically): test runners may run each
/// test in its own process.
struct DirLock(PathBuf);

impl DirLock {
    fn acquire(path: PathBuf) -> DirLock {
        let start = Instant::now();
        loop {
            match fs::create_dir(&path) {
                Ok(()) => return DirLock(path),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > Duration::from_secs(600));
                    if stale {
                        let _ = fs::remove_dir(&path);
                    }
                    assert!(
                        start.elapsed() < Duration::from_secs(900),
                        "timed out waiting for {}",
                        path.display()
                    );
                    thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("cannot create lock {}: {e}", path.display()),
            }
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.0);
    }
}

fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}. {HELP}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}\n{HELP}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The venv's bin directory, installing wa-crypt-tools first if the stamp does not
/// match the pinned requirements.
fn peer_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let venv = venv_dir();
        let bin = venv.join("bin");
        let stamp = venv.join(".confide-requirements-stamp");
        let wanted = fs::read_to_string(requirements()).unwrap();
        let current = || fs::read_to_string(&stamp).is_ok_and(|s| s == wanted);
        if current() {
            return bin;
        }
        fs::create_dir_all(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let _lock = DirLock::acquire(venv.with_extension("lock"));
        if current() {
            return bin;
        }
        let _ = fs::remove_dir_all(&venv);
        eprintln!(
            "crypt15 interop: installing wa-crypt-tools into {}",
            venv.display()
        );
        run(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "python3 -m venv",
        );
        run(
            Command::new(bin.join("pip"))
                .args(["install", "--no-deps", "--disable-pip-version-check", "-r"])
                .arg(requirements()),
            "pip install -r tests/crypt15/requirements.txt",
        );
        fs::write(&stamp, &wanted).unwrap();
        bin
    })
}

/// Bytes that look like a small SQLite database: a header, repetitive pages, and some
/// incompressible blobs (media keys, hashes).
fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut out = b"SQLite format 3\0".to_vec();
    let mut n = 0u32;
    while out.len() < len {
        n += 1;
        write!(
            out,
            "INSERT INTO messages VALUES({n},'chat-{}@s.whatsapp.net','hello number {n}',{});",
            n % 17,
            1_700_000_000 + n * 37
        )
        .unwrap();
        if n % 50 == 0 {
            let mut blob = [0u8; 64];
            rng.fill_bytes(&mut blob);
            out.extend_from_slice(&blob);
        }
    }
    out.truncate(len);
    out
}

fn key_hex(key: &BackupKey) -> String {
    hex::encode(key.expose_bytes())
}

fn confide_write(key: &BackupKey, payload: &[u8], seed: u64) -> Vec<u8> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let info = Crypt15Info::new("2.24.11.78", "42");
    let mut w = Crypt15Writer::new(Vec::new(), key, &info, &mut rng).unwrap();
    for chunk in payload.chunks(10_007) {
        w.write_all(chunk).unwrap();
    }
    w.finish().unwrap()
}

fn confide_read(
    key: &BackupKey,
    file: &[u8],
) -> Result<(Crypt15Info, bool, Vec<u8>), Crypt15Error> {
    let reader = Crypt15Reader::open(file, key)?;
    let info = reader.info().clone();
    let flag = reader.has_feature_table();
    let mut out = Vec::new();
    let n = reader.decrypt_to(&mut out)?;
    assert_eq!(n, out.len() as u64);
    Ok((info, flag, out))
}

#[test]
fn wadecrypt_opens_confide_files() {
    let bin = peer_bin();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    for (i, len) in [0usize, 1, 5_000, 300_000].into_iter().enumerate() {
        let key = BackupKey::generate(&mut rng);
        let plain = payload(len, i as u64);
        let file = confide_write(&key, &plain, 100 + i as u64);
        let enc = dir.path().join(format!("msgstore{i}.db.crypt15"));
        let dec = dir.path().join(format!("msgstore{i}.db"));
        fs::write(&enc, &file).unwrap();
        let out = run(
            Command::new(bin.join("wadecrypt"))
                .arg(key_hex(&key))
                .arg(&enc)
                .arg(&dec),
            "wadecrypt",
        );
        let log = String::from_utf8_lossy(&out.stderr).to_lowercase();
        assert!(
            !log.contains("mismatch") && !log.contains("truncated"),
            "{log}"
        );
        assert_eq!(fs::read(&dec).unwrap(), plain, "len {len}: {log}");
    }
}

#[test]
fn wadecrypt_sees_a_tampered_confide_file() {
    let bin = peer_bin();
    let dir = tempfile::tempdir().unwrap();
    let key = BackupKey::from_bytes([0x5c; 32]);
    let mut file = confide_write(&key, &payload(20_000, 3), 9);
    let at = file.len() - 40; // last ciphertext byte region, before tag and MD5
    file[at] ^= 0x01;
    let enc = dir.path().join("t.crypt15");
    fs::write(&enc, &file).unwrap();
    let out = Command::new(bin.join("wadecrypt"))
        .arg(key_hex(&key))
        .arg(&enc)
        .arg(dir.path().join("t.db"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        log.contains("mismatch"),
        "wadecrypt accepted a changed file: {log}"
    );
    assert!(matches!(
        confide_read(&key, &file),
        Err(Crypt15Error::Tampered)
    ));
}

#[test]
fn confide_opens_waencrypt_files() {
    let bin = peer_bin();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    for (i, len) in [1usize, 70_000, 400_000].into_iter().enumerate() {
        let key = BackupKey::generate(&mut rng);
        let plain = payload(len, 50 + i as u64);
        let src = dir.path().join(format!("in{i}.db"));
        let enc = dir.path().join(format!("in{i}.db.crypt15"));
        fs::write(&src, &plain).unwrap();
        run(
            Command::new(bin.join("waencrypt"))
                .arg(key_hex(&key))
                .arg(&src)
                .arg(&enc)
                .args(["--jid", "07", "--wa-version", "2.23.18.12"]),
            "waencrypt",
        );
        let file = fs::read(&enc).unwrap();
        let (info, flag, out) = confide_read(&key, &file).unwrap();
        assert_eq!(out, plain, "len {len}");
        assert_eq!(info.jid_suffix, "07");
        assert_eq!(info.app_version, "2.23.18.12");
        assert!(flag, "waencrypt writes the feature-table flag");

        let wrong = BackupKey::from_bytes([1; 32]);
        assert!(matches!(
            confide_read(&wrong, &file),
            Err(Crypt15Error::Tampered)
        ));
        let mut cut = file.clone();
        cut.truncate(file.len() - 1);
        assert!(confide_read(&key, &cut).is_err());
        let mut bad_md5 = file.clone();
        *bad_md5.last_mut().unwrap() ^= 0x80;
        assert!(matches!(
            confide_read(&key, &bad_md5),
            Err(Crypt15Error::Checksum)
        ));
    }
}
