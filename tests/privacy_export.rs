//! The account-information report: request lifecycle, JSON (validated against the
//! committed schema), HTML escaping and the ZIP container.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod privacy_common;

use privacy_common::{IMG_GROUP, SCRIPT_GROUP, d, world};

use confide::Timestamp;
use confide::export::{
    ACCOUNT_INFO_SCHEMA, AccountReport, Invalidation, ReportDurations, ReportError, ReportRequest,
    ReportSources, ReportStatus, RequestError,
};
use serde_json::Value;

const DAY: u64 = 86_400_000;

fn plus(t: Timestamp, days: u64) -> Timestamp {
    Timestamp::from_millis(t.as_millis() + days * DAY)
}

#[test]
fn request_lifecycle_is_a_function_of_time() {
    let t0 = d(2021, 8, 1);
    let r = ReportRequest::new(t0, None, ReportDurations::default()).unwrap();
    assert_eq!(
        r.status(t0),
        ReportStatus::Pending {
            ready_by: plus(t0, 3)
        }
    );
    assert_eq!(
        r.status(plus(t0, 3)),
        ReportStatus::Ready {
            expires_at: plus(t0, 31)
        }
    );
    assert_eq!(
        r.status(plus(t0, 31)),
        ReportStatus::Expired {
            since: plus(t0, 31)
        }
    );
    // A pending request cannot be repeated (or cancelled).
    assert_eq!(
        ReportRequest::new(plus(t0, 1), Some(&r), ReportDurations::default()),
        Err(RequestError::AlreadyPending {
            ready_by: plus(t0, 3)
        })
    );
    let again = ReportRequest::new(plus(t0, 4), Some(&r), ReportDurations::default()).unwrap();
    assert!(matches!(
        again.status(plus(t0, 4)),
        ReportStatus::Pending { .. }
    ));
    for cause in [
        Invalidation::NumberChanged,
        Invalidation::ReRegistered,
        Invalidation::DeviceChanged,
        Invalidation::AccountDeleted,
    ] {
        let mut r = ReportRequest::new(t0, None, ReportDurations::default()).unwrap();
        assert_eq!(r.invalidate(plus(t0, 0).min(t0), cause), Ok(()));
        assert_eq!(
            r.status(plus(t0, 5)),
            ReportStatus::Invalidated { at: t0, cause }
        );
        assert_eq!(
            r.invalidate(plus(t0, 1), cause),
            Err(RequestError::AlreadyInvalidated)
        );
        // A new request is possible after invalidation.
        assert!(ReportRequest::new(plus(t0, 1), Some(&r), ReportDurations::default()).is_ok());
    }
    let mut r = ReportRequest::new(t0, None, ReportDurations::default()).unwrap();
    assert_eq!(
        r.invalidate(d(2021, 7, 1), Invalidation::NumberChanged),
        Err(RequestError::BeforeRequest)
    );
    r.invalidate(plus(t0, 10), Invalidation::NumberChanged)
        .unwrap();
    assert!(
        matches!(r.status(plus(t0, 9)), ReportStatus::Ready { .. }),
        "not before it happens"
    );
}

