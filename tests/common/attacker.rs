//! What the attacker-with-the-database tests expect, shared by tests/store_attacker.rs
//! (SQLite) and tests/postgres.rs (module `attacker`): each test collects every
//! expectation the attacker broke and fails once, at the end, with all of them.
#![allow(dead_code)]

use confide::store::{DurableStore, TamperedRow};
use confide::{DecryptError, Decrypted, StoreError};

/// The table a read failed on as tampered, if that is how it failed.
pub(crate) fn tampered<T>(read: &Result<T, StoreError>) -> Option<&'static str> {
    match read {
        Err(StoreError::Tampered(TamperedRow { table, .. })) => Some(table),
        _ => None,
    }
}

/// A store read's outcome, without the record (session records hold keys).
pub(crate) fn show<T>(read: &Result<Option<T>, StoreError>) -> String {
    match read {
        Ok(Some(_)) => "Ok(Some(..))".to_owned(),
        Ok(None) => "Ok(None)".to_owned(),
        Err(e) => format!("Err({e:?})"),
    }
}

/// A decrypt's outcome, with the (test) plaintext it produced.
pub(crate) fn show_decrypt(r: &Result<Decrypted, DecryptError>) -> String {
    match r {
        Ok(d) => format!(
            "Ok({:?}{})",
            String::from_utf8_lossy(&d.plaintext),
            if d.redelivered { ", redelivered" } else { "" }
        ),
        Err(e) => format!("Err({e:?})"),
    }
}

/// What the attacker got away with: every broken expectation of a test, reported
/// together by [`Expect::done`].
#[derive(Default)]
pub(crate) struct Expect(pub(crate) Vec<String>);

impl Expect {
    pub(crate) fn fail(&mut self, what: String) {
        self.0.push(what);
    }

    /// `read` (named `what`) must fail as a tampered row of `table`.
    pub(crate) fn tampered<T>(
        &mut self,
        what: &str,
        read: Result<Option<T>, StoreError>,
        table: &str,
    ) {
        if tampered(&read) != Some(table) {
            self.fail(format!(
                "{what}: expected Err(Tampered({table:?})), got {}",
                show(&read)
            ));
        }
    }

    /// `verify` of `store` (named `what`) must report a tampered row.
    pub(crate) fn verify_fails(&mut self, what: &str, store: &impl DurableStore) {
        match store.verify() {
            Err(StoreError::Tampered(_)) => {}
            other => self.fail(format!(
                "{what}.verify(): expected Err(Tampered), got {other:?}"
            )),
        }
    }

    /// A decrypt (named `what`) the attack was meant to enable must fail.
    pub(crate) fn refused(&mut self, what: &str, r: &Result<Decrypted, DecryptError>) {
        if r.is_ok() {
            self.fail(format!("{what}: expected Err, got {}", show_decrypt(r)));
        }
    }

    pub(crate) fn done(self) {
        assert!(
            self.0.is_empty(),
            "the attacker got away with {} thing(s):\n  - {}",
            self.0.len(),
            self.0.join("\n  - ")
        );
    }
}
