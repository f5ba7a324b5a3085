//! The test key directory (`examples/kt_directory`) as a separate process, and a tiny
//! HTTP/1.1 client for it over `std::net::TcpStream`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use confide::Timestamp;
use confide::kt::{AuditorKey, DirectoryTrust, SignedHead, VrfPublicKey};
use serde_json::{Value, json};

/// The namespace the directory's auditor signs for.
pub(crate) const NAMESPACE: &str = "confide.kt.test";

/// The auditor seed every test directory signs with.
pub(crate) const AUDITOR_SEED: [u8; 32] = [0x42; 32];

/// `examples/kt_directory`, built once per test process into the test binary's own
/// target directory and profile with the test's features (a no-op when current: `cargo
/// test --test kt` builds no examples). `CONFIDE_KT_DIRECTORY=/path` skips the build.
pub(crate) fn directory_binary() -> PathBuf {
    static PATH: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = PATH.get_or_init(|| {
        if let Some(p) = std::env::var_os("CONFIDE_KT_DIRECTORY") {
            return Ok(PathBuf::from(p));
        }
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        // <target>/<profile>/deps/kt-HASH
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .ok_or("test binary is not in <target>/<profile>/deps")?;
        let target = profile_dir
            .parent()
            .ok_or("test binary is not in <target>/<profile>/deps")?;
        // The test's own features, so the library is not rebuilt for another set.
        let features = if cfg!(feature = "kt-audit") {
            "kt,kt-audit"
        } else {
            "kt"
        };
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args([
                "build",
                "--quiet",
                "--example",
                "kt_directory",
                "--features",
            ])
            .arg(features)
            .arg("--target-dir")
            .arg(target)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => {}
            Some("release") => {
                cargo.arg("--release");
            }
            Some(other) => {
                cargo.args(["--profile", other]);
            }
            None => return Err("no profile directory".into()),
        }
        let out = cargo
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "`cargo build --example kt_directory` failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(profile_dir
            .join("examples")
            .join(format!("kt_directory{}", std::env::consts::EXE_SUFFIX)))
    });
    match built {
        Ok(p) => p.clone(),
        Err(e) => panic!("the kt_directory example: {e}"),
    }
}

/// One running directory; killed on drop.
pub(crate) struct Directory {
    child: Child,
    port: u16,
    /// Its VRF public key, as it announced it.
    pub(crate) vrf_public_key: [u8; 32],
    /// Its auditor's key, as it announced it.
    pub(crate) auditor_key: [u8; 32],
}

impl Drop for Directory {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn key32(v: &Value) -> [u8; 32] {
    hex::decode(v.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

/// A reply: the status and the JSON body.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Value,
}

impl Reply {
    /// The body of a 200 reply.
    #[track_caller]
    pub(crate) fn ok(self) -> Value {
        assert_eq!(self.status, 200, "directory said {}", self.body);
        self.body
    }
}

impl Directory {
    /// Starts a directory whose heads are stamped with `now`.
    pub(crate) fn spawn(now: Timestamp) -> Self {
        let mut child = Command::new(directory_binary())
            .arg("--auditor-seed")
            .arg(hex::encode(AUDITOR_SEED))
            .arg("--namespace")
            .arg(NAMESPACE)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("directory's first line {line:?}: {e}"));
        let dir = Self {
            child,
            port: u16::try_from(ready["port"].as_u64().unwrap()).unwrap(),
            vrf_public_key: key32(&ready["vrf_public_key"]),
            auditor_key: key32(&ready["auditor_key"]),
        };
        dir.set_clock(now);
        dir
    }

    /// What a client trusts for this directory.
    pub(crate) fn trust(&self) -> DirectoryTrust {
        DirectoryTrust::new(
            VrfPublicKey::from_bytes(&self.vrf_public_key).unwrap(),
            vec![AuditorKey::from_bytes(&self.auditor_key).unwrap()],
            NAMESPACE,
        )
    }

    /// Sends raw request bytes; returns the status and the body.
    pub(crate) fn raw(&self, request: &[u8]) -> (u16, Vec<u8>) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.write_all(request).unwrap();
        let mut reply = Vec::new();
        s.read_to_end(&mut reply).unwrap();
        let split = reply
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no reply head in {reply:?}"));
        let head = std::str::from_utf8(&reply[..split]).unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, reply[split + 4..].to_vec())
    }

    /// One request: `GET path` or `POST path` with a JSON body.
    pub(crate) fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let body = body.map(Value::to_string).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let (status, body) = self.raw(request.as_bytes());
        let body = serde_json::from_slice(&body).unwrap();
        Reply { status, body }
    }

    /// Sets the time heads are stamped with.
    pub(crate) fn set_clock(&self, now: Timestamp) {
        self.request("POST", "/clock", Some(&json!({ "ms": now.as_millis() })))
            .ok();
    }

    /// Publishes one epoch; returns its number.
    pub(crate) fn publish(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> u64 {
        let entries: Vec<Value> = entries
            .iter()
            .map(|(l, v)| json!({ "label": hex::encode(l), "value": hex::encode(v) }))
            .collect();
        let body = self
            .request("POST", "/publish", Some(&json!({ "entries": entries })))
            .ok();
        body["epoch"].as_u64().unwrap()
    }

    /// Switches the directory's mode (`{"mode": ...}` and its fields).
    pub(crate) fn set_mode(&self, mode: Value) -> Value {
        self.request("POST", "/mode", Some(&mode)).ok()
    }

    /// The served head (latest, or `epoch`'s).
    pub(crate) fn head(&self, epoch: Option<u64>) -> SignedHead {
        let path = match epoch {
            Some(e) => format!("/head?epoch={e}"),
            None => "/head".to_string(),
        };
        head_of(&self.request("GET", &path, None).ok())
    }

    /// The latest version of `label`: the head and the lookup proof.
    pub(crate) fn lookup(&self, label: &[u8]) -> (SignedHead, Vec<u8>) {
        let body = self
            .request(
                "GET",
                &format!("/lookup?label={}", hex::encode(label)),
                None,
            )
            .ok();
        (head_of(&body), proof_of(&body))
    }

    /// Every version of `label`: the head and the history proof.
    pub(crate) fn history(&self, label: &[u8]) -> (SignedHead, Vec<u8>) {
        let body = self
            .request(
                "GET",
                &format!("/history?label={}", hex::encode(label)),
                None,
            )
            .ok();
        (head_of(&body), proof_of(&body))
    }

    /// The append-only proof from `from` to `to`, and `to`'s head.
    pub(crate) fn audit(&self, from: u64, to: u64) -> (SignedHead, Vec<u8>) {
        let body = self
            .request("GET", &format!("/audit?from={from}&to={to}"), None)
            .ok();
        (head_of(&body), proof_of(&body))
    }
}

fn head_of(body: &Value) -> SignedHead {
    SignedHead::from_bytes(&hex::decode(body["head"].as_str().unwrap()).unwrap()).unwrap()
}

fn proof_of(body: &Value) -> Vec<u8> {
    hex::decode(body["proof"].as_str().unwrap()).unwrap()
}
