//! Process plumbing for the interop tests: making sure Node and the npm
//! packages are there, finding confide's peer binary, and the `Peer` wrapper
//! that speaks shared/interop/PEER_PROTOCOL.md to one child process.

use std::collections::VecDeque;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

/// How long one request may take before the peer counts as hung. Generous:
/// a 64 KiB payload through the wasm curve on a loaded 2-core machine.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// How much of a peer's stderr is kept for failure messages.
const STDERR_TAIL: usize = 16 * 1024;

/// The implementations a peer process can be backed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Impl {
    Confide,
    LibsignalNode,
    TsPort,
}

impl Impl {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Impl::Confide => "confide",
            Impl::LibsignalNode => "libsignal-node",
            Impl::TsPort => "ts-port",
        }
    }
}

pub(crate) fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("interop")
}

const NODE_HELP: &str = "The interop tests need Node.js 20 or newer with npm on PATH. \
Install it, e.g. on Debian/Ubuntu from the NodeSource node_20.x apt repository \
(`apt-get install nodejs`, which includes npm), or with nvm (`nvm install 20`), \
then run `cargo test` again; the npm packages install themselves on first run.";

fn node_major_version() -> Result<u32, String> {
    let out = Command::new("node")
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run `node --version`: {e}. {NODE_HELP}"))?;
    if !out.status.success() {
        return Err(format!("`node --version` failed. {NODE_HELP}"));
    }
    let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
    v.trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .ok_or_else(|| format!("cannot parse node version {v:?}. {NODE_HELP}"))
}

