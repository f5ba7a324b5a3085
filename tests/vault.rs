//! The password vault through its public API: register and recover, the attempt limit
//! (also under concurrency), replays, the unknown-user dummy, every parser on junk, and
//! the reference server (examples/vault) as a separate process over HTTP.

#![cfg(all(feature = "backup", feature = "sqlite"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU32, Ordering};

use confide::backup::vault::{
    self, Attempt, AttemptId, LoginFinalization, LoginRequest, LoginResponse, MemoryRecords,
    RegistrationRequest, RegistrationResponse, RegistrationUpload, ReleasedKey, SqliteRecords,
    StampUpdate, StorageError, VaultError, VaultParams, VaultRecord, VaultRecords, VaultServer,
    VaultServerSetup,
};
use confide::backup::{BackupKey, BackupStamp};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

const USER: &[u8] = b"alice@example.org";

/// Cheap Argon2id for tests: 256 KiB, one pass, one lane.
fn params() -> VaultParams {
    VaultParams::new(256, 1, 1).unwrap()
}

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn server<R: VaultRecords>(records: R, limit: u32, rng: &mut ChaCha20Rng) -> VaultServer<R> {
    VaultServer::with_limit(VaultServerSetup::generate(rng), records, limit)
}

fn stamp(generation: u64) -> BackupStamp {
    BackupStamp {
        generation,
        digest: [generation as u8; 32],
    }
}

fn register<R: VaultRecords>(
    server: &VaultServer<R>,
    user: &[u8],
    password: &[u8],
    key: &BackupKey,
    stamp: Option<BackupStamp>,
    rng: &mut ChaCha20Rng,
) {
    let (request, state) = vault::register_start(password, rng).unwrap();
    let request = RegistrationRequest::from_bytes(&request.to_bytes()).unwrap();
    let response = server.register_start(user, &request).unwrap();
    let response = RegistrationResponse::from_bytes(&response.to_bytes()).unwrap();
    let upload = state.finish(&response, key, &params(), stamp, rng).unwrap();
    let upload = RegistrationUpload::from_bytes(&upload.to_bytes()).unwrap();
    server.register_finish(user, &upload).unwrap();
}

/// A whole recovery, every message through bytes.
fn recover<R: VaultRecords>(
    server: &VaultServer<R>,
    user: &[u8],
    password: &[u8],
    rng: &mut ChaCha20Rng,
) -> Result<vault::RecoveredKey, VaultError> {
    let (request, state) = vault::recover_start(password, rng)?;
    let request = LoginRequest::from_bytes(&request.to_bytes()).unwrap();
    let (attempt, response) = server.login_start(user, &request, rng)?;
    let response = LoginResponse::from_bytes(&response.to_bytes()).unwrap();
    assert_eq!(response.attempt_id(), attempt);
    let (finalization, proof) = state.finish(&response, rng)?;
    let finalization = LoginFinalization::from_bytes(&finalization.to_bytes()).unwrap();
    let released = server.login_finish(user, &attempt, &finalization, rng)?;
    let released = ReleasedKey::from_bytes(&released.to_bytes()).unwrap();
    proof.open(&released)
}

#[test]
fn register_then_recover_gives_the_key_and_stamp() {
    let mut rng = rng(1);
    let server = server(MemoryRecords::new(), 10, &mut rng);
    let key = BackupKey::generate(&mut rng);
    register(
        &server,
        USER,
        b"correct horse",
        &key,
        Some(stamp(1)),
        &mut rng,
    );
    let got = recover(&server, USER, b"correct horse", &mut rng).unwrap();
    assert_eq!(got.key.expose_bytes(), key.expose_bytes());
    assert_eq!(got.latest_stamp, Some(stamp(1)));

    // Without a stamp at registration there is none to recover.
    let other = BackupKey::generate(&mut rng);
    register(&server, b"bob", b"pw", &other, None, &mut rng);
    let got = recover(&server, b"bob", b"pw", &mut rng).unwrap();
    assert_eq!(got.key.expose_bytes(), other.expose_bytes());
    assert_eq!(got.latest_stamp, None);
}

