//! Fuzz target bodies for the parsers of groups, sealed sender, content and the
//! privacy/business records, and their seed corpus (dispatched from `targets::run`).
//!
//! Each target feeds the same bytes to every parser of its family. What parses keeps
//! its bytes where the type keeps them, and re-encodes to bytes that parse to the same
//! value; the group decrypt target leaves a live record byte-identical on any error.
#![allow(dead_code, unreachable_pub)]

use std::sync::OnceLock;

use confide::Timestamp;
use confide::business::{AttestationVerifier, DisclosureTracker, HostingTag, SignedAttestation};
use confide::envelope::{
    self, Body, Content, ContentId, DataMessage, DisappearingTimer, Header, Reaction, Receipt,
    ReceiptKind, Typing,
};
use confide::group::{
    DistributionId, GroupDecryptError, Layout, SenderKeyDistributionMessage, SenderKeyMessage,
    SenderKeyRecord,
};
use confide::keys::{IdentityKeyPair, KeyPair};
use confide::policy::{Activity, ConsentLedger, PolicySchedule};
use confide::sealed::{
    self, ContentHint, ContentType, MultiRecipientMessage, Recipient, SenderCertificate,
    SenderInfo, ServerCertificate, ServiceId, ServiceIdKind, TrustRoots,
    UnidentifiedSenderMessageContent,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// The seed the group and sealed fixtures are built from.
pub const PARSERS_SEED: u64 = 0x7061_7273_6572_7331;

const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);

/// `SenderKeyMessage` and `SenderKeyDistributionMessage` in both layouts, and
/// `SenderKeyRecord::from_bytes`.
pub fn parse_group(data: &[u8]) {
    for layout in [Layout::Current, Layout::Legacy] {
        if let Ok(m) = SenderKeyMessage::parse(data, layout) {
            assert_eq!(m.serialized(), data);
            assert_eq!(m.layout(), layout);
            assert_eq!(SenderKeyMessage::parse(data, layout).as_ref(), Ok(&m));
        }
        if let Ok(m) = SenderKeyDistributionMessage::parse(data, layout) {
            assert_eq!(m.serialized(), data);
            assert!(SenderKeyDistributionMessage::parse(data, layout).as_ref() == Ok(&m));
        }
    }
    assert_eq!(
        SenderKeyMessage::try_from(data),
        SenderKeyMessage::parse(data, Layout::Current)
    );
    assert_eq!(
        SenderKeyMessage::parse_legacy(data),
        SenderKeyMessage::parse(data, Layout::Legacy)
    );
    assert_eq!(
        SenderKeyDistributionMessage::try_from(data).is_ok(),
        SenderKeyDistributionMessage::parse(data, Layout::Current).is_ok()
    );
    assert_eq!(
        SenderKeyDistributionMessage::parse_legacy(data).is_ok(),
        SenderKeyDistributionMessage::parse(data, Layout::Legacy).is_ok()
    );
    if let Ok(record) = SenderKeyRecord::from_bytes(data) {
        let bytes = record.to_bytes();
        let again = SenderKeyRecord::from_bytes(&bytes).expect("re-encoded record must load");
        assert!(
            again.to_bytes() == bytes,
            "sender key record encoding not stable"
        );
        // A loaded record is usable: decrypting a fixture message never panics and
        // changes nothing on error.
        let fixture = GroupFixture::get();
        for m in fixture.sent.iter().take(2) {
            let mut copy = record.clone();
            if let Ok(message) = SenderKeyMessage::parse(&m.bytes, copy.layout())
                && copy.decrypt(&message).is_err()
            {
                assert!(
                    copy.to_bytes() == bytes,
                    "failed decrypt changed a loaded record"
                );
            }
        }
    }
}

/// Bytes decrypted as a group message (both layouts) by Bob's live records.
///
/// On error the record is byte-identical; on success the signed body is one Alice
/// sent, the plaintext hers, and a second delivery a duplicate that changes nothing.
pub fn decrypt_group(data: &[u8]) {
    let fixture = GroupFixture::get();
    for (layout, bob) in [
        (Layout::Current, &fixture.bob_current),
        (Layout::Legacy, &fixture.bob_legacy),
    ] {
        let Ok(message) = SenderKeyMessage::parse(data, layout) else {
            continue;
        };
        let mut record = SenderKeyRecord::from_bytes(bob).expect("fixture record");
        match record.decrypt(&message) {
            Err(e) => assert!(
                *record.to_bytes() == bob[..],
                "failed group decrypt ({e:?}) changed the record"
            ),
            Ok(plaintext) => {
                let body = &data[..data.len() - 64];
                let sent = fixture
                    .sent
                    .iter()
                    .find(|s| s.layout == layout && s.bytes[..s.bytes.len() - 64] == *body)
                    .unwrap_or_else(|| panic!("accepted a group message never sent: {data:02x?}"));
                assert_eq!(*plaintext, sent.plaintext, "decrypted to other bytes");
                let after = record.to_bytes();
                match record.decrypt(&message) {
                    Err(GroupDecryptError::DuplicateMessage { .. }) => {}
                    other => panic!("second group delivery gave {other:?}"),
                }
                assert!(record.to_bytes() == after, "a duplicate changed the record");
            }
        }
    }
}