/// A validator for the subset of JSON Schema 2020-12 the committed schema uses. Any
/// keyword it does not know fails the test, so the schema cannot silently outgrow it.
fn validate(schema: &Value, root: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    let s = schema.as_object().unwrap();
    for key in s.keys() {
        assert!(
            [
                "$schema",
                "$id",
                "title",
                "description",
                "type",
                "properties",
                "required",
                "additionalProperties",
                "items",
                "enum",
                "const",
                "minimum",
                "pattern",
                "$ref",
                "anyOf",
                "$defs"
            ]
            .contains(&key.as_str()),
            "unsupported schema keyword {key}"
        );
    }
    if let Some(r) = s.get("$ref") {
        let name = r.as_str().unwrap().strip_prefix("#/$defs/").unwrap();
        return validate(&root["$defs"][name], root, v, path, errors);
    }
    if let Some(any) = s.get("anyOf") {
        let ok = any.as_array().unwrap().iter().any(|sub| {
            let mut e = Vec::new();
            validate(sub, root, v, path, &mut e);
            e.is_empty()
        });
        if !ok {
            errors.push(format!("{path}: matches no anyOf branch"));
        }
    }
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(x) => vec![x.as_str()],
            Value::Array(xs) => xs.iter().map(|x| x.as_str().unwrap()).collect(),
            _ => panic!("bad type"),
        };
        let ok = types.iter().any(|t| match *t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "boolean" => v.is_boolean(),
            "integer" => v.is_u64() || v.is_i64(),
            "null" => v.is_null(),
            other => panic!("type {other}"),
        });
        if !ok {
            errors.push(format!("{path}: not of type {types:?}"));
            return;
        }
    }
    if let Some(c) = s.get("const") {
        if c != v {
            errors.push(format!("{path}: not {c}"));
        }
    }
    if let Some(e) = s.get("enum") {
        if !e.as_array().unwrap().contains(v) {
            errors.push(format!("{path}: {v} not in enum"));
        }
    }
    if let Some(m) = s.get("minimum") {
        if v.as_i64().unwrap_or(i64::MIN) < m.as_i64().unwrap() {
            errors.push(format!("{path}: below minimum"));
        }
    }
    if let Some(p) = s.get("pattern") {
        let text = v.as_str().unwrap_or_default();
        let ok = match p.as_str().unwrap() {
            "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$" => {
                let b = text.as_bytes();
                b.len() == 20
                    && b.iter().enumerate().all(|(i, c)| match i {
                        4 | 7 => *c == b'-',
                        10 => *c == b'T',
                        13 | 16 => *c == b':',
                        19 => *c == b'Z',
                        _ => c.is_ascii_digit(),
                    })
            }
            "^[0-9a-f]{64}$" => {
                text.len() == 64 && text.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
            }
            other => panic!("unsupported pattern {other}"),
        };
        if !ok {
            errors.push(format!("{path}: does not match {p}"));
        }
    }
    if let (Some(obj), true) = (
        v.as_object(),
        s.contains_key("properties") || s.contains_key("required"),
    ) {
        let props = s.get("properties").and_then(Value::as_object);
        for r in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !obj.contains_key(r.as_str().unwrap()) {
                errors.push(format!("{path}: missing {r}"));
            }
        }
        for (k, val) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(sub) => validate(sub, root, val, &format!("{path}/{k}"), errors),
                None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    errors.push(format!("{path}: unexpected {k}"));
                }
                None => {}
            }
        }
    }
    if let (Some(arr), Some(items)) = (v.as_array(), s.get("items")) {
        for (i, item) in arr.iter().enumerate() {
            validate(items, root, item, &format!("{path}/{i}"), errors);
        }
    }
}

fn schema_errors(json: &Value) -> Vec<String> {
    let schema: Value = serde_json::from_str(ACCOUNT_INFO_SCHEMA).unwrap();
    let mut errors = Vec::new();
    validate(&schema, &schema, json, "", &mut errors);
    errors
}

#[test]
fn the_json_follows_the_committed_schema_and_states_the_opt_out() {
    let w = world();
    let report = w.report(d(2021, 8, 1));
    let json: Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(schema_errors(&json), Vec::<String>::new());
    // The committed copy of the schema is the one the library embeds.
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/privacy/account_info.schema.json"
    ))
    .unwrap();
    assert_eq!(committed, ACCOUNT_INFO_SCHEMA);

    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["legacy_opt_out"]["opted_out"], true);
    assert_eq!(
        json["legacy_opt_out"]["recorded_at"],
        "2016-09-10T00:00:00Z"
    );
    assert!(
        json["legacy_opt_out"]["statement"]
            .as_str()
            .unwrap()
            .contains("still honoured")
    );
    assert_eq!(json["account_state"]["current"], "active");
    assert_eq!(json["groups"][0]["name"], SCRIPT_GROUP);
    let states: Vec<&str> = json["account_state_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        [
            "active",
            "review_requested",
            "review_requested",
            "persistent_reminders",
            "limited_a",
            "limited_b",
            "active"
        ]
    );
    assert_eq!(json["consent_history"].as_array().unwrap().len(), 5);
    assert_eq!(
        json["business_chats"][0]["notice_code"],
        "business.operator_hosted"
    );
    assert_eq!(
        json["business_chats"][0]["end_to_end_encrypted_to_business"],
        false
    );
    assert_eq!(json["business_chats"][1]["notice_code"], Value::Null);
    // The opt-out holds in the sharing summary: no ads flows at all.
    let flows = json["data_sharing"]["allowed_flows"].as_array().unwrap();
    assert!(!flows.is_empty());
    assert!(
        flows
            .iter()
            .all(|f| f["purpose"] != "ads" && f["purpose"] != "product_experiences")
    );
    assert!(flows.iter().all(|f| {
        !(f["recipient"] == "parent_company_family"
            && [
                "message_content",
                "location",
                "contacts",
                "who_messages_whom",
            ]
            .contains(&f["category"].as_str().unwrap()))
    }));
    assert_eq!(
        json["data_sharing"]["never_shared_with_parent_company_family"],
        serde_json::json!([
            "contacts",
            "message_content",
            "location",
            "who_messages_whom"
        ])
    );
    // A non-conforming document is caught by the validator (it is not vacuous).
    let mut broken = json.clone();
    broken["legacy_opt_out"]["opted_out"] = Value::String("yes".into());
    broken["extra"] = Value::Null;
    broken["generated_at"] = Value::String("2021-08-01".into());
    assert_eq!(schema_errors(&broken).len(), 3);
}

