//! Process plumbing, after tests/interop/harness.rs: check Node, run `npm ci` once per
//! package-lock change (cross-process lock + stamp), and a `Node` wrapper that speaks
//! JSON lines to driver.js with a reply timeout, killed on drop.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
const STAMP: &str = "node_modules/.confide-npm-ci-stamp";

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("official_interop")
}

fn mtime(p: &Path) -> Option<SystemTime> {
    fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn current(d: &Path) -> bool {
    matches!((mtime(&d.join(STAMP)), mtime(&d.join("package-lock.json"))), (Some(s), Some(l)) if s >= l)
}

fn install() -> Result<(), String> {
    let help = "these interop tests need Node.js 20+ with npm on PATH (e.g. `apt-get install nodejs npm` \
                or `nvm install 20`); the npm packages install themselves on first run";
    let out = Command::new("node")
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run node: {e}; {help}"))?;
    let v = String::from_utf8_lossy(&out.stdout);
    let major: u32 = v
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 20 {
        return Err(format!("found Node {v:?}; {help}"));
    }
    let d = dir();
    if current(&d) {
        return Ok(());
    }
    let lock = d.join(".npm-install.lock");
    let start = Instant::now();
    while fs::create_dir(&lock).is_err() {
        if start.elapsed() > Duration::from_secs(900) {
            return Err("timed out waiting for the npm install lock".into());
        }
        thread::sleep(Duration::from_millis(200));
    }
    let result = if current(&d) {
        Ok(())
    } else {
        eprintln!("official_interop: running `npm ci` in {}", d.display());
        match Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&d)
            .stdin(Stdio::null())
            .output()
        {
            Ok(o) if o.status.success() => {
                fs::write(d.join(STAMP), b"ok\n").map_err(|e| e.to_string())
            }
            Ok(o) => Err(format!(
                "npm ci failed: {}",
                String::from_utf8_lossy(&o.stderr)
            )),
            Err(e) => Err(format!("cannot run npm: {e}; {help}")),
        }
    };
    let _ = fs::remove_dir(&lock);
    result
}

pub(crate) fn ensure_node() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(e) = DONE.get_or_init(install) {
        panic!("official interop setup failed: {e}");
    }
}

/// confide's peer example. `cargo test` builds examples, `cargo test --test
/// official_interop` does not, so this runs `cargo build --example peer` once per test
/// process into the test binary's own target directory and profile (a no-op when the
/// binary is current). `CONFIDE_PEER=/path/to/peer` skips the build.
pub(crate) fn confide_peer() -> PathBuf {
    static PATH: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = PATH.get_or_init(|| {
        if let Some(p) = std::env::var_os("CONFIDE_PEER") {
            return Ok(PathBuf::from(p));
        }
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        // <target>/<profile>/deps/official_interop-HASH
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .ok_or("test binary is not in <target>/<profile>/deps")?;
        let target = profile_dir
            .parent()
            .ok_or("test binary is not in <target>/<profile>/deps")?;
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["build", "--quiet", "--example", "peer", "--target-dir"])
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
                "`cargo build --example peer` failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(profile_dir
            .join("examples")
            .join(format!("peer{}", std::env::consts::EXE_SUFFIX)))
    });
    match built {
        Ok(p) => p.clone(),
        Err(e) => panic!("confide's peer example: {e}"),
    }
}

/// One peer process speaking JSON lines (driver.js, peer.js or confide's peer).
pub(crate) struct Node {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    next_id: u64,
}

impl Node {
    pub(crate) fn spawn() -> Node {
        Self::spawn_script("driver.js")
    }

    /// Runs a Node script of this directory (driver.js or the protocol peer, peer.js).
    pub(crate) fn spawn_script(script: &str) -> Node {
        ensure_node();
        let mut c = Command::new("node");
        c.arg(script).current_dir(dir());
        Self::spawn_command(c)
    }

    /// confide's `examples/peer`, built first if needed (see [`confide_peer`]).
    pub(crate) fn spawn_confide() -> Node {
        Self::spawn_command(Command::new(confide_peer()))
    }

    /// confide's `examples/peer` in protocol v4 mode (`CONFIDE_PEER_VERSION=4`).
    pub(crate) fn spawn_confide_v4() -> Node {
        let mut c = Command::new(confide_peer());
        c.env("CONFIDE_PEER_VERSION", "4");
        Self::spawn_command(c)
    }

    /// confide's peer in persistent mode (`--db PATH --db-key HEX`).
    pub(crate) fn spawn_confide_persistent(db: &Path, key_hex: &str) -> Node {
        let mut c = Command::new(confide_peer());
        c.arg("--db").arg(db).arg("--db-key").arg(key_hex);
        Self::spawn_command(c)
    }

    /// Ends the process with SIGKILL, as a crash would: no `quit`, no flush.
    pub(crate) fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn spawn_command(mut command: Command) -> Node {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start peer process");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Node {
            child,
            stdin,
            lines: rx,
            next_id: 1,
        }
    }

    /// Sends one request; returns the reply (ok or not).
    pub(crate) fn call(&mut self, op: &str, fields: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut req = json!({ "id": id, "op": op });
        if let Value::Object(extra) = fields {
            req.as_object_mut().unwrap().extend(extra);
        }
        let v = self.raw(&req.to_string());
        assert_eq!(v["id"], json!(id), "reply id for {op}: {v}");
        v
    }

    /// Writes one line as it is (it may be malformed) and returns the one reply line.
    pub(crate) fn raw(&mut self, line: &str) -> Value {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}")
            .and_then(|_| stdin.flush())
            .expect("write to peer");
        let reply = self
            .lines
            .recv_timeout(REPLY_TIMEOUT)
            .unwrap_or_else(|e| panic!("peer process gave no reply to {line}: {e}"));
        let v: Value = serde_json::from_str(&reply).expect("reply is JSON");
        assert!(v["ok"].is_boolean(), "reply without a boolean ok: {v}");
        v
    }

    /// Like `call`, but the op must succeed.
    pub(crate) fn ok(&mut self, op: &str, fields: Value) -> Value {
        let v = self.call(op, fields);
        assert_eq!(v["ok"], json!(true), "node op {op} failed: {v}");
        v
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