/// Certificates, USMC and the multi-recipient message parsers on the same bytes, and
/// `open_unvalidated` for a fixed recipient identity.
pub fn parse_sealed(data: &[u8]) {
    let fixture = SealedFixture::get();
    if let Ok(c) = ServerCertificate::try_from(data) {
        assert_eq!(c.serialized(), data);
        assert_eq!(ServerCertificate::try_from(c.serialized()).as_ref(), Ok(&c));
        let _ = c.validate(&fixture.trust_root);
    }
    if let Ok(c) = SenderCertificate::try_from(data) {
        assert_eq!(c.serialized(), data);
        assert_eq!(SenderCertificate::try_from(c.serialized()).as_ref(), Ok(&c));
        let _ = c.validate(&fixture.trust_root, NOW);
    }
    if let Ok(c) = UnidentifiedSenderMessageContent::try_from(data) {
        assert_eq!(c.serialized(), data);
        assert!(UnidentifiedSenderMessageContent::try_from(c.serialized()).as_ref() == Ok(&c));
    }
    if let Ok(m) = MultiRecipientMessage::try_from(data) {
        assert_eq!(m.serialized(), data);
        assert_eq!(
            MultiRecipientMessage::try_from(m.serialized()).as_ref(),
            Ok(&m)
        );
        if let Some(one) = m.for_recipient(&fixture.recipient_id) {
            open(&one);
        }
    }
    open(data);
}

fn open(data: &[u8]) {
    let fixture = SealedFixture::get();
    if let Ok(content) = confide::hazmat::open_unvalidated(data, &fixture.recipient) {
        let again = UnidentifiedSenderMessageContent::try_from(content.serialized())
            .expect("opened content must parse again");
        assert!(again == content, "opened content re-parses differently");
        let _ = content.sender().validate(&fixture.trust_root, NOW);
    }
}

/// `Content::try_from`, `Content::from_padded` and `unpad` on the same bytes.
pub fn parse_content(data: &[u8]) {
    if let Ok(c) = Content::try_from(data) {
        assert_eq!(c.as_bytes(), data);
        let rebuilt = Content::new(*c.header(), c.body().clone());
        let again = Content::try_from(rebuilt.as_bytes()).expect("re-encoded content must parse");
        assert_eq!(again.header(), c.header());
        assert_eq!(again.body(), c.body());
        let padded = c.to_padded();
        assert!(Content::from_padded(&padded).as_ref() == Ok(&c));
    }
    let unpadded = envelope::unpad(data);
    if let Ok(inner) = unpadded {
        assert!(
            *envelope::pad(inner) == *data,
            "unpad accepted padding pad would not write"
        );
    }
    match (Content::from_padded(data), unpadded) {
        (Ok(c), Ok(inner)) => assert_eq!(c.as_bytes(), inner),
        (Ok(_), Err(e)) => panic!("from_padded accepted what unpad refuses ({e:?})"),
        (Err(_), Ok(inner)) => assert!(Content::try_from(inner).is_err()),
        (Err(_), Err(_)) => {}
    }
}

/// Every `from_bytes` of `confide::business` and `confide::policy` on the same bytes:
/// what loads re-encodes to bytes that load to the same value.
pub fn parse_privacy(data: &[u8]) {
    macro_rules! round_trip {
        ($($ty:ty),*) => {$(
            if let Ok(v) = <$ty>::from_bytes(data) {
                let bytes = v.to_bytes();
                let again = <$ty>::from_bytes(&bytes)
                    .unwrap_or_else(|e| panic!("re-encoded {} does not load: {e:?}", stringify!($ty)));
                assert_eq!(again, v, "{} changes through its encoding", stringify!($ty));
            }
        )*};
    }
    round_trip!(
        SignedAttestation,
        AttestationVerifier,
        HostingTag,
        DisclosureTracker,
        PolicySchedule,
        ConsentLedger,
        Activity
    );
}