#[test]
fn without_an_opt_out_the_report_says_so_and_allows_ads_only_with_consent() {
    let mut w = world();
    w.ledger = confide::policy::ConsentLedger::new();
    w.ledger
        .record(
            confide::policy::ConsentEvent::new(
                privacy_common::id("2016-08"),
                confide::policy::Decision::Accepted,
                d(2016, 8, 28),
                confide::policy::CollectionMethod::InAppNotice,
            ),
            &w.schedule,
        )
        .unwrap();
    let json: Value = serde_json::from_str(&w.report(d(2020, 1, 1)).to_json()).unwrap();
    assert_eq!(schema_errors(&json), Vec::<String>::new());
    assert_eq!(json["legacy_opt_out"]["opted_out"], false);
    assert_eq!(json["legacy_opt_out"]["recorded_at"], Value::Null);
    let flows = json["data_sharing"]["allowed_flows"].as_array().unwrap();
    let ads: Vec<&Value> = flows.iter().filter(|f| f["purpose"] == "ads").collect();
    assert!(!ads.is_empty());
    assert!(
        ads.iter()
            .all(|f| f["legal_basis"] == "consent" && f["consent_version"] == "2016-08")
    );
}

#[test]
fn deleted_accounts_have_no_report() {
    let mut w = world();
    w.activity.delete_account(d(2021, 8, 2)).unwrap();
    let src = ReportSources {
        info: &w.info,
        ledger: &w.ledger,
        schedule: &w.schedule,
        activity: &w.activity,
        identity_assurance: &[],
    };
    assert_eq!(
        AccountReport::build(&src, d(2021, 8, 3)),
        Err(ReportError::AccountDeleted)
    );
    assert!(matches!(
        AccountReport::build(&src, d(2000, 1, 1)),
        Err(ReportError::State(_))
    ));
}

#[test]
fn the_identity_assurance_section_follows_the_schema_in_every_state() {
    use confide::Address;
    use confide::assurance::{ContactAssurance, IdentityAssurance};
    let w = world();
    let since = Some(d(2021, 7, 1));
    let entry = |name: &str, state, since| ContactAssurance {
        contact: Address::new(name, 2),
        state,
        since,
    };
    let entries = [
        entry("<b>bob</b>", IdentityAssurance::Unverified, None),
        entry("carol", IdentityAssurance::Directory { epoch: 42 }, since),
        entry("dave", IdentityAssurance::VerifiedByHand, since),
        entry("erin", IdentityAssurance::Mismatch { epoch: 43 }, since),
    ];
    let src = ReportSources {
        info: &w.info,
        ledger: &w.ledger,
        schedule: &w.schedule,
        activity: &w.activity,
        identity_assurance: &entries,
    };
    let report = AccountReport::build(&src, d(2021, 8, 1)).unwrap();
    let json: Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(schema_errors(&json), Vec::<String>::new());
    let section = json["identity_assurance"].as_array().unwrap();
    assert_eq!(section.len(), 4);
    assert_eq!(section[0]["contact"], "<b>bob</b>");
    assert_eq!(section[0]["device_id"], 2);
    assert_eq!(section[0]["epoch"], Value::Null);
    assert_eq!(section[0]["since"], Value::Null);
    assert_eq!(section[1]["state"], "verified_by_directory");
    assert_eq!(section[1]["epoch"], 42);
    assert_eq!(section[1]["since"], "2021-07-01T00:00:00Z");
    assert_eq!(section[3]["notice_code"], "identity_mismatch");
    // A state with an epoch it cannot have, or a code of another state, is refused.
    let mut broken = json.clone();
    broken["identity_assurance"][2]["epoch"] = Value::from(7);
    broken["identity_assurance"][3]["notice_code"] = Value::from("identity_unverified");
    broken["identity_assurance"][0]["since"] = Value::from("2021-07-01");
    assert_eq!(
        schema_errors(&broken),
        [
            "/identity_assurance/0: matches no anyOf branch",
            "/identity_assurance/0/since: matches no anyOf branch",
            "/identity_assurance/2: matches no anyOf branch",
            "/identity_assurance/3: matches no anyOf branch",
        ]
    );
    // A report without the section (written before it existed) still follows it.
    let mut older = json.clone();
    older.as_object_mut().unwrap().remove("identity_assurance");
    assert_eq!(schema_errors(&older), Vec::<String>::new());
    let html = report.to_html();
    assert!(html.contains("&lt;b&gt;bob&lt;/b&gt;"));
    assert!(!html.contains("<b>bob</b>"));
}