#[test]
fn recommended_params_are_rfc9106_second_option() {
    let p = VaultParams::recommended();
    assert_eq!((p.m_cost(), p.t_cost(), p.p_cost()), (65536, 3, 4));
    assert_eq!(VaultParams::from_bytes(&p.to_bytes()).unwrap(), p);
    assert_eq!(VaultParams::new(0, 1, 1), Err(VaultError::BadParams));
    assert_eq!(
        VaultParams::new(VaultParams::MAX_M_COST + 1, 1, 1),
        Err(VaultError::BadParams)
    );
}

#[test]
fn wrong_passwords_use_up_the_limit_and_delete_the_record() {
    let mut rng = rng(2);
    let server = server(MemoryRecords::new(), 10, &mut rng);
    let key = BackupKey::generate(&mut rng);
    register(&server, USER, b"right", &key, None, &mut rng);
    for _ in 0..10 {
        assert_eq!(
            recover(&server, USER, b"wrong", &mut rng).unwrap_err(),
            VaultError::WrongPassword
        );
    }
    assert!(server.records().contains(USER).unwrap());
    // The eleventh start finds the limit used up: the record goes, and the right
    // password is refused like a wrong one.
    assert_eq!(
        recover(&server, USER, b"right", &mut rng).unwrap_err(),
        VaultError::WrongPassword
    );
    assert!(!server.records().contains(USER).unwrap());
    assert_eq!(
        recover(&server, USER, b"right", &mut rng).unwrap_err(),
        VaultError::WrongPassword
    );
}

#[test]
fn success_resets_the_count() {
    let mut rng = rng(3);
    let server = server(MemoryRecords::new(), 3, &mut rng);
    let key = BackupKey::generate(&mut rng);
    register(&server, USER, b"right", &key, None, &mut rng);
    for _ in 0..3 {
        for _ in 0..2 {
            assert!(recover(&server, USER, b"wrong", &mut rng).is_err());
        }
        assert!(recover(&server, USER, b"right", &mut rng).is_ok());
    }
}

#[test]
fn an_abandoned_login_start_counts() {
    let mut rng = rng(4);
    let server = server(MemoryRecords::new(), 2, &mut rng);
    let key = BackupKey::generate(&mut rng);
    register(&server, USER, b"right", &key, None, &mut rng);
    for _ in 0..2 {
        let (request, _) = vault::recover_start(b"guess", &mut rng).unwrap();
        server.login_start(USER, &request, &mut rng).unwrap();
    }
    assert!(recover(&server, USER, b"right", &mut rng).is_err());
    assert!(!server.records().contains(USER).unwrap());
}

/// Counts the starts a backend answered with the real record.
struct Counting<R> {
    inner: R,
    answered: AtomicU32,
}

impl<R: VaultRecords> VaultRecords for Counting<R> {
    fn put(&self, user: &[u8], record: &VaultRecord) -> Result<(), StorageError> {
        self.inner.put(user, record)
    }
    fn begin_attempt(&self, user: &[u8], limit: u32) -> Result<Attempt, StorageError> {
        let a = self.inner.begin_attempt(user, limit)?;
        if matches!(a, Attempt::Counted(_)) {
            self.answered.fetch_add(1, Ordering::SeqCst);
        }
        Ok(a)
    }
    fn reset_attempts(&self, user: &[u8]) -> Result<(), StorageError> {
        self.inner.reset_attempts(user)
    }
    fn put_stamp(
        &self,
        user: &[u8],
        generation: u64,
        sealed: &[u8; vault::SEALED_STAMP_LEN],
    ) -> Result<bool, StorageError> {
        self.inner.put_stamp(user, generation, sealed)
    }
    fn contains(&self, user: &[u8]) -> Result<bool, StorageError> {
        self.inner.contains(user)
    }
}

