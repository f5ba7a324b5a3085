//! confide's vault against `@serenity-kit/opaque` 1.1.0 from npm (opaque-ke 4 compiled
//! to WASM, run by Node as a separate process): its client registers with and logs in to
//! confide's `VaultServer`, and confide's client registers with and logs in to its
//! server. Same underlying implementation, so this proves the wire format across
//! processes and languages, not independent correctness (tests/vault_vectors.rs checks
//! the RFC's vectors). The Node driver also unwraps confide's released key with Node's
//! own crypto, from the documented construction.
//!
//! Argon2id is `argon2id-custom` m = 256 KiB, t = 1, p = 1 on both sides (cheap, CI).

#![cfg(all(feature = "backup", feature = "sqlite"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use confide::backup::BackupKey;
use confide::backup::vault::{
    LoginFinalization, LoginRequest, LoginResponse, MemoryRecords, RegistrationRequest,
    RegistrationResponse, RegistrationUpload, VaultError, VaultParams, VaultServer,
    VaultServerSetup, recover_start, register_start,
};
use rand_core::OsRng;
use serde_json::{Value, json};

const M_COST: u32 = 256;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("vault_interop")
}

fn mtime(p: &Path) -> Option<SystemTime> {
    fs::metadata(p).and_then(|m| m.modified()).ok()
}

const STAMP: &str = "node_modules/.confide-npm-ci-stamp";

/// `npm ci` once per lockfile change, under a directory lock (tests run in parallel).
fn install() {
    static ONCE: Mutex<bool> = Mutex::new(false);
    let mut done = ONCE.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return;
    }
    let d = dir();
    let lock = d.join(".npm-lock");
    let start = Instant::now();
    while fs::create_dir(&lock).is_err() {
        let stale = mtime(&lock)
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(600));
        if stale {
            let _ = fs::remove_dir(&lock);
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "npm lock timeout"
        );
        thread::sleep(Duration::from_millis(200));
    }
    let current = matches!(
        (mtime(&d.join(STAMP)), mtime(&d.join("package-lock.json"))),
        (Some(s), Some(l)) if s >= l
    );
    let result = if current {
        Ok(())
    } else {
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&d)
            .status()
            .map_err(|e| format!("cannot run npm (Node.js 20+ with npm needed): {e}"))
            .and_then(|s| {
                if s.success() {
                    fs::write(d.join(STAMP), b"").map_err(|e| e.to_string())
                } else {
                    Err(format!("npm ci failed: {s}"))
                }
            })
    };
    let _ = fs::remove_dir(&lock);
    result.unwrap();
    *done = true;
}

struct Node {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next: u64,
}