#[test]
fn html_escapes_every_user_string() {
    let w = world();
    let html = w.report(d(2021, 8, 1)).to_html();
    assert!(!html.contains("<script"), "no script element anywhere");
    assert!(!html.contains("<img"), "no image element anywhere");
    assert!(!html.contains("<b>bye"));
    assert!(html.contains("&lt;script&gt;document.title=&#39;pwned&#39;"));
    assert!(html.contains("&lt;img src=x onerror=&quot;"));
    assert!(html.contains("ACME &lt;Shop&gt;"));
    assert!(html.contains("Operator &lt;Cloud&gt; &amp; Co"));
    assert!(html.contains("Content-Security-Policy"));
    assert!(!html.contains("http://") && !html.contains("src=\"http"));
    assert!(html.contains("2016 opt-out:</strong> You opted out on 2016-09-10"));
    assert!(html.contains("This business uses a secure service from Meta to manage this chat."));
    // The document is exactly balanced in the tags it opens.
    for tag in ["table", "tr", "td", "section", "ul", "li", "p", "div"] {
        let open =
            html.matches(&format!("<{tag}>")).count() + html.matches(&format!("<{tag} ")).count();
        assert_eq!(open, html.matches(&format!("</{tag}>")).count(), "{tag}");
    }
    assert!(IMG_GROUP.contains("onerror"));
}

/// Reads a stored-entry ZIP through its central directory, checking every CRC.
fn read_zip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]) as usize;
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap()) as usize;
    let eocd = bytes.len() - 22;
    assert_eq!(u32_at(eocd), 0x0605_4b50);
    let count = u16_at(eocd + 10);
    let mut p = u32_at(eocd + 16);
    let mut out = Vec::new();
    for _ in 0..count {
        assert_eq!(u32_at(p), 0x0201_4b50);
        assert_eq!(u16_at(p + 10), 0, "stored");
        let crc = u32_at(p + 16) as u32;
        let size = u32_at(p + 24);
        let name_len = u16_at(p + 28);
        let local = u32_at(p + 42);
        let name = String::from_utf8(bytes[p + 46..p + 46 + name_len].to_vec()).unwrap();
        assert_eq!(u32_at(local), 0x0403_4b50);
        let data_start = local + 30 + u16_at(local + 26) + u16_at(local + 28);
        let data = bytes[data_start..data_start + size].to_vec();
        let mut c = 0xFFFF_FFFFu32;
        for b in &data {
            c ^= u32::from(*b);
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    (c >> 1) ^ 0xEDB8_8320
                } else {
                    c >> 1
                };
            }
        }
        assert_eq!(!c, crc, "{name}");
        out.push((name, data));
        p += 46 + name_len;
    }
    out
}

#[test]
fn the_zip_holds_json_html_and_schema_and_opens_with_unzip() {
    let w = world();
    let report = w.report(d(2021, 8, 1));
    let zip = report.to_zip().unwrap();
    let files = read_zip(&zip);
    let names: Vec<&str> = files.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "account_info.json",
            "account_info.html",
            "account_info.schema.json"
        ]
    );
    assert_eq!(files[0].1, report.to_json().as_bytes());
    assert_eq!(files[1].1, report.to_html().as_bytes());
    assert_eq!(files[2].1, ACCOUNT_INFO_SCHEMA.as_bytes());
    // A standard tool agrees (Info-ZIP's unzip; part of the project's test setup).
    let dir = std::env::temp_dir().join(format!("confide-zip-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("account_info.zip");
    std::fs::write(&path, &zip).unwrap();
    match std::process::Command::new("unzip")
        .arg("-t")
        .arg(&path)
        .output()
    {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "unzip -t failed: {text}");
            assert!(text.contains("No errors detected"), "{text}");
        }
        Err(e) => panic!("unzip is needed for this test (apt-get install unzip): {e}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