fn concurrent_starts<R: VaultRecords + Sync>(records: R) {
    let mut rng = rng(5);
    let server = server(
        Counting {
            inner: records,
            answered: AtomicU32::new(0),
        },
        10,
        &mut rng,
    );
    let key = BackupKey::generate(&mut rng);
    register(&server, USER, b"right", &key, None, &mut rng);
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let server = &server;
            s.spawn(move || {
                let mut rng = ChaCha20Rng::seed_from_u64(100 + t);
                for _ in 0..5 {
                    let (request, _) = vault::recover_start(b"guess", &mut rng).unwrap();
                    // Every start gets an answer (a dummy once the record is gone).
                    server.login_start(USER, &request, &mut rng).unwrap();
                }
            });
        }
    });
    assert_eq!(server.records().answered.load(Ordering::SeqCst), 10);
    assert!(!server.records().contains(USER).unwrap());
}

#[test]
fn concurrent_attempts_never_exceed_the_limit_in_memory() {
    concurrent_starts(MemoryRecords::new());
}

#[test]
fn concurrent_attempts_never_exceed_the_limit_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    concurrent_starts(SqliteRecords::open(dir.path().join("vault.db")).unwrap());
}

#[test]
fn sqlite_records_register_recover_and_lock_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.db");
    let mut rng = rng(6);
    let setup = VaultServerSetup::generate(&mut rng);
    let key = BackupKey::generate(&mut rng);
    {
        let server = VaultServer::with_limit(setup.clone(), SqliteRecords::open(&path).unwrap(), 2);
        register(&server, USER, b"right", &key, Some(stamp(4)), &mut rng);
    }
    // A restarted vault (same setup, same file) recovers it.
    let setup = VaultServerSetup::from_bytes(&setup.to_bytes()).unwrap();
    let server = VaultServer::with_limit(setup, SqliteRecords::open(&path).unwrap(), 2);
    let got = recover(&server, USER, b"right", &mut rng).unwrap();
    assert_eq!(got.key.expose_bytes(), key.expose_bytes());
    assert_eq!(got.latest_stamp, Some(stamp(4)));
    for _ in 0..2 {
        assert!(recover(&server, USER, b"wrong", &mut rng).is_err());
    }
    assert!(recover(&server, USER, b"right", &mut rng).is_err());
    assert!(!server.records().contains(USER).unwrap());
}

#[test]
fn a_released_key_from_another_session_is_refused() {
    let mut rng = rng(7);
    let server = server(MemoryRecords::new(), 10, &mut rng);
    let key = BackupKey::generate(&mut rng);
    register(&server, USER, b"right", &key, None, &mut rng);

    // Session one: the attacker records the released key.
    let (request, state) = vault::recover_start(b"right", &mut rng).unwrap();
    let (attempt, response_one) = server.login_start(USER, &request, &mut rng).unwrap();
    let (finalization, _) = state.finish(&response_one, &mut rng).unwrap();
    let released_one = server
        .login_finish(USER, &attempt, &finalization, &mut rng)
        .unwrap();

    // Session two: fed session one's released key.
    let (request, state) = vault::recover_start(b"right", &mut rng).unwrap();
    let (attempt, response) = server.login_start(USER, &request, &mut rng).unwrap();
    let (finalization, proof) = state.finish(&response, &mut rng).unwrap();
    server
        .login_finish(USER, &attempt, &finalization, &mut rng)
        .unwrap();
    assert_eq!(
        proof.open(&released_one).unwrap_err(),
        VaultError::NotThisSession
    );

    // Session three: fed session one's login response (the server's ephemeral key and
    // MAC belong to another client nonce), the client refuses it.
    let (_, state) = vault::recover_start(b"right", &mut rng).unwrap();
    assert!(state.finish(&response_one, &mut rng).is_err());
}

