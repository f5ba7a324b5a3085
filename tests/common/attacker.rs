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

// ---- the Kyber prekey rows (protocol v4), on either store ---------------------------

/// What the Kyber cases need of a backend's attacker: table names without a backend's
/// prefix, and filters that name rows within the device (the PostgreSQL attacker adds
/// the owner).
pub(crate) trait DbAttacker {
    /// Keeps a copy of the rows of `table` matching `filter` as `copy`.
    fn save(&mut self, copy: &str, table: &str, filter: &str);
    /// Puts the copy back in place of whatever rows now match `filter`.
    fn restore(&mut self, copy: &str, table: &str, filter: &str);
    /// Runs `UPDATE table SET <set> WHERE <filter>`, or `DELETE` when `set` is empty.
    fn edit(&mut self, table: &str, set: &str, filter: &str);
    /// The sealed value `v` of the one row of `table` matching `filter`.
    fn value(&mut self, table: &str, filter: &str) -> Vec<u8>;
    /// Sets the sealed value `v` of the one row of `table` matching `filter`.
    fn set_value(&mut self, table: &str, filter: &str, v: &[u8]);
}

/// What the attacker does to a device's Kyber prekey rows.
#[derive(Clone, Copy, Debug)]
pub(crate) enum KyberAttack {
    /// Deletes the recorded uses of the last-resort key, so a replayed handshake would
    /// be taken as new.
    DeletedUses,
    /// Moves the recorded uses to another last-resort key's id.
    MovedUses,
    /// Deletes a one-time and the last-resort Kyber prekey.
    DeletedKeys,
    /// Puts a one-time Kyber prekey back after a session used it.
    ReinsertedOneTime,
    /// Puts the last-resort key and its recorded uses back to their copies from before
    /// the app saved a new record under its id (which forgot the uses).
    RolledBack,
    /// Swaps the sealed values of a one-time key and the last-resort key, so the
    /// one-time key would stay after use.
    SwappedKeys,
}

impl KyberAttack {
    pub(crate) const ALL: [Self; 6] = [
        Self::DeletedUses,
        Self::MovedUses,
        Self::DeletedKeys,
        Self::ReinsertedOneTime,
        Self::RolledBack,
        Self::SwappedKeys,
    ];
}

