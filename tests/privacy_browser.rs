//! Renders `account_info.html` in headless Chromium and proves that group names such as
//! `<script>…</script>` and `<img src=x onerror=…>` are shown as text and run nothing.
//!
//! Installs Debian's `chromium` when `/usr/bin/chromium` is missing (the tests run as
//! root in CI). If that fails, the test fails: it is never skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod privacy_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use privacy_common::{IMG_GROUP, SCRIPT_GROUP, d, world};

const CHROMIUM: &str = "/usr/bin/chromium";

fn ensure_chromium() {
    if Path::new(CHROMIUM).exists() {
        return;
    }
    let run = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    let ok = run(&["update"]) && run(&["install", "-y", "--no-install-recommends", "chromium"]);
    assert!(
        ok && Path::new(CHROMIUM).exists(),
        "headless-browser test needs Debian's chromium at {CHROMIUM}; installing it with \
         `apt-get update && apt-get install -y --no-install-recommends chromium` failed \
         (run as root with network access to the Debian mirrors)"
    );
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("confide-browser-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs chromium headless on `page` with a fresh profile; `extra` picks the output.
fn chromium(page: &Path, profile: &Path, extra: &[String]) -> std::process::Output {
    let mut cmd = Command::new("timeout");
    cmd.arg("180").arg(CHROMIUM).args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--virtual-time-budget=3000",
        "--window-size=1200,2000",
    ]);
    cmd.arg(format!("--user-data-dir={}", profile.display()));
    cmd.args(extra);
    cmd.arg(format!("file://{}", page.display()));
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "chromium failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn dump_dom(page: &Path, dir: &Path) -> String {
    let profile = dir.join(format!(
        "profile-dom-{}",
        page.file_name().unwrap().to_string_lossy()
    ));
    let out = chromium(page, &profile, &["--dump-dom".to_owned()]);
    String::from_utf8(out.stdout).unwrap()
}

fn title(dom: &str) -> &str {
    let start = dom.find("<title>").unwrap() + "<title>".len();
    let end = dom[start..].find("</title>").unwrap();
    &dom[start..start + end]
}

#[test]
fn hostile_group_names_render_as_text_and_run_nothing() {
    ensure_chromium();
    let dir = scratch("report");
    let html = world().report(d(2021, 8, 1)).to_html();
    let page = dir.join("account_info.html");
    std::fs::write(&page, &html).unwrap();

    // Control: the same payloads, unescaped in a page without a CSP, do run, and the
    // checks below notice. Otherwise a passing test could mean nothing.
    let control = dir.join("control.html");
    std::fs::write(
        &control,
        format!("<!DOCTYPE html><html><head><title>control</title></head><body>{SCRIPT_GROUP}{IMG_GROUP}</body></html>"),
    )
    .unwrap();
    let control_dom = dump_dom(&control, &dir);
    assert!(
        title(&control_dom).starts_with("pwned"),
        "control page did not run its payload: {control_dom}"
    );
    assert!(control_dom.contains("id=\"xss-script\"") || control_dom.contains("<body data-xss"));

    let dom = dump_dom(&page, &dir);
    assert_eq!(
        title(&dom),
        "Account information",
        "a payload changed the title"
    );
    assert!(
        !dom.contains("id=\"xss-script\""),
        "the script payload added an element"
    );
    assert!(!dom.contains("<body data-xss"), "the onerror payload ran");
    assert!(
        !dom.contains("<script"),
        "a script element exists in the DOM"
    );
    assert!(!dom.contains("<img"), "an img element exists in the DOM");
    assert!(!dom.contains("<blink"));
    // The names are in the DOM as text: serialized text nodes show the escapes.
    assert!(
        dom.contains("&lt;script&gt;document.title='pwned';"),
        "script name not shown as text"
    );
    assert!(
        dom.contains("&lt;img src=x onerror=\"document.title='pwned-img'"),
        "img name not shown as text"
    );
    assert!(dom.contains("You opted out on 2016-09-10"));

    let png = dir.join("account_info.png");
    let profile = dir.join("profile-shot");
    chromium(
        &page,
        &profile,
        &[format!("--screenshot={}", png.display())],
    );
    let bytes =
        std::fs::read(&png).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", png.display()));
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert!(
        bytes.len() > 20_000,
        "screenshot suspiciously small: {} bytes",
        bytes.len()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