#[test]
fn a_replayed_finalization_is_refused() {
    let mut rng = rng(8);
    let server = server(MemoryRecords::new(), 10, &mut rng);
    let key = BackupKey::generate(&mut rng);
    register(&server, USER, b"right", &key, None, &mut rng);
    let (request, state) = vault::recover_start(b"right", &mut rng).unwrap();
    let (attempt, response) = server.login_start(USER, &request, &mut rng).unwrap();
    let (finalization, _) = state.finish(&response, &mut rng).unwrap();
    server
        .login_finish(USER, &attempt, &finalization, &mut rng)
        .unwrap();
    assert_eq!(
        server
            .login_finish(USER, &attempt, &finalization, &mut rng)
            .unwrap_err(),
        VaultError::UnknownAttempt
    );
    // Nor does it finish a newer attempt.
    let (request, _) = vault::recover_start(b"right", &mut rng).unwrap();
    let (attempt, _) = server.login_start(USER, &request, &mut rng).unwrap();
    assert_eq!(
        server
            .login_finish(USER, &attempt, &finalization, &mut rng)
            .unwrap_err(),
        VaultError::WrongPassword
    );
    // Nor an attempt id under another user.
    let (request, state) = vault::recover_start(b"right", &mut rng).unwrap();
    let (attempt, response) = server.login_start(USER, &request, &mut rng).unwrap();
    let (finalization, _) = state.finish(&response, &mut rng).unwrap();
    assert_eq!(
        server
            .login_finish(b"mallory", &attempt, &finalization, &mut rng)
            .unwrap_err(),
        VaultError::UnknownAttempt
    );
}

#[test]
fn an_unknown_user_gets_the_same_shape() {
    let mut rng = rng(9);
    let mut server = server(MemoryRecords::new(), 10, &mut rng);
    assert_eq!(
        {
            let (request, _) = vault::recover_start(b"x", &mut rng).unwrap();
            server
                .login_start(b"nobody", &request, &mut rng)
                .unwrap()
                .1
                .params()
        },
        VaultParams::recommended()
    );
    server.set_dummy_params(params());
    let key = BackupKey::generate(&mut rng);
    register(&server, USER, b"right", &key, None, &mut rng);
    let (request, known_state) = vault::recover_start(b"right", &mut rng).unwrap();
    let (_, known) = server.login_start(USER, &request, &mut rng).unwrap();
    let (request, state) = vault::recover_start(b"right", &mut rng).unwrap();
    let (attempt, unknown) = server.login_start(b"nobody", &request, &mut rng).unwrap();
    assert_eq!(known.params(), unknown.params());
    let (known_bytes, unknown_bytes) = (known.to_bytes(), unknown.to_bytes());
    assert_eq!(known_bytes.len(), unknown_bytes.len());
    assert_ne!(known_bytes, unknown_bytes);
    // The client sees a wrong password, and the vault has nothing to release.
    assert_eq!(
        state.finish(&unknown, &mut rng).unwrap_err(),
        VaultError::WrongPassword
    );
    let (finalization, _) = known_state.finish(&known, &mut rng).unwrap();
    assert!(
        server
            .login_finish(b"nobody", &attempt, &finalization, &mut rng)
            .is_err()
    );
}