impl Node {
    fn start() -> Node {
        install();
        let mut child = Command::new("node")
            .arg("driver.mjs")
            .current_dir(dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Node {
            child,
            stdin,
            stdout,
            next: 0,
        }
    }

    /// One call; `Err` carries the driver's error text.
    fn try_call(&mut self, op: &str, args: Value) -> Result<Value, String> {
        self.next += 1;
        let line = json!({"id": self.next, "op": op, "args": args}).to_string();
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        let mut reply = String::new();
        self.stdout.read_line(&mut reply).unwrap();
        let v: Value = serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{e}: {reply}"));
        assert_eq!(v["id"], self.next);
        if v["ok"] == true {
            Ok(v["result"].clone())
        } else {
            Err(v["error"].to_string())
        }
    }

    fn call(&mut self, op: &str, args: Value) -> Value {
        self.try_call(op, args)
            .unwrap_or_else(|e| panic!("{op}: {e}"))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ksf() -> Value {
    json!({"argon2id-custom": {"memory": M_COST, "iterations": 1, "parallelism": 1}})
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(A[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}

fn unb64(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => panic!("not base64url: {c}"),
        }
    };
    let s: Vec<u8> = s.bytes().filter(|c| *c != b'=').collect();
    let mut out = Vec::new();
    for chunk in s.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, c)| n | val(*c) << (18 - 6 * i));
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

fn params() -> VaultParams {
    VaultParams::new(M_COST, 1, 1).unwrap()
}

/// The first byte (type tag) of each confide message, learnt from one confide round trip
/// so the bridge does not hard-code them.
struct Tags {
    registration_request: u8,
    registration_response: u8,
    upload: u8,
    login_request: u8,
    login_response: u8,
    finalization: u8,
}

fn tags() -> Tags {
    let server = VaultServer::new(VaultServerSetup::generate(&mut OsRng), MemoryRecords::new());
    let (req, reg) = register_start(b"probe", &mut OsRng).unwrap();
    let resp = server.register_start(b"probe", &req).unwrap();
    let key = BackupKey::generate(&mut OsRng);
    let upload = reg
        .finish(&resp, &key, &params(), None, &mut OsRng)
        .unwrap();
    server.register_finish(b"probe", &upload).unwrap();
    let (lreq, rec) = recover_start(b"probe", &mut OsRng).unwrap();
    let (_, lresp) = server.login_start(b"probe", &lreq, &mut OsRng).unwrap();
    let (fin, _) = rec.finish(&lresp, &mut OsRng).unwrap();
    Tags {
        registration_request: req.to_bytes()[0],
        registration_response: resp.to_bytes()[0],
        upload: upload.to_bytes()[0],
        login_request: lreq.to_bytes()[0],
        login_response: lresp.to_bytes()[0],
        finalization: fin.to_bytes()[0],
    }
}

fn with_tag(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![tag];
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

#[test]
fn serenity_client_against_confide_server() {
    let t = tags();
    let mut node = Node::start();
    let server = VaultServer::new(VaultServerSetup::generate(&mut OsRng), MemoryRecords::new());
    let user = "alice@example.org";
    let password = "correct horse battery staple";
    let key = BackupKey::generate(&mut OsRng);

    // Registration: serenity's client, confide's server; serenity's export key wraps the
    // backup key (in Node, with Node's crypto) exactly as confide's client would.
    let start = node.call("client.startRegistration", json!({"password": password}));
    let req = RegistrationRequest::from_bytes(&with_tag(
        t.registration_request,
        &[&unb64(&s(&start["registrationRequest"]))],
    ))
    .unwrap();
    let resp = server.register_start(user.as_bytes(), &req).unwrap();
    let finish = node.call(
        "client.finishRegistration",
        json!({
            "password": password,
            "clientRegistrationState": start["clientRegistrationState"],
            "registrationResponse": b64(&resp.to_bytes()[1..]),
            "keyStretching": ksf(),
        }),
    );
    let export_key = s(&finish["exportKey"]);
    let wrapped = unb64(&s(&node.call(
        "wrap",
        json!({"exportKey": export_key, "key": b64(key.expose_bytes())}),
    )));
    let upload = RegistrationUpload::from_bytes(&with_tag(
        t.upload,
        &[
            &params().to_bytes(),
            &unb64(&s(&finish["registrationRecord"])),
            &wrapped,
            &[0],
        ],
    ))
    .unwrap();
    server.register_finish(user.as_bytes(), &upload).unwrap();

    // Login: confide's server releases the key; Node opens it with serenity's session
    // and export keys, so both sides agree on both.
    let login = node.call("client.startLogin", json!({"password": password}));
    let lreq = LoginRequest::from_bytes(&with_tag(
        t.login_request,
        &[&unb64(&s(&login["startLoginRequest"]))],
    ))
    .unwrap();
    let (attempt, lresp) = server
        .login_start(user.as_bytes(), &lreq, &mut OsRng)
        .unwrap();
    let lresp_bytes = lresp.to_bytes();
    let raw_response = &lresp_bytes[lresp_bytes.len() - 320..];
    let done = node.call(
        "client.finishLogin",
        json!({
            "password": password,
            "clientLoginState": login["clientLoginState"],
            "loginResponse": b64(raw_response),
            "keyStretching": ksf(),
        }),
    );
    assert_eq!(s(&done["exportKey"]), export_key, "export key stable");
    let fin = LoginFinalization::from_bytes(&with_tag(
        t.finalization,
        &[&unb64(&s(&done["finishLoginRequest"]))],
    ))
    .unwrap();
    let released = server
        .login_finish(user.as_bytes(), &attempt, &fin, &mut OsRng)
        .unwrap();
    let opened = node.call(
        "release_open",
        json!({
            "sessionKey": done["sessionKey"],
            "exportKey": export_key,
            "attemptId": b64(&attempt.to_bytes()),
            "sealed": b64(&released.to_bytes()[1..]),
        }),
    );
    assert_eq!(unb64(&s(&opened)), key.expose_bytes().to_vec());

    // A wrong password: serenity's finishLogin gives nothing, and confide's server
    // refuses whatever finalization a client makes up.
    let login = node.call("client.startLogin", json!({"password": "wrong"}));
    let lreq = LoginRequest::from_bytes(&with_tag(
        t.login_request,
        &[&unb64(&s(&login["startLoginRequest"]))],
    ))
    .unwrap();
    let (attempt, lresp) = server
        .login_start(user.as_bytes(), &lreq, &mut OsRng)
        .unwrap();
    let lresp_bytes = lresp.to_bytes();
    let done = node.call(
        "client.finishLogin",
        json!({
            "password": "wrong",
            "clientLoginState": login["clientLoginState"],
            "loginResponse": b64(&lresp_bytes[lresp_bytes.len() - 320..]),
            "keyStretching": ksf(),
        }),
    );
    assert!(done.is_null(), "serenity accepted a wrong password: {done}");
    let forged = LoginFinalization::from_bytes(&with_tag(t.finalization, &[&[7u8; 64]]));
    if let Ok(forged) = forged {
        assert!(
            server
                .login_finish(user.as_bytes(), &attempt, &forged, &mut OsRng)
                .is_err()
        );
    }
}

#[test]
fn confide_client_against_serenity_server() {
    let t = tags();
    let mut node = Node::start();
    let setup = s(&node.call("server.createSetup", json!({})));
    let user = "bob@example.org";
    let password = b"hunter2 but longer";
    let key = BackupKey::generate(&mut OsRng);

    let (req, reg) = register_start(password, &mut OsRng).unwrap();
    let resp = node.call(
        "server.createRegistrationResponse",
        json!({
            "serverSetup": setup,
            "userIdentifier": user,
            "registrationRequest": b64(&req.to_bytes()[1..]),
        }),
    );
    let resp = RegistrationResponse::from_bytes(&with_tag(
        t.registration_response,
        &[&unb64(&s(&resp["registrationResponse"]))],
    ))
    .unwrap();
    let upload = reg
        .finish(&resp, &key, &params(), None, &mut OsRng)
        .unwrap();
    let upload_bytes = upload.to_bytes();
    let record = b64(&upload_bytes[1 + VaultParams::LEN..1 + VaultParams::LEN + 192]);

    let login = |password: &[u8], node: &mut Node| {
        let (lreq, rec) = recover_start(password, &mut OsRng).unwrap();
        let start = node.call(
            "server.startLogin",
            json!({
                "serverSetup": setup,
                "registrationRecord": record,
                "startLoginRequest": b64(&lreq.to_bytes()[1..]),
                "userIdentifier": user,
            }),
        );
        let lresp = LoginResponse::from_bytes(&with_tag(
            t.login_response,
            &[
                &[0u8; 16],
                &params().to_bytes(),
                &unb64(&s(&start["loginResponse"])),
            ],
        ))
        .unwrap();
        (
            rec.finish(&lresp, &mut OsRng),
            start["serverLoginState"].clone(),
        )
    };

    let (finished, state) = login(password, &mut node);
    let (fin, proof) = finished.unwrap();
    let server_done = node.call(
        "server.finishLogin",
        json!({
            "serverLoginState": state,
            "finishLoginRequest": b64(&fin.to_bytes()[1..]),
        }),
    );
    assert_eq!(
        unb64(&s(&server_done["sessionKey"])),
        proof.session_key().to_vec()
    );

    let (finished, _) = login(b"not the password", &mut node);
    assert!(matches!(finished, Err(VaultError::WrongPassword)));
}
