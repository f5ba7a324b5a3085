//! Interop: confide's media encryption against npm `baileys` 6.17.16 (every media kind,
//! 0 bytes to 8 MiB, both directions), and confide's safety numbers against
//! `@signalapp/libsignal-client` 0.103.0 (same digits, same scannable bytes, and each
//! side accepting the other's scanned code).
//!
//! Both run in one separate Node.js process, `driver.js` beside this file; nothing of
//! theirs is linked in. Needs Node.js >= 20 with npm on PATH; the pinned packages are
//! installed here on first use (`npm ci` from `package-lock.json`). Without node the
//! tests fail with instructions; they never skip.
//!
//! Randomness is seeded; baileys picks its own media keys (its API takes none), so
//! those differ per run and are printed on failure.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod driver;
mod fingerprints;
mod groups;
mod media;