#[test]
fn stamp_updates_are_authenticated_and_monotonic() {
    let mut rng = rng(10);
    let server = server(MemoryRecords::new(), 10, &mut rng);
    let key = BackupKey::generate(&mut rng);
    register(&server, USER, b"right", &key, Some(stamp(1)), &mut rng);

    let login = |rng: &mut ChaCha20Rng| {
        let (request, state) = vault::recover_start(b"right", rng).unwrap();
        let (attempt, response) = server.login_start(USER, &request, rng).unwrap();
        let (finalization, proof) = state.finish(&response, rng).unwrap();
        let released = server
            .login_finish(USER, &attempt, &finalization, rng)
            .unwrap();
        (attempt, proof, released)
    };

    let (attempt, proof, _) = login(&mut rng);
    let update = proof.seal_stamp(stamp(5), &mut rng).unwrap();
    let update = StampUpdate::from_bytes(&update.to_bytes()).unwrap();
    // Under another attempt id it does not authenticate.
    let (other, _, _) = login(&mut rng);
    assert_eq!(
        server.update_stamp(USER, &other, &update).unwrap_err(),
        VaultError::NotThisSession
    );
    server.update_stamp(USER, &attempt, &update).unwrap();
    // Once per login.
    assert_eq!(
        server.update_stamp(USER, &attempt, &update).unwrap_err(),
        VaultError::UnknownAttempt
    );
    assert_eq!(
        recover(&server, USER, b"right", &mut rng)
            .unwrap()
            .latest_stamp,
        Some(stamp(5))
    );

    // A tampered generation fails the MAC; an older one is refused.
    let (attempt, proof, _) = login(&mut rng);
    let mut bytes = proof.seal_stamp(stamp(9), &mut rng).unwrap().to_bytes();
    bytes[8] ^= 1;
    assert_eq!(
        server
            .update_stamp(USER, &attempt, &StampUpdate::from_bytes(&bytes).unwrap())
            .unwrap_err(),
        VaultError::NotThisSession
    );
    let (attempt, proof, _) = login(&mut rng);
    let old = proof.seal_stamp(stamp(2), &mut rng).unwrap();
    assert_eq!(
        server.update_stamp(USER, &attempt, &old).unwrap_err(),
        VaultError::StaleStamp { offered: 2 }
    );
}

#[test]
fn a_stamp_update_needs_a_finished_login() {
    let mut rng = rng(11);
    let server = server(MemoryRecords::new(), 10, &mut rng);
    let key = BackupKey::generate(&mut rng);
    register(&server, USER, b"right", &key, None, &mut rng);
    let (request, state) = vault::recover_start(b"right", &mut rng).unwrap();
    let (attempt, response) = server.login_start(USER, &request, &mut rng).unwrap();
    let (_, proof) = state.finish(&response, &mut rng).unwrap();
    let update = proof.seal_stamp(stamp(3), &mut rng).unwrap();
    assert_eq!(
        server.update_stamp(USER, &attempt, &update).unwrap_err(),
        VaultError::UnknownAttempt
    );
}

