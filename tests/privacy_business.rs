//! Business hosting attestations, chat privacy and the ordered disclosure notices.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use confide::business::{
    AttestationError, AttestationVerifier, BuildError, BusinessId, BusinessLabel, ChatItem,
    ChatPrivacy, DisclosureTracker, HostingAttestation, HostingMode, HostingTag, LoadError, Notice,
    Provider, Reader, SelfManagedEndpoint, SignedAttestation, TrackError,
};
use confide::{IdentityKeyPair, Timestamp};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const DAY: u64 = 86_400_000;
const T0: u64 = 1_620_000_000_000;

fn t(days: u64) -> Timestamp {
    Timestamp::from_millis(T0 + days * DAY)
}

struct Biz {
    id: BusinessId,
    key: IdentityKeyPair,
    rng: ChaCha20Rng,
}

impl Biz {
    fn new(seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let key = IdentityKeyPair::generate(&mut rng);
        Self {
            id: BusinessId::new("acme-shop").unwrap(),
            key,
            rng,
        }
    }

    fn attest(
        &mut self,
        mode: HostingMode,
        serial: u64,
        from: u64,
        until: u64,
    ) -> SignedAttestation {
        HostingAttestation::new(self.id.clone(), mode, serial, t(from), t(until))
            .unwrap()
            .sign(&mut self.rng, &self.key)
    }
}

fn cloud() -> HostingMode {
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    let k = IdentityKeyPair::generate(&mut rng);
    HostingMode::OperatorCloud {
        operator: Provider::new("Operator Cloud", k.identity_key()).unwrap(),
        retention_days: 30,
    }
}

fn vendor() -> HostingMode {
    HostingMode::VendorManaged {
        vendor: Provider::with_fingerprint("Helpdesk Vendor Inc", [7; 32]).unwrap(),
        retention_days: Some(90),
    }
}

const SELF: HostingMode = HostingMode::SelfManaged(SelfManagedEndpoint::BusinessApp);

#[test]
fn verification_refuses_bad_signature_expiry_and_downgrade() {
    let mut b = Biz::new(1);
    let mut v = AttestationVerifier::new();
    let key = *b.key.identity_key();
    let s2 = b.attest(cloud(), 2, 0, 30);
    // A wrong key.
    let other = IdentityKeyPair::generate(&mut ChaCha20Rng::seed_from_u64(5));
    assert_eq!(
        v.verify(&s2, &b.id, other.identity_key(), t(1)),
        Err(AttestationError::BadSignature)
    );
    // A flipped bit anywhere.
    let bytes = s2.to_bytes();
    for i in [3, bytes.len() / 2, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[i] ^= 0x10;
        match SignedAttestation::from_bytes(&bad) {
            Ok(s) => assert!(v.verify(&s, &b.id, &key, t(1)).is_err()),
            Err(e) => assert!(matches!(
                e,
                AttestationError::Malformed | AttestationError::BadSignature
            )),
        }
    }
    assert_eq!(
        v.verify(&s2, &b.id, &key, t(30)),
        Err(AttestationError::Expired { expired_at: t(30) })
    );
    let future = b.attest(cloud(), 3, 10, 40);
    assert_eq!(
        v.verify(&future, &b.id, &key, t(1)),
        Err(AttestationError::NotYetEffective {
            effective_from: t(10)
        })
    );
    assert_eq!(v.highest_serial(&b.id), None, "failures change nothing");
    let ok = v.verify(&s2, &b.id, &key, t(1)).unwrap();
    assert_eq!(ok.serial(), 2);
    // The same statement again is fine; an older one is a downgrade.
    v.verify(
        &SignedAttestation::from_bytes(&s2.to_bytes()).unwrap(),
        &b.id,
        &key,
        t(2),
    )
    .unwrap();
    let s1 = b.attest(SELF, 1, 0, 30);
    assert_eq!(
        v.verify(&s1, &b.id, &key, t(2)),
        Err(AttestationError::Downgrade { seen: 2, found: 1 })
    );
    let s2b = b.attest(vendor(), 2, 0, 30);
    assert_eq!(
        v.verify(&s2b, &b.id, &key, t(2)),
        Err(AttestationError::SerialReused { serial: 2 })
    );
    let other_biz = BusinessId::new("other").unwrap();
    assert_eq!(
        v.verify(&s2, &other_biz, &key, t(2)),
        Err(AttestationError::WrongBusiness)
    );
    // The verifier's memory survives a restart, downgrade protection included.
    let mut v2 = AttestationVerifier::from_bytes(&v.to_bytes()).unwrap();
    assert_eq!(v2, v);
    assert!(matches!(
        v2.verify(&s1, &b.id, &key, t(2)),
        Err(AttestationError::Downgrade { .. })
    ));
    assert_eq!(
        HostingAttestation::new(b.id.clone(), SELF, 0, t(0), t(1)),
        Err(BuildError::ZeroSerial)
    );
    assert_eq!(
        HostingAttestation::new(b.id.clone(), SELF, 1, t(1), t(1)),
        Err(BuildError::EmptyValidity)
    );
    assert!(matches!(
        SignedAttestation::from_bytes(&[0xff, 0xff]),
        Err(AttestationError::Malformed)
    ));
}

