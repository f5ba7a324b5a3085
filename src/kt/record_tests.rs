//! Every rule of the record bookkeeping, one named test each.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::record::*;
use super::*;
use crate::Timestamp;
use crate::keys::IdentityKeyPair;

const T: Timestamp = Timestamp::from_millis(1_800_000_000_000);

fn key(seed: u8) -> IdentityKey {
    use rand_core::SeedableRng;
    let mut rng = rand_chacha::ChaCha20Rng::from_seed([seed; 32]);
    *IdentityKeyPair::generate(&mut rng).identity_key()
}

fn head(epoch: u64, root: u8) -> SignedHead {
    SignedHead::unsigned("ns", T, epoch, [root; 32])
}

fn ver(epoch: u64, version: u64, k: &IdentityKey) -> Verified {
    Verified {
        epoch,
        version,
        value: value(k),
    }
}

/// A contact last verified at `(epoch, root)` with `version` of key `k` (held).
fn recorded(epoch: u64, root: u8, version: u64, k: &IdentityKey) -> (ContactRecord, HeadLog) {
    let (r, log, check) = check_lookup(
        None,
        &HeadLog::default(),
        &head(epoch, root),
        &ver(1, version, k),
        k,
        T,
    )
    .unwrap();
    assert_eq!(check, KeyCheck::Verified { epoch, version });
    (r, log)
}

#[test]
fn first_lookup_of_the_held_key_is_verified_and_recorded() {
    let (r, log) = recorded(3, 7, 2, &key(1));
    assert_eq!(
        (r.epoch(), r.root(), r.version(), *r.key(), r.at()),
        (3, [7; 32], 2, key(1), T)
    );
    assert_eq!(log.root(3), Some([7; 32]));
    assert_eq!(log.len(), 1);
}

#[test]
fn a_directory_key_other_than_the_held_one_is_a_mismatch_and_recorded_as_the_directorys() {
    let (r, _, check) = check_lookup(
        None,
        &HeadLog::default(),
        &head(3, 7),
        &ver(1, 2, &key(2)),
        &key(1),
        T,
    )
    .unwrap();
    assert_eq!(
        check,
        KeyCheck::Mismatch {
            epoch: 3,
            version: 2,
            directory_key: key(2)
        }
    );
    assert_eq!((r.version(), *r.key()), (2, key(2)));
    // The next check against the unchanged directory is the same mismatch, not a
    // conflict or an unexplained change.
    let (_, _, again) = check_lookup(
        Some(&r),
        &HeadLog::default(),
        &head(4, 8),
        &ver(1, 2, &key(2)),
        &key(1),
        T,
    )
    .unwrap();
    assert!(matches!(again, KeyCheck::Mismatch { epoch: 4, .. }));
}

#[test]
fn epoch_rolled_back() {
    let (r, log) = recorded(5, 1, 1, &key(1));
    assert_eq!(
        check_lookup(Some(&r), &log, &head(4, 2), &ver(1, 1, &key(1)), &key(1), T),
        Err(RecordViolation::EpochRolledBack { last: 5, got: 4 })
    );
}

#[test]
fn version_rolled_back() {
    let (r, log) = recorded(5, 1, 2, &key(1));
    assert_eq!(
        check_lookup(Some(&r), &log, &head(6, 2), &ver(1, 1, &key(1)), &key(1), T),
        Err(RecordViolation::VersionRolledBack { last: 2, got: 1 })
    );
}

#[test]
fn forked_root_seen_with_another_contact() {
    // The log learnt epoch 3's root from one contact; another contact's proof comes
    // with a second root for epoch 3.
    let (_, log) = recorded(3, 1, 1, &key(1));
    assert_eq!(
        check_lookup(None, &log, &head(3, 2), &ver(1, 1, &key(2)), &key(2), T),
        Err(RecordViolation::ForkedRoot { epoch: 3 })
    );
}