/// One group message Alice sent.
pub struct GroupSent {
    /// Short name, for corpus files.
    pub name: String,
    /// Its layout.
    pub layout: Layout,
    /// The bytes as sent.
    pub bytes: Vec<u8>,
    /// The plaintext.
    pub plaintext: Vec<u8>,
}

/// Alice's sending chains and Bob's receiving records, in both layouts.
///
/// Per layout: Alice sends m0-m4, Bob gets m1 and m3 (so m0 and m2 are skipped keys);
/// Alice rotates, Bob processes the new distribution, Alice sends n0-n2, Bob gets n1.
/// Bob's record then holds two chains with skipped keys in each.
pub struct GroupFixture {
    /// Bob's current-layout record, serialized.
    pub bob_current: Vec<u8>,
    /// Bob's legacy-layout record, serialized.
    pub bob_legacy: Vec<u8>,
    /// Alice's own records (current, legacy), serialized.
    pub alice_records: Vec<Vec<u8>>,
    /// The distribution messages (name, bytes).
    pub distributions: Vec<(String, Vec<u8>)>,
    /// Every group message Alice sent.
    pub sent: Vec<GroupSent>,
}

impl GroupFixture {
    /// The fixture, built once per process.
    pub fn get() -> &'static GroupFixture {
        static FIXTURE: OnceLock<GroupFixture> = OnceLock::new();
        FIXTURE.get_or_init(GroupFixture::build)
    }

    fn build() -> GroupFixture {
        let mut rng = ChaCha20Rng::seed_from_u64(PARSERS_SEED);
        let id = DistributionId::random(&mut rng);
        let mut sent = Vec::new();
        let mut distributions = Vec::new();
        let mut alice_records = Vec::new();
        let mut bobs = Vec::new();
        for (tag, layout) in [("current", Layout::Current), ("legacy", Layout::Legacy)] {
            let mut alice = SenderKeyRecord::new(id, layout);
            let mut bob = SenderKeyRecord::new(id, layout);
            let deliver = |bob: &mut SenderKeyRecord, m: &SenderKeyMessage| {
                let parsed = SenderKeyMessage::parse(m.serialized(), layout).expect("parse");
                bob.decrypt(&parsed).expect("decrypt");
            };
            for (round, chain) in ["m", "n"].into_iter().enumerate() {
                let skdm = if round == 0 {
                    alice.distribution(&mut rng)
                } else {
                    alice.rotate(&mut rng)
                };
                bob.process(&skdm).expect("process");
                distributions.push((format!("{tag}-skdm-{chain}"), skdm.serialized().to_vec()));
                for i in 0..(5 - 2 * round) {
                    let plaintext = format!("group {tag} {chain}{i}").into_bytes();
                    let m = alice.encrypt(&plaintext, &mut rng).expect("encrypt");
                    if i % 2 == 1 {
                        deliver(&mut bob, &m);
                    }
                    sent.push(GroupSent {
                        name: format!("{tag}-{chain}{i}"),
                        layout,
                        bytes: m.serialized().to_vec(),
                        plaintext,
                    });
                }
            }
            assert_eq!(bob.chain_count(), 2);
            alice_records.push(alice.to_bytes().to_vec());
            bobs.push(bob.to_bytes().to_vec());
        }
        let bob_legacy = bobs.pop().expect("legacy");
        let bob_current = bobs.pop().expect("current");
        GroupFixture {
            bob_current,
            bob_legacy,
            alice_records,
            distributions,
            sent,
        }
    }
}

/// A trust root, a server and sender certificate, and the fixed recipient the sealed
/// seeds are sealed to.
pub struct SealedFixture {
    trust_root: TrustRoots,
    recipient: IdentityKeyPair,
    recipient_id: ServiceId,
    server_cert: ServerCertificate,
    content: UnidentifiedSenderMessageContent,
    v1: Vec<u8>,
    v2_multi: Vec<u8>,
}