/// Every parser on random, truncated and extended bytes: typed errors, never a panic.
#[test]
fn every_parser_survives_junk() {
    let mut rng = rng(12);
    let server = server(MemoryRecords::new(), 10, &mut rng);
    let key = BackupKey::generate(&mut rng);
    // Real messages to truncate and flip.
    let (req, state) = vault::register_start(b"pw", &mut rng).unwrap();
    let resp = server.register_start(USER, &req).unwrap();
    let upload = state
        .finish(&resp, &key, &params(), Some(stamp(1)), &mut rng)
        .unwrap();
    server.register_finish(USER, &upload).unwrap();
    let (lreq, state) = vault::recover_start(b"pw", &mut rng).unwrap();
    let (attempt, lresp) = server.login_start(USER, &lreq, &mut rng).unwrap();
    let (fin, proof) = state.finish(&lresp, &mut rng).unwrap();
    let upd = proof.seal_stamp(stamp(2), &mut rng).unwrap();
    let released = server.login_finish(USER, &attempt, &fin, &mut rng).unwrap();
    let setup = VaultServerSetup::generate(&mut rng);

    type Parse = fn(&[u8]) -> bool;
    let samples: Vec<(Vec<u8>, Parse)> = vec![
        (req.to_bytes(), |b| {
            RegistrationRequest::from_bytes(b).is_ok()
        }),
        (resp.to_bytes(), |b| {
            RegistrationResponse::from_bytes(b).is_ok()
        }),
        (upload.to_bytes(), |b| {
            RegistrationUpload::from_bytes(b).is_ok()
        }),
        (lreq.to_bytes(), |b| LoginRequest::from_bytes(b).is_ok()),
        (lresp.to_bytes(), |b| LoginResponse::from_bytes(b).is_ok()),
        (fin.to_bytes(), |b| LoginFinalization::from_bytes(b).is_ok()),
        (released.to_bytes(), |b| ReleasedKey::from_bytes(b).is_ok()),
        (upd.to_bytes(), |b| StampUpdate::from_bytes(b).is_ok()),
        (attempt.to_bytes().to_vec(), |b| {
            AttemptId::from_bytes(b).is_ok()
        }),
        (setup.to_bytes().to_vec(), |b| {
            VaultServerSetup::from_bytes(b).is_ok()
        }),
        (VaultParams::recommended().to_bytes().to_vec(), |b| {
            VaultParams::from_bytes(b).is_ok()
        }),
    ];
    for (bytes, parse) in &samples {
        assert!(parse(bytes), "a real message parses");
        for len in 0..bytes.len() {
            // (A released key without a stamp is a shorter valid length.)
            let released_without_stamp = 1 + 12 + 60 + 1 + 16;
            assert!(
                !parse(&bytes[..len]) || len == released_without_stamp,
                "truncated to {len} parses"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        let _ = parse(&longer);
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x80;
            let _ = parse(&flipped);
        }
        for _ in 0..200 {
            let mut junk = vec![0u8; (rng.next_u32() % 600) as usize];
            rng.fill_bytes(&mut junk);
            if let Some(first) = bytes.first() {
                if let Some(j) = junk.first_mut() {
                    if rng.next_u32() % 2 == 0 {
                        *j = *first;
                    }
                }
            }
            let _ = parse(&junk);
        }
    }
    // A tampered released key does not open.
    let mut bad = released.to_bytes();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert_eq!(
        proof
            .open(&ReleasedKey::from_bytes(&bad).unwrap())
            .unwrap_err(),
        VaultError::NotThisSession
    );
    assert!(proof.open(&released).is_ok());
}

// The reference vault (examples/vault) as a separate process over HTTP.

struct VaultProcess {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for VaultProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The example is built with the features this test binary has, so one build serves
/// the SQLite and the PostgreSQL tests.
const EXAMPLE_FEATURES: &str = if cfg!(feature = "postgres") {
    "backup sqlite postgres"
} else {
    "backup sqlite"
};

fn start_vault_process(limit: u32) -> VaultProcess {
    start_vault_process_with(limit, &[])
}

fn start_vault_process_with(limit: u32, extra: &[&str]) -> VaultProcess {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    static BUILD: std::sync::Once = std::sync::Once::new();
    BUILD.call_once(|| {
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "--example",
                "vault",
                "--features",
                EXAMPLE_FEATURES,
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "building the vault example failed");
    });
    let dir = tempfile::tempdir().unwrap();
    let bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/debug/examples/vault");
    let mut child = Command::new(bin)
        .arg(dir.path().join("vault.db"))
        .args(["--limit", &limit.to_string()])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    VaultProcess {
        child,
        port: line.trim().parse().unwrap(),
        _dir: dir,
    }
}

/// One POST: (status, body).
fn post(port: u16, path: &str, user: &[u8], body: &[u8]) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let user: String = user.iter().map(|b| format!("{b:02x}")).collect();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Vault-User: {user}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).unwrap();
    let split = reply.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(reply[..split].to_vec()).unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, reply[split + 4..].to_vec())
}

fn http_register(port: u16, password: &[u8], key: &BackupKey, rng: &mut ChaCha20Rng) {
    let (request, state) = vault::register_start(password, rng).unwrap();
    let (status, body) = post(port, "/register/start", USER, &request.to_bytes());
    assert_eq!(status, 200);
    let response = RegistrationResponse::from_bytes(&body).unwrap();
    let upload = state
        .finish(&response, key, &params(), Some(stamp(1)), rng)
        .unwrap();
    assert_eq!(
        post(port, "/register/finish", USER, &upload.to_bytes()).0,
        204
    );
}

