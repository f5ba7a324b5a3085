//! The identity-assurance state: the record's precedence and lapsing, its stored form,
//! the Device calls over an in-memory and an SQLite store, and the account report's
//! `identity_assurance` section (JSON, against the committed schema, and HTML).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use confide::assurance::{
    ASSURANCE_INDEX_KIND, ASSURANCE_KIND, AssuranceLoadError, AssuranceRecord, ContactAssurance,
    IdentityAssurance, key_changes_text,
};
use confide::device::{AccountError, AssuranceError, Device, FixedClock, PrivacyStateError};
use confide::export::{
    ACCOUNT_INFO_SCHEMA, AccountInfo, MessageTimer, PrivacySettings, Profile, Visibility,
};
use confide::policy::{PolicySchedule, timeline_2021, utc_date};
use confide::store::{IdentityStore, InMemoryStore, ProtocolStore, SqliteStore, StoreKey};
use confide::{Address, IdentityKey, IdentityKeyPair, Timestamp};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::Value;

fn key(seed: u64) -> IdentityKey {
    *IdentityKeyPair::generate(&mut ChaCha20Rng::seed_from_u64(seed)).identity_key()
}

fn t(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn at(y: u32, m: u32, d: u32) -> Timestamp {
    utc_date(y, m, d).unwrap()
}

fn bob() -> Address {
    Address::new("bob", 1)
}

// ---- the record: precedence and lapsing -------------------------------------------

#[test]
fn an_empty_record_and_no_held_key_are_unverified() {
    let (a, b) = (key(1), key(2));
    let mut r = AssuranceRecord::new();
    assert_eq!(r.state(Some(&a)), IdentityAssurance::Unverified);
    assert_eq!(r.since(Some(&a)), None);
    r.verified_by_hand(&a, t(5));
    r.directory_mismatch(&b, 3, t(6));
    // No key held: nothing to vouch for.
    assert_eq!(r.state(None), IdentityAssurance::Unverified);
    assert_eq!(r.since(None), None);
}

#[test]
fn precedence_is_mismatch_then_by_hand_then_directory() {
    let a = key(1);
    let mut r = AssuranceRecord::new();
    r.directory_verified(&a, 7, t(10));
    assert_eq!(r.state(Some(&a)), IdentityAssurance::Directory { epoch: 7 });
    assert_eq!(r.since(Some(&a)), Some(t(10)));
    // A comparison by hand is stronger than the directory.
    r.verified_by_hand(&a, t(20));
    assert_eq!(r.state(Some(&a)), IdentityAssurance::VerifiedByHand);
    assert_eq!(r.since(Some(&a)), Some(t(20)));
    // A later directory match does not weaken it.
    r.directory_verified(&a, 8, t(25));
    assert_eq!(r.state(Some(&a)), IdentityAssurance::VerifiedByHand);
    // A mismatch for the held key is the warning: it wins over both.
    r.directory_mismatch(&a, 9, t(30));
    assert_eq!(r.state(Some(&a)), IdentityAssurance::Mismatch { epoch: 9 });
    assert_eq!(r.since(Some(&a)), Some(t(30)));
    // Comparing by hand again does not hide it.
    r.verified_by_hand(&a, t(35));
    assert_eq!(r.state(Some(&a)), IdentityAssurance::Mismatch { epoch: 9 });
    // Until the directory lists the held key again: then the hand check shows.
    r.directory_verified(&a, 10, t(40));
    assert_eq!(r.state(Some(&a)), IdentityAssurance::VerifiedByHand);
    assert_eq!(r.since(Some(&a)), Some(t(35)));
}

#[test]
fn a_later_directory_match_clears_a_mismatch_and_an_older_epoch_does_not() {
    let a = key(1);
    let mut r = AssuranceRecord::new();
    r.directory_mismatch(&a, 12, t(10));
    assert_eq!(r.state(Some(&a)), IdentityAssurance::Mismatch { epoch: 12 });
    // A proof from before the mismatch says nothing about now.
    r.directory_verified(&a, 11, t(20));
    assert_eq!(r.state(Some(&a)), IdentityAssurance::Mismatch { epoch: 12 });
    // The same epoch or a later one does.
    r.directory_verified(&a, 12, t(30));
    assert_eq!(
        r.state(Some(&a)),
        IdentityAssurance::Directory { epoch: 12 }
    );
    assert_eq!(r.since(Some(&a)), Some(t(30)));
    // A match for another key leaves a mismatch for the held key standing.
    r.directory_mismatch(&a, 13, t(40));
    r.directory_verified(&key(2), 14, t(50));
    assert_eq!(r.state(Some(&a)), IdentityAssurance::Mismatch { epoch: 13 });
}

#[test]
fn a_key_change_lapses_every_check() {
    let (old, new) = (key(1), key(2));
    let mut r = AssuranceRecord::new();
    r.verified_by_hand(&old, t(1));
    assert_eq!(r.state(Some(&new)), IdentityAssurance::Unverified);
    assert_eq!(r.since(Some(&new)), None);
    let mut r = AssuranceRecord::new();
    r.directory_verified(&old, 4, t(1));
    assert_eq!(r.state(Some(&new)), IdentityAssurance::Unverified);
    let mut r = AssuranceRecord::new();
    r.directory_mismatch(&old, 4, t(1));
    assert_eq!(r.state(Some(&new)), IdentityAssurance::Unverified);
    // The old key's checks still hold for the old key.
    assert_eq!(
        r.state(Some(&old)),
        IdentityAssurance::Mismatch { epoch: 4 }
    );
}

// ---- the stored form -----------------------------------------------------------------

#[test]
fn the_record_round_trips_and_format_1_is_pinned() {
    let (a, b) = (key(1), key(2));
    let mut r = AssuranceRecord::new();
    r.verified_by_hand(&a, t(1_000));
    r.directory_verified(&b, 42, t(2_000));
    r.directory_mismatch(&a, 43, t(3_000));
    let bytes = r.to_bytes();
    assert_eq!(AssuranceRecord::from_bytes(&bytes).unwrap(), r);
    assert_eq!(
        AssuranceRecord::from_bytes(&AssuranceRecord::new().to_bytes()).unwrap(),
        AssuranceRecord::new()
    );
    let pinned = format_1_record();
    assert_eq!(bytes, pinned);
    let loaded = AssuranceRecord::from_bytes(&pinned).unwrap();
    assert_eq!(
        loaded.state(Some(&a)),
        IdentityAssurance::Mismatch { epoch: 43 }
    );
    assert_eq!(
        loaded.state(Some(&b)),
        IdentityAssurance::Directory { epoch: 42 }
    );
    // Format 1 of a record with all three checks, pinned: it loads and is what this
    // release writes.
    assert_eq!(loaded.to_bytes(), pinned);
}

/// The format-1 bytes, written out field by field (`assurance.proto`).
fn format_1_record() -> Vec<u8> {
    let (a, b) = (key(1).serialize(), key(2).serialize());
    let mut out = vec![0x08, 0x01]; // format_version = 1
    let sub = |tag: u8, k: &[u8; 33], rest: &[u8]| {
        let mut m = vec![0x0a, 33];
        m.extend_from_slice(k);
        m.extend_from_slice(rest);
        let mut f = vec![tag, u8::try_from(m.len()).unwrap()];
        f.extend(m);
        f
    };
    // hand: key a, at_ms 1000 (field 2, varint 0xe8 0x07)
    out.extend(sub(0x12, &a, &[0x10, 0xe8, 0x07]));
    // directory: key b, epoch 42, at_ms 2000
    out.extend(sub(0x1a, &b, &[0x10, 42, 0x18, 0xd0, 0x0f]));
    // mismatch: key a, epoch 43, at_ms 3000
    out.extend(sub(0x22, &a, &[0x10, 43, 0x18, 0xb8, 0x17]));
    out
}

#[test]
fn bad_stored_bytes_are_typed_errors() {
    assert_eq!(
        AssuranceRecord::from_bytes(&[0xff, 0xff, 0xff]),
        Err(AssuranceLoadError::Malformed)
    );
    // format_version 2
    assert_eq!(
        AssuranceRecord::from_bytes(&[0x08, 0x02]),
        Err(AssuranceLoadError::UnsupportedVersion { found: 2 })
    );
    // format_version 0 (absent)
    assert_eq!(
        AssuranceRecord::from_bytes(&[]),
        Err(AssuranceLoadError::UnsupportedVersion { found: 0 })
    );
    // A hand check whose key is 3 bytes.
    assert_eq!(
        AssuranceRecord::from_bytes(&[0x08, 0x01, 0x12, 0x05, 0x0a, 0x03, 1, 2, 3]),
        Err(AssuranceLoadError::InvalidField {
            field: "hand.identity_key"
        })
    );
    // A mismatch whose key is missing.
    assert_eq!(
        AssuranceRecord::from_bytes(&[0x08, 0x01, 0x22, 0x02, 0x10, 0x01]),
        Err(AssuranceLoadError::InvalidField {
            field: "mismatch.held_key"
        })
    );
    assert_eq!(AssuranceLoadError::Malformed.code(), "InvalidMessage");
}

// ---- the texts -------------------------------------------------------------------------

#[test]
fn codes_and_notice_texts_are_pinned() {
    let states = [
        (
            IdentityAssurance::Unverified,
            "identity_unverified",
            "The security code for this chat has not been verified. To make sure your messages go only to this contact, compare the security code with them in person.",
        ),
        (
            IdentityAssurance::Directory { epoch: 42 },
            "identity_verified_by_directory",
            "The security code for this chat was verified automatically: it matches the key this contact published in the public key directory (directory epoch 42). To be certain, you can also compare the security code with them in person.",
        ),
        (
            IdentityAssurance::VerifiedByHand,
            "identity_verified_by_hand",
            "You verified the security code for this chat by comparing it with this contact. If their security code changes, it is no longer verified.",
        ),
        (
            IdentityAssurance::Mismatch { epoch: 43 },
            "identity_mismatch",
            "Warning: the security code for this chat does not match the key this contact published in the public key directory (directory epoch 43). Someone may be able to read your messages. Compare the security code with them in person before you send anything sensitive.",
        ),
    ];
    for (state, code, text) in states {
        assert_eq!(state.code(), code);
        assert_eq!(state.default_text(), text);
    }
}

#[test]
fn key_change_counts_read_as_english() {
    assert_eq!(key_changes_text("Bob", 0), None);
    let said = |n| key_changes_text("Bob", n).unwrap();
    assert_eq!(
        said(1),
        "Bob's security code changed once since you last checked."
    );
    assert_eq!(
        said(2),
        "Bob's security code changed twice since you last checked."
    );
    assert_eq!(
        said(3),
        "Bob's security code changed three times since you last checked."
    );
    assert_eq!(
        said(9),
        "Bob's security code changed nine times since you last checked."
    );
    assert_eq!(
        said(10),
        "Bob's security code changed 10 times since you last checked."
    );
    assert_eq!(
        said(1234),
        "Bob's security code changed 1234 times since you last checked."
    );
    assert_eq!(
        key_changes_text(" ", 2).unwrap(),
        "This contact's security code changed twice since you last checked."
    );
}

// ---- through the Device ------------------------------------------------------------------

fn memory_device(clock: &FixedClock) -> Device<InMemoryStore, ChaCha20Rng, FixedClock> {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let store = InMemoryStore::generate(&mut rng);
    Device::new(store, Address::new("alice", 1), rng, clock.clone())
}

fn sqlite_device(path: &Path, clock: &FixedClock) -> Device<SqliteStore, ChaCha20Rng, FixedClock> {
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let store = SqliteStore::open(path, &StoreKey::from_bytes([3; 32]), &mut rng).unwrap();
    Device::open(store, Address::new("alice", 1), rng, clock.clone()).unwrap()
}

fn states<S: ProtocolStore>(
    d: &Device<S, ChaCha20Rng, FixedClock>,
) -> Vec<(Address, IdentityAssurance)> {
    d.identity_assurances()
        .unwrap()
        .into_iter()
        .map(|c| (c.contact, c.state))
        .collect()
}

/// The state store's raw rows for the contact's record and the index.
fn rows<S: ProtocolStore>(
    d: &Device<S, ChaCha20Rng, FixedClock>,
    contact: &str,
) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let st = d.store().state_store().unwrap();
    (
        st.state(ASSURANCE_KIND, contact)
            .unwrap()
            .map(|v| v.to_vec()),
        st.state(ASSURANCE_INDEX_KIND, "")
            .unwrap()
            .map(|v| v.to_vec()),
    )
}