#[test]
fn forked_root_against_the_contacts_own_record_when_the_log_lost_it() {
    let (r, _) = recorded(3, 1, 1, &key(1));
    assert_eq!(
        check_lookup(
            Some(&r),
            &HeadLog::default(),
            &head(3, 2),
            &ver(1, 1, &key(1)),
            &key(1),
            T
        ),
        Err(RecordViolation::ForkedRoot { epoch: 3 })
    );
}

#[test]
fn history_conflict_same_version_other_key() {
    let (r, log) = recorded(3, 1, 1, &key(1));
    assert_eq!(
        check_lookup(Some(&r), &log, &head(4, 2), &ver(1, 1, &key(2)), &key(1), T),
        Err(RecordViolation::HistoryConflict { version: 1 })
    );
}

#[test]
fn unexplained_key_change() {
    let (r, log) = recorded(3, 1, 1, &key(1));
    assert_eq!(
        check_lookup(Some(&r), &log, &head(4, 2), &ver(4, 2, &key(2)), &key(1), T),
        Err(RecordViolation::UnexplainedKeyChange {
            last_version: 1,
            version: 2,
            directory_key: key(2)
        })
    );
}

#[test]
fn a_rotation_the_sessions_followed_is_verified() {
    let (r, log) = recorded(3, 1, 1, &key(1));
    let (r, log, check) =
        check_lookup(Some(&r), &log, &head(4, 2), &ver(4, 2, &key(2)), &key(2), T).unwrap();
    assert_eq!(
        check,
        KeyCheck::Verified {
            epoch: 4,
            version: 2
        }
    );
    assert_eq!((r.epoch(), r.version(), *r.key()), (4, 2, key(2)));
    assert_eq!((log.root(3), log.root(4)), (Some([1; 32]), Some([2; 32])));
    // A third key the sessions did not follow, held neither, is a mismatch.
    let (_, _, check) =
        check_lookup(Some(&r), &log, &head(5, 3), &ver(5, 3, &key(3)), &key(1), T).unwrap();
    assert!(matches!(check, KeyCheck::Mismatch { version: 3, .. }));
}

#[test]
fn the_same_head_again_is_accepted() {
    let (r, log) = recorded(3, 1, 1, &key(1));
    let (r2, log2, check) =
        check_lookup(Some(&r), &log, &head(3, 1), &ver(1, 1, &key(1)), &key(1), T).unwrap();
    assert_eq!(
        check,
        KeyCheck::Verified {
            epoch: 3,
            version: 1
        }
    );
    assert_eq!((r2, log2), (r, log));
}

#[test]
fn malformed_value() {
    // Too short, and the right length with another key type byte.
    let mut other_type = value(&key(1));
    other_type[0] = 0x04;
    for bad in [value(&key(1))[..32].to_vec(), other_type] {
        let v = Verified {
            epoch: 1,
            version: 1,
            value: bad,
        };
        assert_eq!(
            check_lookup(None, &HeadLog::default(), &head(1, 1), &v, &key(1), T),
            Err(RecordViolation::MalformedValue)
        );
    }
    let v = Verified {
        epoch: 1,
        version: 1,
        value: vec![1, 2, 3],
    };
    assert_eq!(
        check_history(None, &HeadLog::default(), &head(1, 1), &[v]),
        Err(RecordViolation::MalformedValue)
    );
}

#[test]
fn head_log_is_bounded_and_drops_the_oldest_epochs() {
    let (_, mut log) = recorded(1, 1, 1, &key(1));
    for e in 2..=(HeadLog::CAPACITY as u64 + 10) {
        let (_, l) = check_history(None, &log, &head(e, e as u8), &[]).unwrap();
        log = l;
    }
    assert_eq!(log.len(), HeadLog::CAPACITY);
    assert_eq!(log.root(1), None);
    assert_eq!(log.root(10), None);
    assert_eq!(log.root(11), Some([11; 32]));
    let last = HeadLog::CAPACITY as u64 + 10;
    assert_eq!(log.root(last), Some([last as u8; 32]));
    assert_eq!(HeadLog::from_bytes(&log.to_bytes()).unwrap(), log);
}

