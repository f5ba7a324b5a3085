//! The C ABI example's cdylib, built for the tests that load it (tests/ffi.rs,
//! tests/hardening_small.rs), included in each with `#[path]`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The folder holding the cdylib, rebuilt first (with the demos' test helpers, feature
/// `ffi-testing`): `cargo test` builds examples, but without that feature, and
/// `cargo test --test ffi` alone builds none, and a stale library would test old code.
pub(crate) fn lib_dir() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            // target/<profile>/deps/ffi-<hash> → target/<profile>
            let exe = std::env::current_exe().unwrap();
            let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
            let target_dir = profile_dir.parent().unwrap();
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut build = Command::new(cargo);
            build
                .args([
                    "build",
                    "--example",
                    "confide_ffi",
                    "--features",
                    "ffi-testing",
                ])
                .arg("--manifest-path")
                .arg(root().join("Cargo.toml"))
                .env("CARGO_TARGET_DIR", target_dir);
            // Cargo hands this test its package's variables; passed on, they differ from
            // a plain build's and make build scripts (ring's) rerun on every switch.
            for (key, _) in std::env::vars_os() {
                let key = key.to_string_lossy();
                if ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_CFG_", "CARGO_BIN_"]
                    .iter()
                    .any(|p| key.starts_with(p))
                    || ["CARGO_CRATE_NAME", "CARGO_PRIMARY_PACKAGE", "OUT_DIR"].contains(&&*key)
                {
                    build.env_remove(&*key);
                }
            }
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                build.arg("--release");
            }
            let status = build.status().unwrap();
            assert!(status.success(), "building the confide_ffi example failed");
            let dir = profile_dir.join("examples");
            assert!(
                dir.join("libconfide_ffi.so").exists(),
                "libconfide_ffi.so missing in {}",
                dir.display()
            );
            dir
        })
        .clone()
}