fn http_recover(
    port: u16,
    password: &[u8],
    rng: &mut ChaCha20Rng,
) -> Result<(AttemptId, vault::RecoveryProof, vault::RecoveredKey), VaultError> {
    let (request, state) = vault::recover_start(password, rng).unwrap();
    let (status, body) = post(port, "/login/start", USER, &request.to_bytes());
    assert_eq!(status, 200);
    let attempt = AttemptId::from_bytes(&body[..16]).unwrap();
    let response = LoginResponse::from_bytes(&body[16..]).unwrap();
    let (finalization, proof) = state.finish(&response, rng)?;
    let mut body = attempt.to_bytes().to_vec();
    body.extend_from_slice(&finalization.to_bytes());
    let (status, body) = post(port, "/login/finish", USER, &body);
    assert_eq!(status, 200);
    let key = proof.open(&ReleasedKey::from_bytes(&body).unwrap())?;
    Ok((attempt, proof, key))
}

#[test]
fn http_vault_register_recover_and_stamp() {
    let vault = start_vault_process(10);
    let mut rng = rng(20);
    let key = BackupKey::generate(&mut rng);
    http_register(vault.port, b"right", &key, &mut rng);
    let (attempt, proof, got) = http_recover(vault.port, b"right", &mut rng).unwrap();
    assert_eq!(got.key.expose_bytes(), key.expose_bytes());
    assert_eq!(got.latest_stamp, Some(stamp(1)));
    let mut body = attempt.to_bytes().to_vec();
    body.extend_from_slice(&proof.seal_stamp(stamp(2), &mut rng).unwrap().to_bytes());
    assert_eq!(post(vault.port, "/stamp", USER, &body).0, 204);
    let (_, _, got) = http_recover(vault.port, b"right", &mut rng).unwrap();
    assert_eq!(got.latest_stamp, Some(stamp(2)));
    // Junk is a 400, not a crash.
    assert_eq!(post(vault.port, "/login/start", USER, b"junk").0, 400);
    assert_eq!(post(vault.port, "/nowhere", USER, b"").0, 404);
}

#[test]
fn http_vault_locks_out_after_ten_wrong_passwords() {
    let vault = start_vault_process(10);
    let mut rng = rng(21);
    let key = BackupKey::generate(&mut rng);
    http_register(vault.port, b"right", &key, &mut rng);
    for _ in 0..10 {
        assert_eq!(
            http_recover(vault.port, b"wrong", &mut rng).err(),
            Some(VaultError::WrongPassword)
        );
    }
    assert_eq!(
        http_recover(vault.port, b"right", &mut rng).err(),
        Some(VaultError::WrongPassword)
    );
    // The record is gone from the vault's database file.
    let records = SqliteRecords::open(vault._dir.path().join("vault.db")).unwrap();
    assert!(!records.contains(USER).unwrap());
}

#[test]
fn abandoned_starts_do_not_block_the_vault() {
    let mut rng = rng(13);
    let server = server(MemoryRecords::new(), u32::MAX, &mut rng);
    let key = BackupKey::generate(&mut rng);
    register(&server, USER, b"right", &key, None, &mut rng);
    let (request, _) = vault::recover_start(b"guess", &mut rng).unwrap();
    let (first, _) = server.login_start(USER, &request, &mut rng).unwrap();
    for _ in 0..5000 {
        server.login_start(b"nobody", &request, &mut rng).unwrap();
    }
    // The oldest pending login was forgotten; a new one still works.
    let (request, state) = vault::recover_start(b"right", &mut rng).unwrap();
    let (_, response) = server.login_start(USER, &request, &mut rng).unwrap();
    let (finalization, _) = state.finish(&response, &mut rng).unwrap();
    assert_eq!(
        server
            .login_finish(USER, &first, &finalization, &mut rng)
            .unwrap_err(),
        VaultError::UnknownAttempt
    );
    assert!(recover(&server, USER, b"right", &mut rng).is_ok());
}

// PostgreSQL records (the example's, `--features postgres`), on a server of our own.

#[cfg(feature = "postgres")]
#[path = "../examples/vault/postgres.rs"]
mod example_postgres;