fn mtime(p: &Path) -> Option<SystemTime> {
    fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Written into node_modules after a successful `npm ci`; node_modules counts
/// as current when this stamp is at least as new as package-lock.json.
const STAMP: &str = "node_modules/.confide-npm-ci-stamp";

fn node_modules_current(dir: &Path) -> bool {
    match (
        mtime(&dir.join(STAMP)),
        mtime(&dir.join("package-lock.json")),
    ) {
        (Some(stamp), Some(lock)) => stamp >= lock,
        _ => false,
    }
}

/// A cross-process lock (a directory created atomically), because test
/// runners such as nextest run each test in its own process.
struct DirLock(PathBuf);

impl DirLock {
    fn acquire(path: PathBuf) -> Result<DirLock, String> {
        let start = Instant::now();
        loop {
            match fs::create_dir(&path) {
                Ok(()) => return Ok(DirLock(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // A lock older than any sane install was left by a killed run.
                    let stale = mtime(&path)
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > Duration::from_secs(600));
                    if stale {
                        let _ = fs::remove_dir(&path);
                    } else if start.elapsed() > Duration::from_secs(900) {
                        return Err(format!("timed out waiting for lock {}", path.display()));
                    }
                    thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(format!("cannot create lock {}: {e}", path.display())),
            }
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.0);
    }
}

fn install_node_packages() -> Result<(), String> {
    let major = node_major_version()?;
    if major < 20 {
        return Err(format!(
            "found Node.js {major}, need 20 or newer. {NODE_HELP}"
        ));
    }
    let npm_ok = Command::new("npm")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !npm_ok {
        return Err(format!("cannot run `npm --version`. {NODE_HELP}"));
    }
    let dir = interop_dir();
    if node_modules_current(&dir) {
        return Ok(());
    }
    let _lock = DirLock::acquire(dir.join(".npm-install.lock"))?;
    if node_modules_current(&dir) {
        return Ok(()); // another process installed while we waited
    }
    eprintln!("interop: running `npm ci` in {}", dir.display());
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run npm: {e}. {NODE_HELP}"))?;
    if !out.status.success() {
        return Err(format!(
            "`npm ci` in {} failed ({}):\n{}\n{}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    fs::write(dir.join(STAMP), b"npm ci done\n").map_err(|e| format!("cannot write stamp: {e}"))
}

/// Checks Node and installs the npm packages, once per test process.
pub(crate) fn ensure_node() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(e) = DONE.get_or_init(install_node_packages) {
        panic!("interop setup failed: {e}");
    }
}

/// confide's peer example. `cargo test` builds examples next to the test
/// binaries: target/<profile>/deps/interop-HASH -> target/<profile>/examples/peer.
pub(crate) fn confide_peer_path() -> PathBuf {
    if let Some(p) = std::env::var_os("CONFIDE_PEER") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary is not in target/<profile>/deps");
    profile_dir
        .join("examples")
        .join(format!("peer{}", std::env::consts::EXE_SUFFIX))
}

fn command_for(kind: Impl) -> Command {
    match kind {
        Impl::Confide => {
            let path = confide_peer_path();
            assert!(
                path.is_file(),
                "confide's peer binary is missing at {}. Plain `cargo test` builds it; \
                 `cargo test --test interop` alone does not build examples, so run \
                 `cargo build --example peer` first (or set CONFIDE_PEER=/path/to/peer).",
                path.display()
            );
            Command::new(path)
        }
        Impl::LibsignalNode | Impl::TsPort => {
            ensure_node();
            let script = match kind {
                Impl::LibsignalNode => "libsignal_node_peer.js",
                _ => "ts_peer.js",
            };
            let mut c = Command::new("node");
            c.arg(script).current_dir(interop_dir());
            c
        }
    }
}

/// One peer process. Requests go out as JSON lines; each reply is read with a
/// timeout so a hung peer fails the test instead of hanging it. The child is
/// killed on drop.
pub(crate) struct Peer {
    pub(crate) label: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Result<String, String>>,
    stderr: Arc<Mutex<VecDeque<u8>>>,
    next_id: u64,
}

impl Peer {
    pub(crate) fn spawn(kind: Impl, label: &str) -> Peer {
        let mut cmd = command_for(kind);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{label}: cannot start {kind:?} peer: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr_pipe = child.stderr.take().expect("stderr");

        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let mut line = String::new();
                match r.read_line(&mut line) {
                    Ok(0) => break,
                    Ok(_) => {
                        if tx.send(Ok(line)).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        break;
                    }
                }
            }
        });
        // Drain stderr continuously (a full pipe would block the peer) and
        // keep the tail for failure messages.
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let tail = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut t = tail.lock().unwrap();
                t.extend(&buf[..n]);
                let excess = t.len().saturating_sub(STDERR_TAIL);
                t.drain(..excess);
            }
        });
        Peer {
            label: label.to_string(),
            child,
            stdin,
            lines: rx,
            stderr,
            next_id: 1,
        }
    }

    pub(crate) fn stderr_tail(&self) -> String {
        let t = self.stderr.lock().unwrap();
        let (a, b) = t.as_slices();
        let mut v = a.to_vec();
        v.extend_from_slice(b);
        String::from_utf8_lossy(&v).into_owned()
    }

    pub(crate) fn fail(&mut self, what: &str) -> ! {
        let _ = self.child.kill();
        // Give the stderr thread a moment to collect the last words.
        thread::sleep(Duration::from_millis(100));
        panic!(
            "{}: {what}\n--- stderr tail of {} ---\n{}",
            self.label,
            self.label,
            self.stderr_tail()
        );
    }

    /// Writes one raw line and reads one reply line.
    pub(crate) fn raw(&mut self, line: &str) -> Value {
        let Some(stdin) = self.stdin.as_mut() else {
            self.fail("stdin already closed");
        };
        if let Err(e) = stdin
            .write_all(line.as_bytes())
            .and_then(|_| stdin.write_all(b"\n"))
            .and_then(|_| stdin.flush())
        {
            self.fail(&format!("cannot write request ({e}); did the peer exit?"));
        }
        let reply = match self.lines.recv_timeout(REPLY_TIMEOUT) {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => self.fail(&format!("error reading reply: {e}")),
            Err(RecvTimeoutError::Timeout) => self.fail(&format!(
                "no reply within {REPLY_TIMEOUT:?} to {}",
                abbreviate(line)
            )),
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait().ok();
                self.fail(&format!(
                    "exited ({status:?}) without replying to {}",
                    abbreviate(line)
                ))
            }
        };
        match serde_json::from_str::<Value>(&reply) {
            Ok(v) if v.is_object() => v,
            _ => self.fail(&format!(
                "reply is not one JSON object: {:?}",
                abbreviate(&reply)
            )),
        }
    }

    /// Sends `{"id", "op", ...fields}` and returns the reply, checking the id.
    pub(crate) fn call(&mut self, op: &str, fields: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut req = json!({ "id": id, "op": op });
        if let Value::Object(extra) = fields {
            req.as_object_mut().unwrap().extend(extra);
        }
        let line = req.to_string();
        let reply = self.raw(&line);
        if reply.get("id") != Some(&json!(id)) {
            self.fail(&format!(
                "reply id mismatch for {}: {}",
                abbreviate(&line),
                abbreviate(&reply.to_string())
            ));
        }
        match reply.get("ok") {
            Some(Value::Bool(_)) => {}
            _ => self.fail(&format!("reply has no boolean ok: {reply}")),
        }
        reply
    }

    /// Like `call`, but the op must succeed.
    pub(crate) fn ok(&mut self, op: &str, fields: Value) -> Value {
        let reply = self.call(op, fields);
        if reply["ok"] != json!(true) {
            self.fail(&format!(
                "op {op} failed: error={} code={}",
                reply["error"], reply["code"]
            ));
        }
        reply
    }

    /// Closes stdin and waits for the exit status (with a timeout).
    pub(crate) fn close_and_wait(&mut self) -> std::process::ExitStatus {
        self.stdin = None;
        self.wait_exit()
    }

    pub(crate) fn wait_exit(&mut self) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if start.elapsed() < REPLY_TIMEOUT => {
                    thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => self.fail("did not exit"),
                Err(e) => self.fail(&format!("wait failed: {e}")),
            }
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn abbreviate(s: &str) -> String {
    const MAX: usize = 300;
    let s = s.trim_end();
    if s.len() <= MAX {
        s.to_string()
    } else {
        let mut end = MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}... ({} bytes)", &s[..end], s.len())
    }
}