#[test]
fn chat_privacy_names_every_reader() {
    let mut b = Biz::new(2);
    let key = *b.key.identity_key();
    let mut v = AttestationVerifier::new();
    let p = ChatPrivacy::from_attestation(
        &v.verify(&b.attest(SELF, 1, 0, 30), &b.id, &key, t(1))
            .unwrap(),
    );
    assert!(p.is_end_to_end_to_business());
    assert_eq!(p.readers(), [Reader::User, Reader::BusinessAndStaff]);
    let p = ChatPrivacy::from_attestation(
        &v.verify(&b.attest(cloud(), 2, 0, 30), &b.id, &key, t(1))
            .unwrap(),
    );
    assert!(!p.is_end_to_end_to_business());
    assert_eq!(
        p.readers()[2],
        Reader::OperatorAsProcessor {
            name: "Operator Cloud".into(),
            retention_days: 30
        }
    );
    let p = ChatPrivacy::from_attestation(
        &v.verify(&b.attest(vendor(), 3, 0, 30), &b.id, &key, t(1))
            .unwrap(),
    );
    assert_eq!(
        p.readers()[2],
        Reader::Vendor {
            name: "Helpdesk Vendor Inc".into(),
            retention_days: Some(90)
        }
    );
}

#[test]
fn notice_texts_are_the_in_chat_texts() {
    assert_eq!(
        Notice::EndToEndEncrypted.default_text(),
        "Messages and calls are end-to-end encrypted. No one outside of this chat, not even WhatsApp, can read or listen to them."
    );
    assert_eq!(
        Notice::OperatorHosted.default_text(),
        "This business uses a secure service from Meta to manage this chat."
    );
    assert_eq!(
        Notice::VendorManaged.default_text(),
        "This business works with other companies to manage this chat."
    );
    let codes: Vec<&str> = [
        Notice::EndToEndEncrypted,
        Notice::OperatorHosted,
        Notice::VendorManaged,
        Notice::HostingChanged { serial: 1 },
        Notice::VerificationChanged {
            label: BusinessLabel::OfficialBusinessAccount,
        },
    ]
    .iter()
    .map(Notice::code)
    .collect();
    assert_eq!(
        codes,
        [
            "business.e2ee",
            "business.operator_hosted",
            "business.vendor_managed",
            "business.hosting_changed",
            "business.verification_changed"
        ]
    );
    assert_eq!(
        BusinessLabel::OfficialBusinessAccount.text(),
        "Official business account"
    );
    assert_eq!(BusinessLabel::BusinessAccount.text(), "Business account");
}

fn msg(id: u64, serial: u64) -> ChatItem {
    ChatItem::Message {
        id,
        hosting_serial: serial,
    }
}