#[cfg(feature = "postgres")]
mod pg {
    use std::path::PathBuf;
    use std::process::Command;

    /// A PostgreSQL server on 127.0.0.1 in a temp dir, stopped on drop.
    pub(crate) struct PgServer {
        dir: tempfile::TempDir,
        bin: PathBuf,
        pub(crate) port: u16,
        as_root: bool,
    }

    fn pg_bin() -> PathBuf {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut candidates: Vec<PathBuf> = std::env::split_paths(&path).collect();
        let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .map(|d| {
                d.filter_map(|e| {
                    let e = e.ok()?;
                    Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin")))
                })
                .collect()
            })
            .unwrap_or_default();
        versioned.sort_by_key(|v| std::cmp::Reverse(v.0));
        candidates.extend(versioned.into_iter().map(|(_, p)| p));
        candidates
            .into_iter()
            .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
            .expect("PostgreSQL is not installed (apt-get install -y postgresql)")
    }

    impl PgServer {
        pub(crate) fn start() -> Self {
            let dir = tempfile::Builder::new()
                .prefix("confide-vault-pg-")
                .tempdir_in("/tmp")
                .unwrap();
            let as_root =
                String::from_utf8_lossy(&Command::new("id").arg("-u").output().unwrap().stdout)
                    .trim()
                    == "0";
            if as_root {
                assert!(
                    Command::new("chown")
                        .arg("postgres:postgres")
                        .arg(dir.path())
                        .status()
                        .unwrap()
                        .success()
                );
            }
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let server = Self {
                dir,
                bin: pg_bin(),
                port,
                as_root,
            };
            let data = server.dir.path().join("data");
            let out = server
                .pg("initdb")
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "-N",
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "initdb: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let opts = format!(
                "-c listen_addresses=127.0.0.1 -p {} -k {}",
                server.port,
                server.dir.path().display()
            );
            let out = server
                .pg("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(server.dir.path().join("server.log"))
                .args(["-w", "-t", "60", "-o", &opts, "start"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "pg_ctl: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            server
        }

        pub(crate) fn url(&self) -> String {
            format!(
                "host=127.0.0.1 port={} user=postgres dbname=postgres",
                self.port
            )
        }

        fn pg(&self, program: &str) -> Command {
            let real = std::fs::canonicalize(self.bin.join("initdb"))
                .ok()
                .and_then(|p| p.parent().map(|d| d.join(program)));
            let exe = std::iter::once(self.bin.join(program))
                .chain(real)
                .find(|p| p.is_file())
                .unwrap();
            if self.as_root {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(exe);
                c
            } else {
                Command::new(exe)
            }
        }
    }

    impl Drop for PgServer {
        fn drop(&mut self) {
            let _ = self
                .pg("pg_ctl")
                .arg("-D")
                .arg(self.dir.path().join("data"))
                .args(["-m", "immediate", "-w", "stop"])
                .output();
        }
    }
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_records_count_concurrent_attempts_and_serve_the_example() {
    let pg = pg::PgServer::start();
    concurrent_starts(example_postgres::PostgresRecords::connect(&pg.url()).unwrap());

    // The example over HTTP on the same database: register, recover, lock out.
    let url = pg.url();
    let vault = start_vault_process_with(3, &["--postgres", &url]);
    let mut rng = rng(30);
    let key = BackupKey::generate(&mut rng);
    http_register(vault.port, b"right", &key, &mut rng);
    let (_, _, got) = http_recover(vault.port, b"right", &mut rng).unwrap();
    assert_eq!(got.key.expose_bytes(), key.expose_bytes());
    for _ in 0..3 {
        assert!(http_recover(vault.port, b"wrong", &mut rng).is_err());
    }
    assert!(http_recover(vault.port, b"right", &mut rng).is_err());
    let records = example_postgres::PostgresRecords::connect(&url).unwrap();
    assert!(!records.contains(USER).unwrap());
}
