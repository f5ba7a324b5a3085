//! The report's `identity_assurance` section: for each contact the device recorded a
//! check for, how far it trusts the key it holds now, in plain words.

use super::json::Json;
use crate::assurance::{ContactAssurance, IdentityAssurance};
use crate::policy::format_utc;

/// One entry per contact, in the order given (the device's: sorted by address).
pub(super) fn section(items: &[ContactAssurance]) -> Json {
    Json::Arr(items.iter().map(entry).collect())
}

fn entry(c: &ContactAssurance) -> Json {
    let epoch = match c.state {
        IdentityAssurance::Directory { epoch } | IdentityAssurance::Mismatch { epoch } => {
            Json::Num(epoch)
        }
        _ => Json::Null,
    };
    Json::Obj(vec![
        ("contact", Json::str(c.contact.name())),
        ("device_id", Json::Num(u64::from(c.contact.device_id()))),
        ("state", Json::str(state_name(&c.state))),
        ("epoch", epoch),
        ("notice_code", Json::str(c.state.code())),
        ("notice_text", Json::str(c.state.default_text())),
        ("since", Json::opt_str(c.since.map(format_utc))),
    ])
}

/// The schema's `state` values.
fn state_name(s: &IdentityAssurance) -> &'static str {
    match s {
        IdentityAssurance::Unverified => "unverified",
        IdentityAssurance::Directory { .. } => "verified_by_directory",
        IdentityAssurance::VerifiedByHand => "verified_by_hand",
        IdentityAssurance::Mismatch { .. } => "mismatch",
    }
}