fn hand_verification_and_key_change<S: ProtocolStore>(
    d: &Device<S, ChaCha20Rng, FixedClock>,
    clock: &FixedClock,
) {
    let bob = bob();
    // Nothing held: nothing to verify, and nothing written.
    assert_eq!(
        d.identity_assurance(&bob).unwrap(),
        IdentityAssurance::Unverified
    );
    assert!(matches!(
        d.mark_verified_by_hand(&bob),
        Err(AssuranceError::NoIdentity)
    ));
    assert_eq!(rows(d, "bob.1"), (None, None));
    assert!(d.identity_assurances().unwrap().is_empty());

    d.accept_identity(&bob, &key(1)).unwrap();
    assert_eq!(
        d.identity_assurance(&bob).unwrap(),
        IdentityAssurance::Unverified
    );
    clock.set(t(1_000));
    d.mark_verified_by_hand(&bob).unwrap();
    assert_eq!(
        d.identity_assurance(&bob).unwrap(),
        IdentityAssurance::VerifiedByHand
    );
    let carol = Address::new("carol", 2);
    d.accept_identity(&carol, &key(3)).unwrap();
    d.mark_verified_by_hand(&carol).unwrap();
    let listed = d.identity_assurances().unwrap();
    assert_eq!(
        listed,
        [
            ContactAssurance {
                contact: bob.clone(),
                state: IdentityAssurance::VerifiedByHand,
                since: Some(t(1_000)),
            },
            ContactAssurance {
                contact: carol.clone(),
                state: IdentityAssurance::VerifiedByHand,
                since: Some(t(1_000)),
            },
        ]
    );
    // Bob's key changes: the comparison was for the old key.
    d.accept_identity(&bob, &key(2)).unwrap();
    assert_eq!(
        d.identity_assurance(&bob).unwrap(),
        IdentityAssurance::Unverified
    );
    assert_eq!(
        states(d),
        [
            (bob.clone(), IdentityAssurance::Unverified),
            (carol, IdentityAssurance::VerifiedByHand)
        ]
    );
    // Comparing again verifies the new key.
    d.mark_verified_by_hand(&bob).unwrap();
    assert_eq!(
        d.identity_assurance(&bob).unwrap(),
        IdentityAssurance::VerifiedByHand
    );
}