impl SealedFixture {
    /// The fixture, built once per process.
    pub fn get() -> &'static SealedFixture {
        static FIXTURE: OnceLock<SealedFixture> = OnceLock::new();
        FIXTURE.get_or_init(SealedFixture::build)
    }

    fn build() -> SealedFixture {
        let mut rng = ChaCha20Rng::seed_from_u64(PARSERS_SEED ^ 1);
        let trust_root = KeyPair::generate(&mut rng);
        let server = KeyPair::generate(&mut rng);
        let alice = IdentityKeyPair::generate(&mut rng);
        let recipient = IdentityKeyPair::generate(&mut rng);
        let other = IdentityKeyPair::generate(&mut rng);
        let server_cert =
            ServerCertificate::new(7, server.public(), trust_root.private(), &mut rng);
        let info = SenderInfo {
            uuid: "9d0652a3-dcc3-4d11-975f-74d61598733f".into(),
            e164: Some("+15550100".into()),
            device_id: 2,
            identity_key: *alice.identity_key(),
            expiration: Timestamp::from_millis(NOW.as_millis() + 1000),
        };
        let cert = SenderCertificate::new(info, server_cert.clone(), server.private(), &mut rng);
        let content = UnidentifiedSenderMessageContent::new(
            ContentType::SenderKey,
            cert,
            b"inner group message".to_vec(),
            ContentHint::Resendable,
            Some(b"group-id".to_vec()),
        );
        let v1 =
            sealed::seal_v1(&content, &alice, recipient.identity_key(), &mut rng).expect("seal v1");
        let recipient_id = ServiceId::new(ServiceIdKind::Aci, [1; 16]);
        let recipients = [
            Recipient {
                service_id: recipient_id,
                device_id: 1,
                registration_id: 1001,
                identity_key: *recipient.identity_key(),
            },
            Recipient {
                service_id: recipient_id,
                device_id: 2,
                registration_id: 1002,
                identity_key: *recipient.identity_key(),
            },
            Recipient {
                service_id: ServiceId::new(ServiceIdKind::Pni, [2; 16]),
                device_id: 1,
                registration_id: 2001,
                identity_key: *other.identity_key(),
            },
        ];
        let v2_multi = sealed::seal_v2(&content, &alice, &recipients, &mut rng).expect("seal v2");
        SealedFixture {
            trust_root: TrustRoots::new(trust_root.public()),
            recipient,
            recipient_id,
            server_cert,
            content,
            v1,
            v2_multi,
        }
    }
}

fn with_flip(bytes: &[u8], at: usize, mask: u8) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v[at] ^= mask;
    v
}

/// The seed corpus of the targets in this file: (target, file name, bytes).
pub fn corpus() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut add = |target: &'static str, name: &str, bytes: Vec<u8>| {
        out.push((target, name.to_string(), bytes));
    };

    // Groups.
    let g = GroupFixture::get();
    for m in &g.sent {
        add("parse_group", &m.name, m.bytes.clone());
        add("decrypt_group", &m.name, m.bytes.clone());
    }
    let m1 = &g.sent[1].bytes;
    let last = m1.len() - 1;
    for (name, bytes) in [
        ("empty", vec![]),
        ("version-only", vec![0x33]),
        ("truncated", m1[..m1.len() - 1].to_vec()),
        ("signature-flipped", with_flip(m1, last, 1)),
        ("body-flipped", with_flip(m1, 10, 1)),
        ("version-flipped", with_flip(m1, 0, 0x10)),
    ] {
        add("parse_group", name, bytes.clone());
        add("decrypt_group", name, bytes);
    }
    for (name, bytes) in &g.distributions {
        add("parse_group", name, bytes.clone());
    }
    add("parse_group", "record-bob-current", g.bob_current.clone());
    add("parse_group", "record-bob-legacy", g.bob_legacy.clone());
    for (i, r) in g.alice_records.iter().enumerate() {
        add("parse_group", &format!("record-alice-{i}"), r.clone());
    }
    add("parse_group", "record-format-2", vec![0x08, 0x02]);

    // Sealed sender.
    let s = SealedFixture::get();
    let one = MultiRecipientMessage::try_from(&s.v2_multi[..])
        .expect("multi")
        .for_recipient(&s.recipient_id)
        .expect("share");
    for (name, bytes) in [
        ("server-certificate", s.server_cert.serialized().to_vec()),
        (
            "sender-certificate",
            s.content.sender().serialized().to_vec(),
        ),
        ("usmc", s.content.serialized().to_vec()),
        ("v1", s.v1.clone()),
        ("v1-flipped", with_flip(&s.v1, s.v1.len() - 1, 1)),
        ("v2-multi", s.v2_multi.clone()),
        ("v2-one", one.clone()),
        ("v2-one-flipped", with_flip(&one, 40, 1)),
        ("empty", vec![]),
        ("unknown-version", vec![0x44, 0]),
    ] {
        add("parse_sealed", name, bytes);
    }

    // Content.
    let id = |n: u8| ContentId::from_bytes([n; 16]);
    let mut header = Header::new(id(1), NOW);
    header.hosting_serial = Some(42);
    let text = |t: &str, timer| {
        Body::Message(
            DataMessage::builder()
                .text(t)
                .build(timer)
                .expect("message"),
        )
    };
    let bodies = [
        ("text", text("hello", DisappearingTimer::OFF)),
        ("text-timer", text("soon gone", DisappearingTimer::DAYS_7)),
        (
            "reaction",
            Body::Reaction(Reaction::add(id(2), "👍").expect("reaction")),
        ),
        (
            "receipt",
            Body::Receipt(Receipt::new(ReceiptKind::Read, vec![id(2), id(3)]).expect("receipt")),
        ),
        ("typing", Body::Typing(Typing::Started)),
        ("timer", Body::TimerChange(DisappearingTimer::HOURS_24)),
        ("unsupported", Body::Unsupported),
    ];
    for (name, body) in bodies {
        let c = Content::new(header, body);
        add("parse_content", name, c.as_bytes().to_vec());
        add(
            "parse_content",
            &format!("{name}-padded"),
            c.to_padded().to_vec(),
        );
    }
    add(
        "parse_content",
        "format1-fixture-padded",
        include_bytes!("../fixtures/content/format1_message.padded.bin").to_vec(),
    );
    add("parse_content", "empty", vec![]);
    add("parse_content", "padding-only", envelope::pad(&[]).to_vec());

    // Privacy and business records (the committed format fixtures).
    macro_rules! fixture {
        ($($name:literal),*) => {$(
            add(
                "parse_privacy",
                $name,
                include_bytes!(concat!("../fixtures/privacy/", $name, ".bin")).to_vec(),
            );
        )*};
    }
    fixture!(
        "activity",
        "attestation_1",
        "attestation_2",
        "hosting_tag",
        "ledger",
        "schedule",
        "tracker",
        "verifier"
    );
    add("parse_privacy", "empty", vec![]);
    add("parse_privacy", "format-version-2", vec![0x08, 0x02]);
    out
}

