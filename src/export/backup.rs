//! The report's `backup` section: the user's backup setting, the last backup, and the
//! restore the device was made from, with the consent-ledger head the backup carried so
//! a reader can see the consent history and the legacy opt-out came back exactly.

use super::json::{Json, hex};
use crate::backup::BackupStatus;
use crate::policy::{ConsentLedger, format_utc};

pub(super) fn section(status: &BackupStatus, ledger: &ConsentLedger) -> Json {
    let ts = |t| Json::str(format_utc(t));
    let last = match &status.last_backup {
        Some((at, stamp)) => Json::Obj(vec![
            ("at", ts(*at)),
            ("generation", Json::Num(stamp.generation)),
        ]),
        None => Json::Null,
    };
    let restored = match &status.restored {
        Some(r) => {
            let exact = r.consent_ledger_head == ConsentLedger::new().head()
                || ledger
                    .entries()
                    .iter()
                    .any(|e| e.hash() == &r.consent_ledger_head);
            Json::Obj(vec![
                ("restored_at", ts(r.restored_at)),
                ("backup_created_at", ts(r.backup_created_at)),
                ("backup_generation", Json::Num(r.stamp.generation)),
                (
                    "consent_ledger_head_in_backup",
                    Json::str(hex(&r.consent_ledger_head)),
                ),
                ("consent_history_restored_exactly", Json::Bool(exact)),
                ("legacy_opt_out_in_backup", Json::Bool(r.legacy_opt_out)),
                (
                    "statement",
                    Json::str(if r.legacy_opt_out {
                        "This device was restored from an end-to-end encrypted backup. Your consent history came back exactly, and your 2016 opt-out from data sharing is still honoured."
                    } else {
                        "This device was restored from an end-to-end encrypted backup. Your consent history came back exactly."
                    }),
                ),
            ])
        }
        None => Json::Null,
    };
    Json::Obj(vec![
        ("setting", Json::str(status.setting.as_str())),
        ("last_backup", last),
        ("restored", restored),
    ])
}