#[test]
fn hand_verification_lapses_on_a_key_change_in_memory() {
    let clock = FixedClock::new(t(0));
    hand_verification_and_key_change(&memory_device(&clock), &clock);
}

#[test]
fn hand_verification_lapses_on_a_key_change_in_sqlite_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let clock = FixedClock::new(t(0));
    hand_verification_and_key_change(&sqlite_device(&path, &clock), &clock);
    // Reopened from the file: the same records and index.
    let d = sqlite_device(&path, &clock);
    assert_eq!(
        states(&d),
        [
            (bob(), IdentityAssurance::VerifiedByHand),
            (Address::new("carol", 2), IdentityAssurance::VerifiedByHand)
        ]
    );
}

#[test]
fn two_handles_on_one_database_lose_no_index_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let clock = FixedClock::new(t(0));
    let names: Vec<Address> = (0..16)
        .map(|i| Address::new(format!("c{i:02}"), 1))
        .collect();
    {
        let d = sqlite_device(&path, &clock);
        for (i, c) in (100u64..).zip(&names) {
            d.accept_identity(c, &key(i)).unwrap();
        }
    }
    std::thread::scope(|s| {
        for half in names.chunks(8) {
            let (path, clock) = (&path, &clock);
            s.spawn(move || {
                let d = sqlite_device(path, clock);
                for c in half {
                    d.mark_verified_by_hand(c).unwrap();
                }
            });
        }
    });
    let d = sqlite_device(&path, &clock);
    let listed = states(&d);
    assert_eq!(listed.len(), 16);
    assert!(
        listed
            .iter()
            .all(|(_, s)| *s == IdentityAssurance::VerifiedByHand)
    );
    assert_eq!(
        listed.into_iter().map(|(c, _)| c).collect::<Vec<_>>(),
        names
    );
}