/// The genuine seeds reach the end of their paths: Bob decrypts every group message he
/// has not had yet (and refuses the others as duplicates), the sealed seeds open for
/// the fixed recipient, and the content and privacy seeds parse.
pub fn check_seeds() {
    let g = GroupFixture::get();
    for m in &g.sent {
        let bob = if m.layout == Layout::Current {
            &g.bob_current
        } else {
            &g.bob_legacy
        };
        let mut record = SenderKeyRecord::from_bytes(bob).expect("fixture record");
        let message = SenderKeyMessage::parse(&m.bytes, m.layout).expect("parse");
        let delivered = m.name.ends_with('1') || m.name.ends_with('3');
        match (delivered, record.decrypt(&message)) {
            (false, Ok(plaintext)) => assert_eq!(*plaintext, m.plaintext, "{}", m.name),
            (true, Err(GroupDecryptError::DuplicateMessage { .. })) => {}
            (_, other) => panic!("{}: {other:?}", m.name),
        }
    }
    let s = SealedFixture::get();
    for (target, name, bytes) in corpus() {
        match (target, name.as_str()) {
            ("parse_sealed", "v1" | "v2-one") => {
                let c = confide::hazmat::open_unvalidated(&bytes, &s.recipient).expect(&name);
                assert!(c == s.content, "{name}");
                c.sender().validate(&s.trust_root, NOW).expect(&name);
            }
            ("parse_content", n) if n != "empty" && n != "padding-only" => {
                let parsed = if n.ends_with("-padded") {
                    Content::from_padded(&bytes)
                } else {
                    Content::try_from(&bytes[..])
                };
                assert!(parsed.is_ok(), "{n}");
            }
            ("parse_privacy", n) if n != "empty" && n != "format-version-2" => {
                let loads = SignedAttestation::from_bytes(&bytes).is_ok()
                    || AttestationVerifier::from_bytes(&bytes).is_ok()
                    || HostingTag::from_bytes(&bytes).is_ok()
                    || DisclosureTracker::from_bytes(&bytes).is_ok()
                    || PolicySchedule::from_bytes(&bytes).is_ok()
                    || ConsentLedger::from_bytes(&bytes).is_ok()
                    || Activity::from_bytes(&bytes).is_ok();
                assert!(loads, "{n}");
            }
            _ => {}
        }
    }
}
