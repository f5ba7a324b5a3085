//! Kantara Consent Receipt (KI-CR-v1.1.0) export: each ledger entry as the JSON proof of
//! consent that GDPR Art. 7(1) asks a controller to be able to show.

use super::ledger::{ConsentLedger, LedgerEntry};
use super::purpose::Purpose;
use super::sharing::{ConsentSnapshot, DataCategory, DataFlow, Recipient, evaluate};
use super::version::PolicySchedule;
use crate::export::json::{Json, hex};

/// The receipt format version string.
pub const RECEIPT_VERSION: &str = "KI-CR-v1.1.0";

/// Who issues receipts, and for whom: the fields of a receipt that the ledger does not
/// know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptContext {
    /// Jurisdiction of the controller, e.g. `IE`.
    pub jurisdiction: String,
    /// Language of the receipt, e.g. `en`.
    pub language: String,
    /// The user's id as the controller knows it.
    pub pii_principal_id: String,
    /// The controller's name.
    pub controller: String,
    /// Contact person or office.
    pub contact: String,
    /// Postal address.
    pub address: String,
    /// Email.
    pub email: String,
    /// Phone.
    pub phone: String,
    /// Where the policy can be read.
    pub policy_url: String,
    /// Name of the service consented to.
    pub service: String,
}

/// A receipt could not be produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// No entry at that index.
    #[error("no ledger entry at index {index}")]
    NoSuchEntry {
        /// The index asked for.
        index: usize,
    },
    /// The entry names a version the schedule lacks.
    #[error("the ledger entry names a version the schedule lacks")]
    UnknownVersion,
    /// The hash chain is broken.
    #[error("the consent ledger's hash chain is broken at entry {index}")]
    LedgerTampered {
        /// First bad entry.
        index: usize,
    },
}

/// A UUID-shaped id derived from the entry hash (version nibble 8, "custom"), so the same
/// entry always gets the same receipt id.
fn receipt_id(hash: &[u8; 32]) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&hash[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

impl ConsentLedger {
    /// The Kantara consent receipt for entry `index`, as pretty-printed JSON.
    ///
    /// Declines, deferrals, withdrawals and the opt-out are receipts too: a controller
    /// must be able to show refusals as well as consent. What the entry recorded is in
    /// the non-standard `x-confide` member, with its DPV consent status and the hashes
    /// that tie it into the chain.
    pub fn receipt(
        &self,
        index: usize,
        schedule: &PolicySchedule,
        ctx: &ReceiptContext,
    ) -> Result<String, ReceiptError> {
        self.verify()
            .map_err(|index| ReceiptError::LedgerTampered { index })?;
        let entry = self
            .entries
            .get(index)
            .ok_or(ReceiptError::NoSuchEntry { index })?;
        Ok(receipt_json(entry, schedule, ctx)?.to_pretty())
    }
}

fn receipt_json(
    entry: &LedgerEntry,
    schedule: &PolicySchedule,
    ctx: &ReceiptContext,
) -> Result<Json, ReceiptError> {
    let e = &entry.event;
    let version = schedule
        .version(&e.version)
        .ok_or(ReceiptError::UnknownVersion)?;
    let mut purposes = vec![Purpose::InfrastructureAndDelivery];
    purposes.extend(version.introduces.iter().copied());
    purposes.dedup();
    let everything = ConsentSnapshot::all_accepted(schedule);
    let purposes = purposes
        .iter()
        .map(|p| purpose_json(*p, *p == Purpose::InfrastructureAndDelivery, &everything))
        .collect();
    let controller = Json::Obj(vec![
        ("piiController", Json::str(&ctx.controller)),
        ("contact", Json::str(&ctx.contact)),
        ("address", Json::str(&ctx.address)),
        ("email", Json::str(&ctx.email)),
        ("phone", Json::str(&ctx.phone)),
    ]);
    Ok(Json::Obj(vec![
        ("version", Json::str(RECEIPT_VERSION)),
        ("jurisdiction", Json::str(&ctx.jurisdiction)),
        ("consentTimestamp", Json::Num(e.at.as_millis() / 1000)),
        ("collectionMethod", Json::str(e.method.as_str())),
        ("consentReceiptID", Json::str(receipt_id(&entry.hash))),
        ("language", Json::str(&ctx.language)),
        ("piiPrincipalId", Json::str(&ctx.pii_principal_id)),
        ("piiControllers", Json::Arr(vec![controller])),
        ("policyUrl", Json::str(&ctx.policy_url)),
        (
            "services",
            Json::Arr(vec![Json::Obj(vec![
                ("service", Json::str(&ctx.service)),
                ("purposes", Json::Arr(purposes)),
            ])]),
        ),
        ("sensitive", Json::Bool(false)),
        ("spiCat", Json::Arr(Vec::new())),
        (
            "x-confide",
            Json::Obj(vec![
                ("policyVersion", Json::str(e.version.as_str())),
                ("policyTextSha256", Json::str(hex(&version.text_sha256))),
                ("decision", Json::str(e.decision.as_str())),
                (
                    "dpvConsentStatus",
                    Json::str(e.decision.dpv_consent_status()),
                ),
                ("ledgerSeq", Json::Num(entry.seq)),
                ("entryHash", Json::str(hex(&entry.hash))),
                ("prevHash", Json::str(hex(&entry.prev_hash))),
            ]),
        ),
    ]))
}

fn purpose_json(p: Purpose, primary: bool, everything: &ConsentSnapshot) -> Json {
    let mut categories: Vec<&'static str> = Vec::new();
    let mut third_parties: Vec<&'static str> = Vec::new();
    for r in Recipient::ALL {
        for c in DataCategory::ALL {
            let Ok(flow) = DataFlow::new(r, c, p) else {
                continue;
            };
            if evaluate(&flow, everything).is_allowed() {
                if !categories.contains(&c.kantara_category()) {
                    categories.push(c.kantara_category());
                }
                if r != Recipient::Operator && !third_parties.contains(&r.label()) {
                    third_parties.push(r.label());
                }
            }
        }
    }
    Json::Obj(vec![
        ("purpose", Json::str(p.label())),
        (
            "purposeCategory",
            Json::Arr(vec![Json::str(p.kantara_category())]),
        ),
        ("consentType", Json::str("EXPLICIT")),
        (
            "piiCategory",
            Json::Arr(categories.into_iter().map(Json::str).collect()),
        ),
        ("primaryPurpose", Json::Bool(primary)),
        (
            "termination",
            Json::str(
                "Until withdrawn in the account settings; withdrawing does not affect earlier processing.",
            ),
        ),
        (
            "thirdPartyDisclosure",
            Json::Bool(!third_parties.is_empty()),
        ),
        ("thirdPartyName", Json::str(third_parties.join("; "))),
    ])
}