#[test]
fn records_round_trip_and_refuse_corrupt_bytes() {
    use prost::Message;
    let (r, log) = recorded(3, 1, 1, &key(1));
    assert_eq!(ContactRecord::from_bytes(&r.to_bytes()).unwrap(), r);
    assert_eq!(HeadLog::from_bytes(&log.to_bytes()).unwrap(), log);
    assert!(HeadLog::default().is_empty());
    assert!(ContactRecord::from_bytes(&[0xff]).is_err());
    let mut p = crate::proto::kt::ContactRecord::decode(r.to_bytes().as_slice()).unwrap();
    p.key.pop();
    assert!(ContactRecord::from_bytes(&p.encode_to_vec()).is_err());
    let mut p = crate::proto::kt::ContactRecord::decode(r.to_bytes().as_slice()).unwrap();
    p.format_version = 9;
    assert!(ContactRecord::from_bytes(&p.encode_to_vec()).is_err());
    let entry = |epoch, len| crate::proto::kt::EpochRoot {
        epoch,
        root: vec![0; len],
    };
    for heads in [
        vec![entry(2, 32), entry(2, 32)],
        vec![entry(3, 32), entry(2, 32)],
        vec![entry(1, 31)],
        (0..=HeadLog::CAPACITY as u64)
            .map(|e| entry(e, 32))
            .collect(),
    ] {
        let bytes = crate::proto::kt::HeadLog {
            format_version: 1,
            heads,
        }
        .encode_to_vec();
        assert!(HeadLog::from_bytes(&bytes).is_err());
    }
}

#[test]
fn history_counts_versions_newer_than_the_last_verified() {
    let (r, log) = recorded(3, 1, 1, &key(1));
    let versions = [ver(5, 3, &key(3)), ver(4, 2, &key(2)), ver(1, 1, &key(1))];
    let (h, log2) = check_history(Some(&r), &log, &head(5, 5), &versions).unwrap();
    assert_eq!(h.new_since_last_check, 2);
    let keys: Vec<_> = h
        .versions
        .iter()
        .map(|v| (v.epoch, v.version, v.key))
        .collect();
    assert_eq!(keys, vec![(5, 3, key(3)), (4, 2, key(2)), (1, 1, key(1))]);
    assert_eq!(log2.root(5), Some([5; 32]));
    // Never verified: every version is new.
    let (h, _) = check_history(None, &log, &head(5, 5), &versions).unwrap();
    assert_eq!(h.new_since_last_check, 3);
    // Nothing since.
    let (h, _) = check_history(Some(&r), &log, &head(5, 5), &versions[2..]).unwrap();
    assert_eq!(h.new_since_last_check, 0);
}

#[test]
fn history_conflict_with_the_last_verified_version() {
    let (r, log) = recorded(3, 1, 1, &key(1));
    // Version 1 with another key.
    let other = [ver(4, 2, &key(2)), ver(1, 1, &key(9))];
    assert_eq!(
        check_history(Some(&r), &log, &head(5, 5), &other),
        Err(RecordViolation::HistoryConflict { version: 1 })
    );
    // Version 1 missing from a complete history.
    let missing = [ver(4, 2, &key(2))];
    assert_eq!(
        check_history(Some(&r), &log, &head(5, 5), &missing),
        Err(RecordViolation::HistoryConflict { version: 1 })
    );
}

#[test]
fn history_version_rolled_back() {
    let (r, log) = recorded(3, 1, 2, &key(1));
    assert_eq!(
        check_history(Some(&r), &log, &head(5, 5), &[ver(1, 1, &key(1))]),
        Err(RecordViolation::VersionRolledBack { last: 2, got: 1 })
    );
}

#[test]
fn history_epoch_rolled_back_and_forked_root() {
    let (r, log) = recorded(3, 1, 1, &key(1));
    let versions = [ver(1, 1, &key(1))];
    assert_eq!(
        check_history(Some(&r), &log, &head(2, 2), &versions),
        Err(RecordViolation::EpochRolledBack { last: 3, got: 2 })
    );
    assert_eq!(
        check_history(None, &log, &head(3, 2), &versions),
        Err(RecordViolation::ForkedRoot { epoch: 3 })
    );
}
