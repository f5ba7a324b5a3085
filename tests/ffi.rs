//! The C ABI example: its header matches the Rust side, and a C and a Python program
//! use it for a real session.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `cargo test` builds examples, so the cdylib sits beside this test binary's folder.
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    assert!(
        dir.join("libconfide_ffi.so").exists(),
        "libconfide_ffi.so missing in {}: run `cargo test` (which builds examples)",
        dir.display()
    );
    dir
}

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
    let dir = std::env::temp_dir().join(format!("confide-ffi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("demo");
    build_demo(&exe);
    let out = Command::new(&exe).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("bob read: hello from C"), "{stdout}");
    assert!(stdout.contains("alice read: hi C, Bob here"), "{stdout}");
    assert!(
        stdout.contains("corrupted message refused: code 2"),
        "{stdout}"
    );
    assert!(stdout.contains("replay refused: code 3"), "{stdout}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn python_demo_runs() {
    let lib = lib_dir().join("libconfide_ffi.so");
    let out = Command::new("python3")
        .arg(root().join("examples/ffi/confide.py"))
        .arg(&lib)
        .output()
        .expect("python3 is needed for this test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "confide.py failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("bob read: hello from Python"), "{stdout}");
    assert!(
        stdout.contains("corrupted message refused: code 2"),
        "{stdout}"
    );
}
