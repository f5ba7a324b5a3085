//! The 2021 policy update, replayed: the notice in January, the deadline moved to 15 May,
//! the user declines and goes through the limited phases, then accepts, and the 2016
//! opt-out stays honoured throughout. Writes `DIR/account_info.zip`.
//!
//! Run with `cargo run --example policy_timeline -- --out DIR`.

use confide::Timestamp;
use confide::export::{
    AccountInfo, AccountReport, Group, MessageTimer, PrivacySettings, Profile, ReportDurations,
    ReportRequest, ReportSources, ReportStatus, Visibility,
};
use confide::policy::{
    Activity, CollectionMethod, ConsentEvent, ConsentLedger, ConsentSnapshot, DataFlow, Decision,
    FamilyCategory, PolicyId, Purpose, account_state, evaluate, format_utc, state_history,
    timeline_2021, utc_date,
};

const DAY: u64 = 86_400_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out_dir = match (args.next().as_deref(), args.next()) {
        (Some("--out"), Some(dir)) => std::path::PathBuf::from(dir),
        _ => return Err("usage: policy_timeline --out DIR".into()),
    };
    let date = |y, m, d| utc_date(y, m, d).ok_or("invalid date");
    let plus = |t: Timestamp, days: u64| Timestamp::from_millis(t.as_millis() + days * DAY);

    // As announced on 7 May 2021: no June suspension yet.
    let schedule = timeline_2021([b"2016 terms text", b"2021 terms text"], false);
    let v2016 = PolicyId::new("2016-08")?;
    let v2021 = PolicyId::new("2021-01")?;
    let mut ledger = ConsentLedger::new();
    let mut activity = Activity::new(date(2016, 8, 1)?);
    let mut answer = |version: &PolicyId, decision, at, method| {
        ledger
            .record(
                ConsentEvent::new(version.clone(), decision, at, method),
                &schedule,
            )
            .map(|e| {
                println!(
                    "{}  recorded: {} {}",
                    &format_utc(at)[..10],
                    e.event().version,
                    e.event().decision.as_str()
                )
            })
    };
    answer(
        &v2016,
        Decision::Accepted,
        date(2016, 8, 26)?,
        CollectionMethod::InAppNotice,
    )?;
    answer(
        &v2016,
        Decision::LegacyOptOut,
        date(2016, 9, 12)?,
        CollectionMethod::Settings,
    )?;
    answer(
        &v2021,
        Decision::NotNow,
        date(2021, 1, 6)?,
        CollectionMethod::InAppNotice,
    )?;
    answer(
        &v2021,
        Decision::Declined,
        date(2021, 5, 10)?,
        CollectionMethod::InAppBanner,
    )?;
    let accepted_at = date(2021, 7, 25)?;
    answer(
        &v2021,
        Decision::Accepted,
        accepted_at,
        CollectionMethod::InAppNotice,
    )?;
    // The phone connects every few days.
    let mut t = date(2016, 8, 1)?;
    let end = date(2021, 8, 1)?;
    while t <= end {
        activity.connected(t)?;
        t = plus(t, 3);
    }

    println!("\naccount state over time:");
    for (from, state) in state_history(&ledger, &schedule, &activity, end)? {
        let caps = state.capabilities();
        println!(
            "{}  {:<21} chat list: {:<5} calls: {:<5} notifications: {:<5} {}",
            &format_utc(from)[..10],
            state.as_str(),
            caps.read_chat_list,
            caps.receive_calls,
            caps.receive_notifications,
            state.describe()
        );
    }

    let ads = DataFlow::ToParentFamily {
        category: FamilyCategory::DeviceInfo,
        purpose: Purpose::Ads,
    };
    for day in [date(2016, 9, 1)?, date(2016, 9, 12)?, accepted_at] {
        let decision = evaluate(&ads, &ConsentSnapshot::at(&ledger, &schedule, day));
        println!(
            "{}  device info to the parent company for ads: {decision:?}",
            &format_utc(day)[..10]
        );
    }
    let suspended = timeline_2021([b"2016 terms text", b"2021 terms text"], true);
    let june = date(2021, 7, 1)?;
    println!(
        "\nwith the June 2021 suspension, on {} the state would be: {}",
        &format_utc(june)[..10],
        account_state(&ledger, &suspended, &activity, june)?.as_str()
    );

    // The user requests the account report; it is ready three days later.
    let request = ReportRequest::new(end, None, ReportDurations::default())?;
    let ready = request.ready_by();
    println!(
        "\nreport requested {}, ready by {}",
        &format_utc(end)[..10],
        &format_utc(ready)[..10]
    );
    if let ReportStatus::Ready { expires_at } = request.status(ready) {
        println!(
            "report ready; deleted from the servers on {}",
            &format_utc(expires_at)[..10]
        );
    }
    let info = AccountInfo {
        phone_number: "+1 555 0100".into(),
        profile: Profile {
            name: "Ana".into(),
            about: "Available".into(),
            has_photo: true,
        },
        privacy: PrivacySettings {
            last_seen: Visibility::Contacts,
            profile_photo: Visibility::Contacts,
            about: Visibility::Everyone,
            groups: Visibility::Contacts,
            read_receipts: true,
            default_message_timer: MessageTimer::Days90,
        },
        devices: Vec::new(),
        groups: vec![
            Group {
                name: "Book club".into(),
                admin: true,
                member_count: 8,
            },
            Group {
                name: "<script>alert(1)</script>".into(),
                admin: false,
                member_count: 3,
            },
        ],
        business_chats: Vec::new(),
    };
    activity.connected(ready)?;
    let sources = ReportSources {
        info: &info,
        ledger: &ledger,
        schedule: &schedule,
        activity: &activity,
        identity_assurance: &[],
    };
    let report = AccountReport::build(&sources, ready)?;
    std::fs::create_dir_all(&out_dir)?;
    let path = out_dir.join("account_info.zip");
    std::fs::write(&path, report.to_zip()?)?;
    println!("wrote {}", path.display());
    Ok(())
}