#[test]
fn a_hosting_change_is_told_before_the_first_message_it_affects() {
    let mut b = Biz::new(3);
    let key = *b.key.identity_key();
    let mut v = AttestationVerifier::new();
    let mut tr = DisclosureTracker::new(b.id.clone());
    // A message arrives before any attestation: it waits.
    assert_eq!(tr.on_message(1, Some(1)).unwrap(), []);
    assert_eq!(tr.held_count(), 1);
    let a1 = v
        .verify(&b.attest(SELF, 1, 0, 60), &b.id, &key, t(1))
        .unwrap();
    assert_eq!(
        tr.on_attestation(&a1).unwrap(),
        [ChatItem::Notice(Notice::EndToEndEncrypted), msg(1, 1)]
    );
    assert_eq!(tr.on_message(2, Some(1)).unwrap(), [msg(2, 1)]);
    // The business moves to the operator's cloud; a message tagged with serial 2 arrives
    // before the profile refresh: it waits, and so does everything behind it.
    assert_eq!(tr.on_message(3, Some(2)).unwrap(), []);
    assert_eq!(tr.on_message(4, None).unwrap(), []);
    let a2 = v
        .verify(&b.attest(cloud(), 2, 1, 60), &b.id, &key, t(2))
        .unwrap();
    assert_eq!(
        tr.on_attestation(&a2).unwrap(),
        [
            ChatItem::Notice(Notice::HostingChanged { serial: 2 }),
            ChatItem::Notice(Notice::OperatorHosted),
            msg(3, 2),
            msg(4, 2)
        ]
    );
    // A profile refresh shows a vendor: told at once, even with no message.
    let a3 = v
        .verify(&b.attest(vendor(), 3, 2, 60), &b.id, &key, t(3))
        .unwrap();
    assert_eq!(
        tr.on_attestation(&a3).unwrap(),
        [
            ChatItem::Notice(Notice::HostingChanged { serial: 3 }),
            ChatItem::Notice(Notice::VendorManaged)
        ]
    );
    assert_eq!(tr.on_message(5, Some(3)).unwrap(), [msg(5, 3)]);
    // A late message handled under the cloud hosting is shown after saying so again.
    assert_eq!(
        tr.on_message(6, Some(2)).unwrap(),
        [
            ChatItem::Notice(Notice::HostingChanged { serial: 2 }),
            ChatItem::Notice(Notice::OperatorHosted),
            msg(6, 2)
        ]
    );
    assert_eq!(
        tr.on_message(7, Some(1)).unwrap()[1],
        ChatItem::Notice(Notice::EndToEndEncrypted)
    );
    // Labels.
    assert_eq!(tr.on_label(BusinessLabel::BusinessAccount), []);
    assert_eq!(
        tr.on_label(BusinessLabel::OfficialBusinessAccount),
        [ChatItem::Notice(Notice::VerificationChanged {
            label: BusinessLabel::OfficialBusinessAccount
        })]
    );
    // State round-trips.
    let back = DisclosureTracker::from_bytes(&tr.to_bytes()).unwrap();
    assert_eq!(back, tr);
}

#[test]
fn a_renewal_with_the_same_hosting_says_nothing() {
    let mut b = Biz::new(4);
    let key = *b.key.identity_key();
    let mut v = AttestationVerifier::new();
    let mut tr = DisclosureTracker::new(b.id.clone());
    let a1 = v
        .verify(&b.attest(cloud(), 1, 0, 30), &b.id, &key, t(1))
        .unwrap();
    assert_eq!(
        tr.on_attestation(&a1).unwrap(),
        [ChatItem::Notice(Notice::OperatorHosted)]
    );
    let a2 = v
        .verify(&b.attest(cloud(), 2, 29, 60), &b.id, &key, t(29))
        .unwrap();
    assert_eq!(tr.on_attestation(&a2).unwrap(), []);
    // A retention change is a change the user is told about.
    let longer = HostingMode::OperatorCloud {
        operator: match cloud() {
            HostingMode::OperatorCloud { operator, .. } => operator,
            _ => unreachable!(),
        },
        retention_days: 60,
    };
    let a3 = v
        .verify(&b.attest(longer, 3, 30, 60), &b.id, &key, t(31))
        .unwrap();
    assert_eq!(tr.on_attestation(&a3).unwrap().len(), 2);
}

#[test]
fn tracker_errors_are_typed() {
    let mut b = Biz::new(5);
    let key = *b.key.identity_key();
    let mut v = AttestationVerifier::new();
    let mut tr = DisclosureTracker::new(BusinessId::new("someone-else").unwrap());
    let a = v
        .verify(&b.attest(SELF, 5, 0, 30), &b.id, &key, t(1))
        .unwrap();
    assert_eq!(tr.on_attestation(&a), Err(TrackError::WrongBusiness));
    let mut tr = DisclosureTracker::new(b.id.clone());
    tr.on_attestation(&a).unwrap();
    assert_eq!(
        tr.on_message(1, Some(3)),
        Err(TrackError::UnknownSerial { serial: 3 })
    );
    let mut tr = DisclosureTracker::new(b.id.clone());
    for i in 0..confide::business::MAX_HELD_MESSAGES as u64 {
        tr.on_message(i, Some(9)).unwrap();
    }
    assert_eq!(tr.on_message(9999, Some(9)), Err(TrackError::TooManyHeld));
    assert!(matches!(
        DisclosureTracker::from_bytes(b"\x08\x07"),
        Err(LoadError::UnsupportedVersion { found: 7 })
    ));
}

#[test]
fn hosting_tags_round_trip() {
    let tag = HostingTag {
        business_id: BusinessId::new("acme-shop").unwrap(),
        serial: 42,
    };
    assert_eq!(HostingTag::from_bytes(&tag.to_bytes()).unwrap(), tag);
    assert!(HostingTag::from_bytes(&[0x12, 0x00]).is_err());
    assert!(BusinessId::new("").is_err());
    assert!(BusinessId::new("a\u{0}b").is_err());
}
