//! Fuzz targets for confide: the target bodies ([`targets`], and [`parsers`] for the
//! group, sealed sender, content and privacy parsers) and the two-device action
//! interpreter ([`actions`]). The files live in the main crate's `tests/fuzz/`, so they
//! ship with the published package: its tests (`tests/actions.rs`,
//! `tests/fuzz_corpus.rs`) compile the same files through `#[path]` modules and replay
//! the committed corpus (`tests/fuzz/corpus/`) without libFuzzer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../tests/fuzz/actions.rs"]
pub mod actions;
#[path = "../../tests/fuzz/parsers.rs"]
pub mod parsers;
#[path = "../../tests/fuzz/targets.rs"]
pub mod targets;
#[path = "../../tests/fuzz/v4.rs"]
pub mod v4;