#[test]
fn a_failed_call_writes_nothing() {
    let clock = FixedClock::new(t(0));
    let d = memory_device(&clock);
    let bob = bob();
    d.accept_identity(&bob, &key(1)).unwrap();
    let st = d.store().state_store().unwrap();
    // A corrupt index: the hand check is refused and the record row stays absent.
    st.save_state(ASSURANCE_INDEX_KIND, "", b"\xff\xff")
        .unwrap();
    let err = d.mark_verified_by_hand(&bob).unwrap_err();
    assert!(matches!(
        err,
        AssuranceError::State(PrivacyStateError::Corrupt { kind }) if kind == ASSURANCE_INDEX_KIND
    ));
    assert_eq!(err.code(), "Store");
    assert_eq!(rows(&d, "bob.1"), (None, Some(b"\xff\xff".to_vec())));
    assert!(matches!(
        d.identity_assurances(),
        Err(AssuranceError::State(PrivacyStateError::Corrupt { .. }))
    ));
    // A corrupt record: reading and marking are refused, the index is not touched.
    st.remove_state(ASSURANCE_INDEX_KIND, "").unwrap();
    st.save_state(ASSURANCE_KIND, "bob.1", &[0x08, 0x09])
        .unwrap();
    assert!(matches!(
        d.identity_assurance(&bob),
        Err(AssuranceError::State(PrivacyStateError::Corrupt { kind })) if kind == ASSURANCE_KIND
    ));
    assert!(d.mark_verified_by_hand(&bob).is_err());
    assert_eq!(rows(&d, "bob.1"), (Some(vec![0x08, 0x09]), None));
    assert_eq!(AssuranceError::NoIdentity.code(), "UnknownIdentity");
}

