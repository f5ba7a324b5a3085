//! Fuzz targets for confide: the target bodies ([`targets`], and [`parsers`] for the
//! group, sealed sender, content and privacy parsers) and the two-device action
//! interpreter ([`actions`]). The same files are compiled into the main crate's tests
//! (`tests/actions.rs`, `tests/fuzz_corpus.rs`) through `#[path]` modules, so the
//! committed corpus is replayed by `cargo test` without libFuzzer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod actions;
pub mod parsers;
pub mod targets;
