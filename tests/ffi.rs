//! The C ABI example: its header matches the Rust side, and a C and a Python program
//! use it for a real session, a group and sealed-sender messages (v1 and v2).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[path = "common/ffi_lib.rs"]
mod ffi_lib;
use ffi_lib::lib_dir;

fn generated_header() -> String {
    let config = cbindgen::Config::from_file(root().join("cbindgen.toml")).unwrap();
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(root().join("examples/ffi/lib.rs"))
        .generate()
        .unwrap()
        .write(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn header_matches_the_rust_side() {
    let path = root().join("examples/ffi/confide.h");
    let generated = generated_header();
    if std::env::var_os("CONFIDE_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        committed, generated,
        "examples/ffi/confide.h is stale: run CONFIDE_BLESS=1 cargo test --test ffi"
    );
}

/// Builds examples/ffi/demo.c into `out` against the cdylib.
pub fn build_demo(out: &Path) {
    let lib = lib_dir();
    let status = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(out)
        .arg(root().join("examples/ffi/demo.c"))
        .arg("-I")
        .arg(root().join("examples/ffi"))
        .arg("-L")
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-lconfide_ffi")
        .status()
        .expect("a C compiler (cc) is needed for this test");
    assert!(status.success(), "compiling demo.c failed");
}

#[test]
fn c_demo_runs() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("demo");
    build_demo(&exe);
    // The demo makes its SQLite file under TMPDIR and removes it when done.
    let out = Command::new(&exe)
        .env("TMPDIR", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "bob read: hello from C",
        "replay refused: code 3",
        "alice read: hi C, Bob here (redelivered: 0)",
        "redelivered to alice: hi C, Bob here (redelivered: 1)",
        "acknowledged, then refused: code 3",
        "wrong store key refused: code 11",
        "alice reopened: session with bob resumed",
        "bob read: still here after a restart (type 2)",
        "corrupted message refused: code 2",
        "alice read after the corrupted copy: one more from Bob",
        "same on both sides",
        "report before any connection: code 12",
        "(PK header)",
        "group: distribution message (",
        "group: ben read: hello group (redelivered: 0)",
        "group: cat read: hello group",
        "group replay on cat refused: code 3",
        "group: redelivered to ben: hello group (redelivered: 1)",
        "group message acknowledged, then refused: code 3",
        "group message under the wrong sender refused: code 15",
        "corrupted sealed message refused: code 2",
        "foreign trust root refused: code 13",
        "ben unsealed (v1) from 9d0652a3...(device 1), type 3, group id 0 bytes: sealed v1 from ann",
        "ben got the v1 envelope again: sealed v1 from ann (redelivered: 1)",
        "sealed message acknowledged, then refused: code 3",
        "ann unsealed (v2) from 796abedb...(device 1), type 2, group id 0 bytes: sealed v2 from ben",
        "cat unsealed (group v2) from 9d0652a3...(device 1), type 7, group id 10 bytes: sealed to the group",
        "sealed group replay on cat refused: code 3",
        "ben unsealed (group v2) from 9d0652a3...(device 1), type 7, group id 10 bytes: sealed to the group",
        "ben got the sealed group message again: sealed to the group (redelivered: 1)",
        "sealed group message acknowledged, then refused: code 3",
        "expired certificate refused: code 14",
        "group: ben read after the rotation: cat has left",
        "cat, who left, refused: code 15",
        "misuse refused: codes 13 1 1 15 4",
        "null device refused: code 1",
        "demo: ok",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "demo")
        .collect();
    assert!(left.is_empty(), "the demo left files behind: {left:?}");
}

#[test]
fn test_helpers_are_not_in_the_default_abi() {
    let header = std::fs::read_to_string(root().join("examples/ffi/confide.h")).unwrap();
    let at = header.find("confide_test_sender_certificate(").unwrap();
    let guard = header[..at]
        .rfind("#if defined(CONFIDE_FFI_TESTING)")
        .unwrap();
    assert!(
        !header[guard..at].contains("#endif"),
        "confide_test_sender_certificate is declared outside its CONFIDE_FFI_TESTING guard"
    );
    let source = std::fs::read_to_string(root().join("examples/ffi/lib.rs")).unwrap();
    let at = source.find("fn confide_test_sender_certificate(").unwrap();
    assert!(
        source[..at]
            .trim_end()
            .lines()
            .rev()
            .take(4)
            .any(|l| l.contains("cfg(feature = \"ffi-testing\")")),
        "confide_test_sender_certificate is exported without the ffi-testing feature"
    );
}

#[test]
fn python_demo_runs() {
    let lib = lib_dir().join("libconfide_ffi.so");
    // -B and PYTHONDONTWRITEBYTECODE: importing the confide module writes no __pycache__
    // into the tree.
    let out = Command::new("python3")
        .arg("-B")
        .arg(root().join("examples/ffi/demo.py"))
        .arg(&lib)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3 is needed for this test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo.py failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !root().join("examples/ffi/__pycache__").exists(),
        "the Python demo wrote __pycache__ into the tree"
    );
    for line in [
        "bob read: hello from Python",
        "replay refused: code 3",
        "redelivered to alice: hi Python",
        "wrong store key refused: code 11",
        "alice reopened: session with bob resumed",
        "bob read: after the restart",
        "corrupted message refused: code 2",
        "alice read: one more from Bob",
        "safety number: ",
        "group: ben read: hello group from Python",
        "group: cat read: hello group from Python",
        "group replay on cat refused: code 3",
        "group: redelivered to ben: hello group from Python",
        "malformed group acknowledgement refused: code 2",
        "group message acknowledged, then refused: code 3",
        "corrupted sealed message refused: code 2",
        "foreign trust root refused: code 13",
        "ben unsealed (v1): sealed v1 from Python",
        "sealed message acknowledged, then refused: code 3",
        "ann unsealed (v2): sealed v2 from Python",
        "ben unsealed (group v2): sealed to the group",
        "cat unsealed (group v2): sealed to the group",
        "sealed group replay on cat refused: code 3",
        "ben got the sealed group message again: sealed to the group",
        "sealed group message acknowledged, then refused: code 3",
        "group: ben read after the rotation: cat has left",
        "cat, who left, refused: code 15",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
}