/// Stores `record` as `contact`'s, as a key directory check would have (the index row
/// exists from an earlier hand check).
fn store_record<S: ProtocolStore>(
    d: &Device<S, ChaCha20Rng, FixedClock>,
    contact: &str,
    record: &AssuranceRecord,
) {
    d.store()
        .state_store()
        .unwrap()
        .save_state(ASSURANCE_KIND, contact, &record.to_bytes())
        .unwrap();
}

// ---- the report ----------------------------------------------------------------------------

fn info() -> AccountInfo {
    AccountInfo {
        phone_number: "+1 555 0100".into(),
        profile: Profile {
            name: "Alice".into(),
            about: String::new(),
            has_photo: false,
        },
        privacy: PrivacySettings {
            last_seen: Visibility::Contacts,
            profile_photo: Visibility::Contacts,
            about: Visibility::Contacts,
            groups: Visibility::Contacts,
            read_receipts: true,
            default_message_timer: MessageTimer::Off,
        },
        devices: Vec::new(),
        groups: Vec::new(),
        business_chats: Vec::new(),
    }
}

fn schedule() -> PolicySchedule {
    timeline_2021([b"terms 2016", b"terms 2021"], false)
}

/// Every state for one contact each: dave unverified (his key changed), bob by hand,
/// carol by directory, erin mismatched.
fn every_state<S: ProtocolStore>(d: &Device<S, ChaCha20Rng, FixedClock>, clock: &FixedClock) {
    let names = ["bob", "carol", "dave", "erin"];
    for (i, n) in (1u64..).zip(names) {
        d.accept_identity(&Address::new(n, 1), &key(i)).unwrap();
        d.mark_verified_by_hand(&Address::new(n, 1)).unwrap();
    }
    let at_ms = clock_ms(clock);
    let mut carol = AssuranceRecord::new();
    carol.directory_verified(&key(2), 42, at_ms);
    store_record(d, "carol.1", &carol);
    d.accept_identity(&Address::new("dave", 1), &key(30))
        .unwrap();
    let mut erin = AssuranceRecord::new();
    erin.verified_by_hand(&key(4), at_ms);
    erin.directory_mismatch(&key(4), 43, at_ms);
    store_record(d, "erin.1", &erin);
}

fn clock_ms(clock: &FixedClock) -> Timestamp {
    use confide::device::Clock;
    clock.now()
}

