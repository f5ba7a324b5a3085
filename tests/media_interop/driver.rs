//! Installs the pinned npm packages (once per test binary) and talks to `driver.js`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};

use serde_json::{Value, json};

/// The packages `package-lock.json` pins, checked in `node_modules` before use.
const PINNED: &[(&str, &str)] = &[
    ("baileys", "6.17.16"),
    ("@signalapp/libsignal-client", "0.103.0"),
];

const HOW_TO_INSTALL: &str = "the media/fingerprint interop tests need Node.js >= 20 with npm \
     on PATH (Debian: `apt-get install nodejs npm`; or https://nodejs.org). They install \
     their npm packages themselves (`npm ci` in tests/media_interop/).";

pub(crate) fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("media_interop")
}

fn installed_version(package: &str) -> Option<String> {
    let manifest = dir()
        .join("node_modules")
        .join(package)
        .join("package.json");
    let text = std::fs::read_to_string(manifest).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v["version"].as_str().map(str::to_owned)
}

/// Checks node, then runs `npm ci` unless `node_modules` already holds the pinned
/// versions and is newer than the lock file.
fn install() {
    let node = Command::new("node").arg("--version").output();
    match node {
        Ok(out) if out.status.success() => {
            let v = String::from_utf8_lossy(&out.stdout);
            let major: u32 = v
                .trim()
                .trim_start_matches('v')
                .split('.')
                .next()
                .and_then(|m| m.parse().ok())
                .unwrap_or(0);
            assert!(
                major >= 20,
                "node {} is too old: {HOW_TO_INSTALL}",
                v.trim()
            );
        }
        _ => panic!("`node` was not found: {HOW_TO_INSTALL}"),
    }
    let lock = dir().join("package-lock.json");
    let hidden = dir().join("node_modules").join(".package-lock.json");
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let fresh = PINNED
        .iter()
        .all(|(p, v)| installed_version(p).as_deref() == Some(*v))
        && matches!((mtime(&hidden), mtime(&lock)), (Some(h), Some(l)) if h >= l);
    if fresh {
        return;
    }
    eprintln!("media_interop: running `npm ci` in {}", dir().display());
    let out = Command::new("npm")
        .args([
            "ci",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ])
        .current_dir(dir())
        .output()
        .unwrap_or_else(|e| panic!("could not run npm ({e}): {HOW_TO_INSTALL}"));
    assert!(
        out.status.success(),
        "`npm ci` failed in {}:\n{}\n{}",
        dir().display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for (p, v) in PINNED {
        assert_eq!(
            installed_version(p).as_deref(),
            Some(*v),
            "{p} after npm ci"
        );
    }
}

pub(crate) struct Driver {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Driver {
    fn start() -> Self {
        let mut d = Self::spawn("driver.js");
        let hello = d.call(json!({"op": "hello"}));
        assert_eq!(hello["baileys"], "6.17.16", "{hello}");
        assert_eq!(hello["libsignal_client"], "0.103.0", "{hello}");
        d
    }

    /// Starts one of this directory's Node scripts (after installing the packages).
    pub(crate) fn spawn(script: &str) -> Self {
        static INSTALLED: OnceLock<()> = OnceLock::new();
        INSTALLED.get_or_init(install);
        let mut child = Command::new("node")
            .arg(dir().join(script))
            .current_dir(dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start node ({e}): {HOW_TO_INSTALL}"));
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            stdin,
            stdout,
            next_id: 1,
        }
    }

    /// Sends one request; returns the whole reply (`ok` may be false).
    pub(crate) fn call(&mut self, mut req: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        req["id"] = json!(id);
        writeln!(self.stdin, "{req}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line).unwrap();
        assert!(
            n > 0,
            "driver.js exited (status {:?}) on {req}",
            self.child.try_wait()
        );
        let reply: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(reply["id"], json!(id), "{reply}");
        reply
    }

    /// Sends one request that must succeed.
    pub(crate) fn ok(&mut self, req: Value) -> Value {
        let reply = self.call(req.clone());
        assert_eq!(reply["ok"], json!(true), "driver.js refused {req}: {reply}");
        reply
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"op": "quit"}));
        let _ = self.child.wait();
    }
}

/// The one driver process of this test binary (requests are sequential anyway).
pub(crate) fn driver() -> MutexGuard<'static, Driver> {
    static DRIVER: OnceLock<Mutex<Driver>> = OnceLock::new();
    DRIVER
        .get_or_init(|| Mutex::new(Driver::start()))
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