/// The Kyber prekey rows of a fresh device `s` under `attack` by `x`. The device has
/// one-time keys 1 and 2 and last-resort keys 3 and 4; two session commits recorded two
/// uses of key 3. With `settled`, 70 more writes follow, so the integrity head moves
/// the Kyber rows' records down into its leaves before the attack. After the attack
/// each affected read fails as a tampered row of its table, a replayed handshake (a
/// session commit naming a recorded use, from another address) is not committed, and
/// `verify` reports the device as tampered.
pub(crate) fn kyber_attack<S: DurableStore>(
    attack: KyberAttack,
    settled: bool,
    s: &S,
    x: &mut dyn DbAttacker,
    e: &mut Expect,
) {
    use confide::store::{Commit, CommitOutcome, KyberPreKeyUse, RowVersion};
    use confide::{Address, SessionRecord};

    let what = |w: &str| format!("[{attack:?}, settled: {settled}] {w}");
    let k = s.kyber_pre_keys().unwrap();
    let txn = s.transactional().unwrap();
    k.save_kyber_pre_key(1, b"kyber one-time 1", false).unwrap();
    k.save_kyber_pre_key(2, b"kyber one-time 2", false).unwrap();
    k.save_kyber_pre_key(3, b"kyber last resort 3", true)
        .unwrap();
    k.save_kyber_pre_key(4, b"kyber last resort 4", true)
        .unwrap();
    let record = SessionRecord::new();
    let commit = |who: &str, used: KyberPreKeyUse| {
        let who = Address::new(who, 1);
        let c =
            Commit::session(&who, RowVersion::ABSENT, &record).with_kyber_pre_key_use(Some(used));
        let got = txn.commit(&c);
        (got, s.session(&who).map(|r| r.is_some()))
    };
    let base = crate::stores::base_key;
    let used = KyberPreKeyUse::new(3, 7, base(30));
    let other = KyberPreKeyUse::new(3, 7, base(31));
    for (who, u) in [("alice", used), ("bob", other)] {
        assert!(matches!(
            commit(who, u),
            (Ok(CommitOutcome::Committed), Ok(true))
        ));
    }
    if settled {
        for i in 0..70 {
            s.save_state("padding", &i.to_string(), b"moves the head's records down")
                .unwrap();
        }
    }
    let was_used = |u: &KyberPreKeyUse| k.kyber_pre_key_used(u).map(|b| b.then_some(()));
    let key = |id: u32| k.kyber_pre_key(id);
    let mut replays = vec![("a replayed handshake on last-resort key 3", used)];
    match attack {
        KyberAttack::DeletedUses => x.edit("kyber_pre_key_use", "", "kyber_id = 3"),
        // The moved rows are under row ids no read asks for; `verify` opens them.
        KyberAttack::MovedUses => x.edit("kyber_pre_key_use", "kyber_id = 4", "kyber_id = 3"),
        KyberAttack::DeletedKeys => x.edit("kyber_pre_key", "", "id IN (2, 3)"),
        KyberAttack::ReinsertedOneTime => {
            x.save("kyber_one_time", "kyber_pre_key", "id = 1");
            let one_time = KyberPreKeyUse::new(1, 7, base(32));
            assert!(matches!(
                commit("carol", one_time),
                (Ok(CommitOutcome::Committed), Ok(true))
            ));
            assert!(key(1).unwrap().is_none(), "used by the commit");
            x.restore("kyber_one_time", "kyber_pre_key", "id = 1");
            e.tampered(&what("kyber_pre_key(1)"), key(1), "kyber_pre_key");
            let again = KyberPreKeyUse::new(1, 7, base(33));
            e.tampered(
                &what("mark_kyber_pre_key_used(1, again)"),
                k.mark_kyber_pre_key_used(&again).map(|b| b.then_some(())),
                "kyber_pre_key",
            );
            replays = vec![("a second session on the used one-time key 1", again)];
        }
        KyberAttack::RolledBack => {
            x.save("kyber_key", "kyber_pre_key", "id = 3");
            x.save("kyber_uses", "kyber_pre_key_use", "kyber_id = 3");
            k.save_kyber_pre_key(3, b"kyber last resort 3, renewed", true)
                .unwrap();
            assert!(
                !k.kyber_pre_key_used(&used).unwrap(),
                "forgotten by the save"
            );
            x.restore("kyber_key", "kyber_pre_key", "id = 3");
            x.restore("kyber_uses", "kyber_pre_key_use", "kyber_id = 3");
            e.tampered(&what("kyber_pre_key(3)"), key(3), "kyber_pre_key");
        }
        KyberAttack::SwappedKeys => {
            let (two, three) = (
                x.value("kyber_pre_key", "id = 2"),
                x.value("kyber_pre_key", "id = 3"),
            );
            x.set_value("kyber_pre_key", "id = 3", &two);
            x.set_value("kyber_pre_key", "id = 2", &three);
            let one_time = KyberPreKeyUse::new(2, 7, base(34));
            e.tampered(
                &what("mark_kyber_pre_key_used(2)"),
                k.mark_kyber_pre_key_used(&one_time)
                    .map(|b| b.then_some(())),
                "kyber_pre_key",
            );
            replays.push(("a session on the swapped one-time key 2", one_time));
        }
    }
    match attack {
        KyberAttack::DeletedKeys | KyberAttack::SwappedKeys => {
            e.tampered(&what("kyber_pre_key(2)"), key(2), "kyber_pre_key");
            e.tampered(&what("kyber_pre_key(3)"), key(3), "kyber_pre_key");
        }
        KyberAttack::ReinsertedOneTime => {}
        _ => e.tampered(
            &what("kyber_pre_key_used(3, used)"),
            was_used(&used),
            "kyber_pre_key_use",
        ),
    }
    // Refused either way: as tampered, or as a use recorded (when the attack left the
    // uses alone).
    for (i, (replay, u)) in replays.into_iter().enumerate() {
        match commit(&format!("mallory-{i}"), u) {
            (Err(StoreError::Tampered(_)) | Ok(CommitOutcome::Conflict), Ok(false)) => {}
            (got, stored) => e.fail(what(&format!(
                "{replay}: expected a refusal and no session, got {got:?}, session {}",
                show(&stored.map(|b| b.then_some(())))
            ))),
        }
    }
    e.verify_fails(&what("store"), s);
}