fn check_report(json: &Value, html: &str) {
    let entries = json["identity_assurance"].as_array().unwrap();
    let got: Vec<(&str, u64, &str, Value, &str, Value)> = entries
        .iter()
        .map(|e| {
            (
                e["contact"].as_str().unwrap(),
                e["device_id"].as_u64().unwrap(),
                e["state"].as_str().unwrap(),
                e["epoch"].clone(),
                e["notice_code"].as_str().unwrap(),
                e["since"].clone(),
            )
        })
        .collect();
    let since = Value::from("2016-08-20T00:00:00Z");
    assert_eq!(
        got,
        [
            (
                "bob",
                1,
                "verified_by_hand",
                Value::Null,
                "identity_verified_by_hand",
                since.clone()
            ),
            (
                "carol",
                1,
                "verified_by_directory",
                Value::from(42),
                "identity_verified_by_directory",
                since.clone()
            ),
            (
                "dave",
                1,
                "unverified",
                Value::Null,
                "identity_unverified",
                Value::Null
            ),
            (
                "erin",
                1,
                "mismatch",
                Value::from(43),
                "identity_mismatch",
                since
            ),
        ]
    );
    for (e, state) in entries.iter().zip([
        IdentityAssurance::VerifiedByHand,
        IdentityAssurance::Directory { epoch: 42 },
        IdentityAssurance::Unverified,
        IdentityAssurance::Mismatch { epoch: 43 },
    ]) {
        assert_eq!(e["notice_text"], state.default_text());
        assert!(
            html.contains(&state.default_text()),
            "{state:?} in the HTML"
        );
    }
    assert!(
        html.contains("<section id=\"identity_assurance\"><h2>Contacts&#39; security codes</h2>")
    );
    assert!(html.contains("<td>verified_by_directory</td>"));
    assert!(html.contains("<td>mismatch</td>"));
}

/// A validator-free check of the section against the committed schema's enums and the
/// rule that `epoch` is set exactly for the directory states.
fn check_schema(json: &Value) {
    let schema: Value = serde_json::from_str(ACCOUNT_INFO_SCHEMA).unwrap();
    let section = &schema["properties"]["identity_assurance"]["items"];
    let required: Vec<&str> = section["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let states = section["properties"]["state"]["enum"].as_array().unwrap();
    let codes = section["properties"]["notice_code"]["enum"]
        .as_array()
        .unwrap();
    for e in json["identity_assurance"].as_array().unwrap() {
        let keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        let mut sorted_required = required.clone();
        sorted_required.sort_unstable();
        assert_eq!(keys, sorted_required);
        assert!(states.contains(&e["state"]));
        assert!(codes.contains(&e["notice_code"]));
        let directory =
            ["verified_by_directory", "mismatch"].contains(&e["state"].as_str().unwrap());
        assert_eq!(e["epoch"].is_u64(), directory);
    }
}

#[test]
fn the_report_shows_every_state_from_an_in_memory_device() {
    let clock = FixedClock::new(at(2016, 8, 20));
    let d = memory_device(&clock);
    d.record_connection().unwrap();
    every_state(&d, &clock);
    let report = d.account_report(&info(), &schedule()).unwrap();
    let json: Value = serde_json::from_str(&report.to_json()).unwrap();
    check_report(&json, &report.to_html());
    check_schema(&json);
}

#[test]
fn the_report_shows_every_state_from_a_reopened_sqlite_device() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let clock = FixedClock::new(at(2016, 8, 20));
    {
        let d = sqlite_device(&path, &clock);
        d.record_connection().unwrap();
        every_state(&d, &clock);
    }
    let d = sqlite_device(&path, &clock);
    let report = d.account_report(&info(), &schedule()).unwrap();
    let json: Value = serde_json::from_str(&report.to_json()).unwrap();
    check_report(&json, &report.to_html());
    check_schema(&json);
}

#[test]
fn a_device_with_no_checks_reports_an_empty_section_and_a_corrupt_one_fails() {
    let clock = FixedClock::new(at(2016, 8, 20));
    let d = memory_device(&clock);
    d.record_connection().unwrap();
    let report = d.account_report(&info(), &schedule()).unwrap();
    let json: Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["identity_assurance"], serde_json::json!([]));
    assert!(
        report
            .to_html()
            .contains("<section id=\"identity_assurance\">")
    );
    d.store()
        .state_store()
        .unwrap()
        .save_state(ASSURANCE_INDEX_KIND, "", b"junk")
        .unwrap();
    let err = d.account_report(&info(), &schedule()).unwrap_err();
    assert!(matches!(
        err,
        AccountError::Assurance(AssuranceError::State(_))
    ));
    assert_eq!(err.code(), "Store");
}
