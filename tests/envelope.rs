//! Content messages, padding and disappearing messages (`confide::envelope`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;

use common::{Device, NOW, rng};
use confide::Timestamp;
use confide::envelope::{
    AttachmentKind, AttachmentPointer, BlobId, Body, Chat, Content, ContentError, ContentId,
    DataMessage, Direction, DisappearingTimer, Header, MessageLifecycle, PADDING_BLOCK,
    PaddingError, Purged, Quote, Reaction, ReadError, Receipt, ReceiptKind, ReceiveError,
    SendError, Sha256Digest, TimerError, Typing, VIEW_ONCE_LIFETIME, ViewOnceError, pad,
    padded_len, purge, unpad,
};
use confide::media::{self, MediaKey, MediaKind};

const HOUR: u64 = 60 * 60 * 1000;
const DAY: u64 = 24 * HOUR;

fn at(ms_after_now: u64) -> Timestamp {
    Timestamp::from_millis(NOW.as_millis() + ms_after_now)
}

fn id(n: u64) -> ContentId {
    let mut b = [0u8; 16];
    b[8..].copy_from_slice(&n.to_be_bytes());
    ContentId::from_bytes(b)
}

fn header(n: u64, sent_at: Timestamp) -> Header {
    Header::new(id(n), sent_at)
}

const ALL_KINDS: [AttachmentKind; 11] = [
    AttachmentKind::Image,
    AttachmentKind::Video,
    AttachmentKind::Audio,
    AttachmentKind::Document,
    AttachmentKind::Sticker,
    AttachmentKind::History,
    AttachmentKind::AppState,
    AttachmentKind::LinkThumbnail,
    AttachmentKind::StickerPack,
    AttachmentKind::Gif,
    AttachmentKind::Ptt,
];

fn pointer(seed: u8, kind: AttachmentKind) -> AttachmentPointer {
    AttachmentPointer {
        blob_id: BlobId::try_from(&[b'b', seed][..]).unwrap(),
        media_key: MediaKey::from_bytes([seed; 32]),
        plaintext_sha256: Sha256Digest::from_bytes([seed ^ 0x55; 32]),
        encrypted_sha256: Sha256Digest::from_bytes([seed ^ 0xaa; 32]),
        length: 1000 + u64::from(seed),
        kind,
    }
}

fn text_message(text: &str, timer: DisappearingTimer) -> Body {
    Body::Message(DataMessage::builder().text(text).build(timer).unwrap())
}

fn message(c: &Content) -> &DataMessage {
    match c.body() {
        Body::Message(m) => m,
        other => panic!("not a message: {other:?}"),
    }
}

/// Parses `bytes` and checks the result re-serializes to exactly `bytes`.
fn reparse(bytes: &[u8]) -> Content {
    let c = Content::try_from(bytes).unwrap();
    assert_eq!(c.as_bytes(), bytes);
    c
}

// ---------------------------------------------------------------------------------------
// A minimal protobuf writer, for inputs confide itself would never produce.

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn fv(field: u32, v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    varint(u64::from(field) << 3, &mut out);
    varint(v, &mut out);
    out
}

fn fb(field: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint((u64::from(field) << 3) | 2, &mut out);
    varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

/// Format 1, id 1, sent at NOW, then the given body field.
fn raw_content(body_field: u32, body: &[u8]) -> Vec<u8> {
    [
        fv(1, 1),
        fb(2, id(1).as_bytes()),
        fv(3, NOW.as_millis()),
        fb(body_field, body),
    ]
    .concat()
}

struct RawAttachment {
    blob_id: Vec<u8>,
    media_key: Vec<u8>,
    plaintext_sha256: Vec<u8>,
    encrypted_sha256: Vec<u8>,
    kind: u64,
}

impl Default for RawAttachment {
    fn default() -> Self {
        Self {
            blob_id: b"blob".to_vec(),
            media_key: vec![7; 32],
            plaintext_sha256: vec![8; 32],
            encrypted_sha256: vec![9; 32],
            kind: 1,
        }
    }
}

impl RawAttachment {
    fn encode(&self) -> Vec<u8> {
        [
            fb(1, &self.blob_id),
            fb(2, &self.media_key),
            fb(3, &self.plaintext_sha256),
            fb(4, &self.encrypted_sha256),
            fv(5, 42),
            fv(6, self.kind),
        ]
        .concat()
    }

    fn in_message(&self) -> Vec<u8> {
        raw_content(10, &fb(2, &self.encode()))
    }
}

// ---------------------------------------------------------------------------------------
// Content round trips

#[test]
fn every_content_kind_round_trips() {
    let full = DataMessage::builder()
        .text("hello 👋")
        .quote(Quote::new(id(7), Some("earlier".into())).unwrap())
        .build(DisappearingTimer::DAYS_90)
        .unwrap();
    let full = ALL_KINDS
        .iter()
        .enumerate()
        .fold(DataMessage::builder().text("all kinds"), |b, (i, k)| {
            b.attachment(pointer(i as u8, *k))
        })
        .quote(full.quote().cloned().unwrap())
        .build(DisappearingTimer::DAYS_7)
        .unwrap();
    let view_once = DataMessage::builder()
        .attachment(pointer(1, AttachmentKind::Image))
        .view_once()
        .build(DisappearingTimer::OFF)
        .unwrap();
    let custom = DisappearingTimer::from_secs(3600).unwrap();
    let bodies = vec![
        text_message("hi", DisappearingTimer::OFF),
        text_message("hi", DisappearingTimer::HOURS_24),
        text_message("hi", custom),
        Body::Message(full),
        Body::Message(view_once),
        Body::Reaction(Reaction::add(id(3), "👍🏽").unwrap()),
        Body::Reaction(Reaction::remove(id(3), "👍🏽").unwrap()),
        Body::Receipt(Receipt::new(ReceiptKind::Delivery, vec![id(3)]).unwrap()),
        Body::Receipt(Receipt::new(ReceiptKind::Read, vec![id(3), id(4), id(5)]).unwrap()),
        Body::Typing(Typing::Started),
        Body::Typing(Typing::Stopped),
        Body::TimerChange(DisappearingTimer::OFF),
        Body::TimerChange(DisappearingTimer::HOURS_24),
        Body::TimerChange(DisappearingTimer::DAYS_7),
        Body::TimerChange(DisappearingTimer::DAYS_90),
        Body::Unsupported,
    ];
    for (n, body) in bodies.into_iter().enumerate() {
        let mut h = header(n as u64, at(n as u64));
        if n % 2 == 0 {
            h.hosting_serial = Some(u64::MAX - n as u64);
        }
        let sent = Content::new(h, body.clone());
        let got = reparse(sent.as_bytes());
        assert_eq!(got, sent, "kind {n}");
        assert_eq!(got.header(), &h);
        assert_eq!(got.body(), &body);
        assert_eq!(Content::from_padded(&sent.to_padded()).unwrap(), sent);
    }
}

#[test]
fn builders_enforce_the_parser_rules() {
    let off = DisappearingTimer::OFF;
    assert_eq!(
        DataMessage::builder().build(off),
        Err(ContentError::EmptyMessage)
    );
    assert_eq!(
        DataMessage::builder().text("").build(off),
        Err(ContentError::EmptyMessage)
    );
    assert_eq!(
        DataMessage::builder().text("x").view_once().build(off),
        Err(ContentError::ViewOnceWithoutMedia)
    );
    assert_eq!(
        DataMessage::builder().text("x".repeat(65_537)).build(off),
        Err(ContentError::TooLong {
            field: "message.text",
            max: 65_536,
            found: 65_537
        })
    );
    assert!(
        DataMessage::builder()
            .text("x".repeat(65_536))
            .build(off)
            .is_ok()
    );
    let many = (0..33).fold(DataMessage::builder(), |b, i| {
        b.attachment(pointer(i, AttachmentKind::Image))
    });
    assert_eq!(
        many.build(off),
        Err(ContentError::TooMany {
            field: "message.attachments",
            max: 32,
            found: 33
        })
    );
    assert_eq!(
        Reaction::add(id(1), ""),
        Err(ContentError::MissingField {
            field: "reaction.emoji"
        })
    );
    assert!(matches!(
        Reaction::add(id(1), &"🙂".repeat(17)),
        Err(ContentError::TooLong {
            max: 64,
            found: 68,
            ..
        })
    ));
    assert_eq!(
        Receipt::new(ReceiptKind::Read, vec![]),
        Err(ContentError::MissingField {
            field: "receipt.targets"
        })
    );
    assert!(matches!(
        Receipt::new(ReceiptKind::Read, vec![id(1); 1001]),
        Err(ContentError::TooMany { found: 1001, .. })
    ));
    assert!(matches!(
        Quote::new(id(1), Some("q".repeat(65_537))),
        Err(ContentError::TooLong {
            field: "quote.text",
            ..
        })
    ));
    assert_eq!(
        BlobId::try_from(&[][..]),
        Err(ContentError::MissingField {
            field: "attachment.blob_id"
        })
    );
    assert_eq!(
        DisappearingTimer::from_secs(90 * 86_400 + 1),
        Err(TimerError::TooLong {
            seconds: 90 * 86_400 + 1
        })
    );
}

#[test]
fn bad_content_gets_a_typed_error() {
    let wrong_len = |field, expected, found| ContentError::WrongLength {
        field,
        expected,
        found,
    };
    let ok = RawAttachment::default();
    let cases: Vec<(Vec<u8>, ContentError)> = vec![
        (vec![0xff, 0xff, 0xff], ContentError::Malformed),
        (
            [fv(1, 1), fb(2, &[1; 16]), fb(10, &fb(1, &[0xff]))].concat(),
            ContentError::Malformed,
        ),
        (
            [fv(1, 2), fb(2, &[1; 16])].concat(),
            ContentError::UnsupportedFormat { found: 2 },
        ),
        (
            fb(2, &[1; 16]),
            ContentError::UnsupportedFormat { found: 0 },
        ),
        ([fv(1, 1)].concat(), wrong_len("id", 16, 0)),
        (
            [fv(1, 1), fb(2, &[1; 15])].concat(),
            wrong_len("id", 16, 15),
        ),
        (
            RawAttachment {
                media_key: vec![1; 31],
                ..RawAttachment::default()
            }
            .in_message(),
            wrong_len("attachment.media_key", 32, 31),
        ),
        (
            RawAttachment {
                plaintext_sha256: vec![],
                ..RawAttachment::default()
            }
            .in_message(),
            wrong_len("attachment.plaintext_sha256", 32, 0),
        ),
        (
            RawAttachment {
                encrypted_sha256: vec![1; 33],
                ..RawAttachment::default()
            }
            .in_message(),
            wrong_len("attachment.encrypted_sha256", 32, 33),
        ),
        (
            RawAttachment {
                blob_id: vec![],
                ..RawAttachment::default()
            }
            .in_message(),
            ContentError::MissingField {
                field: "attachment.blob_id",
            },
        ),
        (
            RawAttachment {
                blob_id: vec![1; 513],
                ..RawAttachment::default()
            }
            .in_message(),
            ContentError::TooLong {
                field: "attachment.blob_id",
                max: 512,
                found: 513,
            },
        ),
        (
            RawAttachment {
                kind: 0,
                ..RawAttachment::default()
            }
            .in_message(),
            ContentError::UnknownValue {
                field: "attachment.kind",
                value: 0,
            },
        ),
        (
            RawAttachment {
                kind: 12,
                ..RawAttachment::default()
            }
            .in_message(),
            ContentError::UnknownValue {
                field: "attachment.kind",
                value: 12,
            },
        ),
        (
            raw_content(10, &fb(2, &ok.encode()).repeat(33)),
            ContentError::TooMany {
                field: "message.attachments",
                max: 32,
                found: 33,
            },
        ),
        (raw_content(10, &[]), ContentError::EmptyMessage),
        (
            raw_content(10, &[fv(5, 1), fb(1, b"caption")].concat()),
            ContentError::ViewOnceWithoutMedia,
        ),
        (
            raw_content(10, &[fb(1, &[b'x'; 65_537])].concat()),
            ContentError::TooLong {
                field: "message.text",
                max: 65_536,
                found: 65_537,
            },
        ),
        (
            raw_content(10, &[fb(1, b"hi"), fv(4, 7_776_001)].concat()),
            ContentError::Timer {
                field: "message.timer_seconds",
                source: TimerError::TooLong { seconds: 7_776_001 },
            },
        ),
        (
            raw_content(10, &[fb(1, b"hi"), fb(3, &fb(1, &[1; 4]))].concat()),
            wrong_len("quote.target", 16, 4),
        ),
        (
            raw_content(11, &fb(1, &[1; 16])),
            ContentError::MissingField {
                field: "reaction.emoji",
            },
        ),
        (
            raw_content(11, &[fb(1, &[1; 16]), fb(2, &[b'a'; 65])].concat()),
            ContentError::TooLong {
                field: "reaction.emoji",
                max: 64,
                found: 65,
            },
        ),
        (
            raw_content(11, &fb(2, "👍".as_bytes())),
            wrong_len("reaction.target", 16, 0),
        ),
        (
            raw_content(12, &fv(1, 1)),
            ContentError::MissingField {
                field: "receipt.targets",
            },
        ),
        (
            raw_content(12, &fb(2, &[1; 16])),
            ContentError::UnknownValue {
                field: "receipt.kind",
                value: 0,
            },
        ),
        (
            raw_content(12, &[fv(1, 2), fb(2, &[1; 17])].concat()),
            wrong_len("receipt.targets", 16, 17),
        ),
        (
            raw_content(13, &fv(1, 9)),
            ContentError::UnknownValue {
                field: "typing.action",
                value: 9,
            },
        ),
        (
            raw_content(14, &fv(1, u64::from(u32::MAX))),
            ContentError::Timer {
                field: "timer_change.timer_seconds",
                source: TimerError::TooLong { seconds: u32::MAX },
            },
        ),
    ];
    for (n, (bytes, expected)) in cases.iter().enumerate() {
        assert_eq!(Content::try_from(&bytes[..]), Err(*expected), "case {n}");
        // The same refusal through padding.
        assert_eq!(
            Content::from_padded(&pad(bytes)),
            Err(*expected),
            "case {n}"
        );
    }
    // The well-formed attachment itself parses.
    let c = reparse(&ok.in_message());
    assert_eq!(message(&c).attachments()[0].kind, AttachmentKind::Image);
}

#[test]
fn error_texts_carry_no_user_data() {
    let err = Content::try_from(&raw_content(10, &fb(1, &[b'x'; 65_537]))[..]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "field message.text is 65537 bytes, more than 65536"
    );
    let e = SendError::DuplicateId { id: id(9) };
    assert_eq!(e.to_string(), "the chat already has a message with this id");
}

#[test]
fn debug_output_hides_keys_and_text() {
    let key = MediaKey::from_bytes([0x42; 32]);
    assert_eq!(format!("{key:?}"), "MediaKey(***)");
    let c = Content::new(
        header(1, NOW),
        Body::Message(
            DataMessage::builder()
                .text("secret words")
                .attachment(pointer(0x42, AttachmentKind::Document))
                .quote(Quote::new(id(2), Some("quoted words".into())).unwrap())
                .build(DisappearingTimer::OFF)
                .unwrap(),
        ),
    );
    let debug = format!("{c:?}");
    assert!(!debug.contains("words"), "{debug}");
    assert!(
        !debug.contains("42, 42") && !debug.contains("4242"),
        "{debug}"
    );
    assert!(debug.contains("text: Some(<12 bytes>)"), "{debug}");
    assert!(debug.contains("media_key: MediaKey(***)"), "{debug}");
    let r = Reaction::add(id(2), "❤️").unwrap();
    assert_eq!(
        format!("{r:?}"),
        "Reaction { target: ContentId(00000000000000000000000000000002), \
         emoji: <6 bytes>, remove: false }"
    );
}

#[test]
fn a_received_pointer_decrypts_its_blob() {
    // The sender encrypts and uploads; the pointer travels in the content; the
    // recipient fetches, checks and decrypts with what the parsed pointer says.
    let mut r = rng(33);
    for kind in ALL_KINDS {
        let key = MediaKey::generate(&mut r);
        let (upload, info) = media::encrypt_bytes(&key, kind.key_kind(), b"a voice note, say");
        let pointer = AttachmentPointer {
            blob_id: BlobId::try_from(&b"blob"[..]).unwrap(),
            media_key: key,
            plaintext_sha256: Sha256Digest::from_bytes(info.file_sha256),
            encrypted_sha256: Sha256Digest::from_bytes(info.file_enc_sha256),
            length: info.file_length,
            kind,
        };
        let sent = Content::new(
            header(1, NOW),
            Body::Message(
                DataMessage::builder()
                    .attachment(pointer)
                    .build(DisappearingTimer::OFF)
                    .unwrap(),
            ),
        );
        let got = Content::from_padded(&sent.to_padded()).unwrap();
        let p = &message(&got).attachments()[0];
        let expected = media::Expected::none()
            .file_enc_sha256(*p.encrypted_sha256.as_bytes())
            .file_sha256(*p.plaintext_sha256.as_bytes());
        let (plain, _) =
            media::decrypt_bytes(&p.media_key, p.kind.key_kind(), &upload, expected).unwrap();
        assert_eq!(plain, b"a voice note, say", "{kind:?}");
    }
    assert_eq!(AttachmentKind::Gif.key_kind(), MediaKind::Video);
    assert_eq!(AttachmentKind::Ptt.key_kind(), MediaKind::Audio);
    assert_eq!(AttachmentKind::Sticker.key_kind(), MediaKind::Sticker);
}

#[test]
fn media_keys_zeroize_on_drop() {
    fn zeroized_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    zeroized_on_drop::<MediaKey>();
    assert_eq!(MediaKey::from_bytes([1; 32]), MediaKey::from_bytes([1; 32]));
    assert_ne!(MediaKey::from_bytes([1; 32]), MediaKey::from_bytes([2; 32]));
}

// ---------------------------------------------------------------------------------------
// Unknown fields

#[test]
fn unknown_fields_from_a_newer_version_survive_byte_for_byte() {
    // A "format 1, later version" message: the known fields plus a new top-level
    // field 20 and a new field 15 inside the data message.
    let data = [fb(1, b"hi"), fv(15, 42), fb(16, b"new nested")].concat();
    let newer = [
        fv(1, 1),
        fb(2, id(1).as_bytes()),
        fv(3, NOW.as_millis()),
        fb(10, &data),
        fb(20, b"new top-level"),
        fv(21, 7),
    ]
    .concat();
    let parsed = reparse(&newer);
    assert_eq!(message(&parsed).text(), Some("hi"));
    // Re-encoding from the fields would drop them: that is why the bytes are kept.
    let rebuilt = Content::new(*parsed.header(), parsed.body().clone());
    assert_ne!(rebuilt.as_bytes(), &newer[..]);
    assert_eq!(rebuilt, Content::try_from(rebuilt.as_bytes()).unwrap());
    // Through padding, and through a chat (stored, then listed), still the same bytes.
    let padded = parsed.to_padded();
    assert_eq!(unpad(&padded).unwrap(), &newer[..]);
    let mut chat = Chat::new(DisappearingTimer::OFF);
    chat.receive(Content::from_padded(&padded).unwrap(), NOW)
        .unwrap();
    let (_, stored) = chat.messages(NOW).next().unwrap();
    assert_eq!(stored.unwrap().as_bytes(), &newer[..]);
}

#[test]
fn a_body_kind_from_a_newer_version_is_unsupported_not_refused() {
    let newer = raw_content(30, &fb(1, b"a poll, say"));
    let parsed = reparse(&newer);
    assert_eq!(parsed.body(), &Body::Unsupported);
    assert_eq!(parsed.id(), id(1));
}

// ---------------------------------------------------------------------------------------
// Padding

#[test]
fn padding_boundaries() {
    for (len, padded) in [
        (0, 160),
        (1, 160),
        (158, 160),
        (159, 160),
        (160, 320),
        (161, 320),
        (319, 320),
        (320, 480),
        (1000, 1120),
    ] {
        let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
        let p = pad(&content);
        assert_eq!(p.len(), padded, "len {len}");
        assert_eq!(padded_len(len), padded);
        assert_eq!(p[len], 0x80);
        assert!(p[len + 1..].iter().all(|&b| b == 0));
        assert_eq!(unpad(&p).unwrap(), &content[..], "len {len}");
    }
    // Content may itself end in 0x80 or zeros: only the last marker counts.
    for content in [vec![0x80], vec![0x80, 0], vec![0; 159], vec![1, 0x80, 0, 0]] {
        assert_eq!(unpad(&pad(&content)).unwrap(), &content[..]);
    }
}

#[test]
fn bad_padding_is_refused() {
    let block = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut p = vec![0u8; PADDING_BLOCK];
        f(&mut p);
        p
    };
    let cases: Vec<(Vec<u8>, PaddingError)> = vec![
        (vec![], PaddingError::BadLength { len: 0 }),
        (vec![0x80], PaddingError::BadLength { len: 1 }),
        (vec![0; 159], PaddingError::BadLength { len: 159 }),
        (
            pad(b"abc")[..159].to_vec(),
            PaddingError::BadLength { len: 159 },
        ),
        (
            [&pad(b"abc")[..], &[0]].concat(),
            PaddingError::BadLength { len: 161 },
        ),
        (vec![0; 160], PaddingError::NoMarker),
        (block(&|p| p[159] = 0x01), PaddingError::NoMarker),
        (block(&|p| p[159] = 0x81), PaddingError::NoMarker),
        (
            block(&|p| {
                p[10] = 0x80;
                p[20] = 0x01
            }),
            PaddingError::NoMarker,
        ),
        (
            {
                let mut p = vec![0u8; 320];
                p[0] = 0x80;
                p
            },
            PaddingError::TooLong { found: 320 },
        ),
        (
            {
                let mut p = pad(&[7; 100]).to_vec();
                p.extend_from_slice(&[0; 160]);
                p
            },
            PaddingError::TooLong { found: 220 },
        ),
    ];
    for (n, (bytes, expected)) in cases.into_iter().enumerate() {
        assert_eq!(unpad(&bytes), Err(expected), "case {n}");
        assert_eq!(
            Content::from_padded(&bytes),
            Err(ContentError::Padding(expected))
        );
    }
}

// ---------------------------------------------------------------------------------------
// Through a real session

#[test]
fn content_travels_through_a_real_session() {
    let mut r = rng(31);
    let alice = Device::new("alice", &mut r);
    let mut bob = Device::new("bob", &mut r);
    alice.start(&mut bob, &mut r, true);
    let mut alice_chat = Chat::new(DisappearingTimer::DAYS_7);
    let mut bob_chat = Chat::new(DisappearingTimer::OFF);

    let mut h = Header::new(ContentId::random(&mut r), NOW);
    h.hosting_serial = Some(3);
    let sent = alice_chat
        .send(
            h,
            DataMessage::builder()
                .text("photo from the trip")
                .attachment(AttachmentPointer {
                    media_key: MediaKey::generate(&mut r),
                    ..pointer(1, AttachmentKind::Image)
                }),
        )
        .unwrap();
    let ct = confide::session::cipher::encrypt(
        &alice.store,
        &alice.address,
        &bob.address,
        &sent.to_padded(),
        &mut confide::SystemRng::new(),
        NOW,
    )
    .unwrap();
    assert!(!ct.serialized().windows(5).any(|w| w == b"photo"));
    let plain = zeroize::Zeroizing::new(bob.recv(&alice, &ct, &mut r).unwrap());
    let got = Content::from_padded(&plain).unwrap();
    assert_eq!(got, sent);
    assert_eq!(got.header().hosting_serial, Some(3));
    assert_eq!(message(&got).timer(), DisappearingTimer::DAYS_7);
    bob_chat.receive(got, at(1000)).unwrap();

    // Bob reacts and sends a read receipt; Alice decrypts both.
    for (n, body) in [
        Body::Reaction(Reaction::add(sent.id(), "🏔️").unwrap()),
        Body::Receipt(Receipt::new(ReceiptKind::Read, vec![sent.id()]).unwrap()),
    ]
    .into_iter()
    .enumerate()
    {
        let reply = Content::new(header(100 + n as u64, at(2000)), body);
        let ct = confide::session::cipher::encrypt(
            &bob.store,
            &bob.address,
            &alice.address,
            &reply.to_padded(),
            &mut confide::SystemRng::new(),
            NOW,
        )
        .unwrap();
        let plain = alice.recv(&bob, &ct, &mut r).unwrap();
        assert_eq!(Content::from_padded(&plain).unwrap(), reply);
    }
}

#[test]
fn ciphertext_lengths_reveal_only_the_padding_step() {
    let mut r = rng(32);
    let alice = Device::new("alice", &mut r);
    let mut bob = Device::new("bob", &mut r);
    alice.start(&mut bob, &mut r, false);
    // Prime the session so every message below is a plain type-2 message.
    let m = alice.send(&bob, b"x");
    bob.recv(&alice, &m, &mut r).unwrap();
    let reply = bob.send(&alice, b"y");
    alice.recv(&bob, &reply, &mut r).unwrap();

    let len_for = |text: &str, n: u64| {
        let c = Content::new(header(n, NOW), text_message(text, DisappearingTimer::OFF));
        let ct = confide::session::cipher::encrypt(
            &alice.store,
            &alice.address,
            &bob.address,
            &c.to_padded(),
            &mut confide::SystemRng::new(),
            NOW,
        )
        .unwrap();
        (c.as_bytes().len(), ct.serialized().len())
    };
    let (short, short_ct) = len_for("a", 1);
    let (longer, longer_ct) = len_for(&"b".repeat(100), 2);
    let (long, long_ct) = len_for(&"c".repeat(200), 3);
    assert!(short < longer && longer < 160 && long > 160);
    assert_eq!(short_ct, longer_ct);
    assert!(long_ct > longer_ct);
}

// ---------------------------------------------------------------------------------------
// Format 1 fixture

fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/content/format1_message.padded.bin")
}

fn fixture_content() -> Content {
    let mut h = Header::new(ContentId::from_bytes([0x11; 16]), NOW);
    h.hosting_serial = Some(42);
    let message = DataMessage::builder()
        .text("written by content format 1")
        .attachment(pointer(1, AttachmentKind::Image))
        .attachment(pointer(2, AttachmentKind::Ptt))
        .quote(Quote::new(ContentId::from_bytes([0x22; 16]), Some("quoted".into())).unwrap())
        .build(DisappearingTimer::DAYS_7)
        .unwrap();
    Content::new(h, Body::Message(message))
}

#[test]
fn format_1_fixture_still_parses() {
    // Written once with CONFIDE_WRITE_FIXTURES=1; committed and never regenerated.
    if std::env::var_os("CONFIDE_WRITE_FIXTURES").is_some() {
        std::fs::create_dir_all(fixture_path().parent().unwrap()).unwrap();
        std::fs::write(fixture_path(), fixture_content().to_padded()).unwrap();
    }
    let bytes = std::fs::read(fixture_path()).unwrap();
    assert_eq!(bytes.len(), 320);
    let c = Content::from_padded(&bytes).unwrap();
    assert_eq!(c.id(), ContentId::from_bytes([0x11; 16]));
    assert_eq!(c.header().sent_at, NOW);
    assert_eq!(c.header().hosting_serial, Some(42));
    let m = message(&c);
    assert_eq!(m.text(), Some("written by content format 1"));
    assert_eq!(m.timer(), DisappearingTimer::DAYS_7);
    assert!(!m.view_once());
    assert_eq!(
        m.attachments(),
        &[
            pointer(1, AttachmentKind::Image),
            pointer(2, AttachmentKind::Ptt)
        ]
    );
    let q = m.quote().unwrap();
    assert_eq!(q.target(), &ContentId::from_bytes([0x22; 16]));
    assert_eq!(q.text(), Some("quoted"));
    // This version still writes the same bytes for the same message.
    assert_eq!(&fixture_content().to_padded()[..], &bytes[..]);
}

// ---------------------------------------------------------------------------------------
// Disappearing messages as pure functions

fn record(direction: Direction, at_: Timestamp, timer: DisappearingTimer) -> MessageLifecycle {
    let m = DataMessage::builder()
        .text("t")
        .attachment(pointer(5, AttachmentKind::Video))
        .build(timer)
        .unwrap();
    MessageLifecycle::new(id(1), &m, direction, at_)
}

#[test]
fn sender_expiry_counts_from_sending() {
    for (timer, d) in [
        (DisappearingTimer::HOURS_24, DAY),
        (DisappearingTimer::DAYS_7, 7 * DAY),
        (DisappearingTimer::DAYS_90, 90 * DAY),
    ] {
        let mut r = record(Direction::Outgoing, NOW, timer);
        assert_eq!(r.expires_at(), Some(at(d)));
        // The peer reading it does not change the sender's copy.
        r.read_at = Some(at(d / 2));
        assert_eq!(r.expires_at(), Some(at(d)));
        assert!(!r.is_expired(at(d - 1)));
        assert!(r.is_expired(at(d)));
    }
    assert_eq!(
        record(Direction::Outgoing, NOW, DisappearingTimer::OFF).expires_at(),
        None
    );
}

#[test]
fn recipient_expiry_counts_from_reading() {
    let mut r = record(
        Direction::Incoming,
        at(5 * HOUR),
        DisappearingTimer::HOURS_24,
    );
    // Unread: the timer has not started, however long it waits.
    assert_eq!(r.expires_at(), None);
    assert!(!r.is_expired(at(365 * DAY)));
    r.read_at = Some(at(3 * DAY));
    assert_eq!(r.expires_at(), Some(at(4 * DAY)));
    r.timer = DisappearingTimer::OFF;
    assert_eq!(r.expires_at(), None);
}

#[test]
fn sender_and_recipient_clocks_are_independent() {
    // Alice's clock is a day behind Bob's; the content's sent_at is Alice's clock.
    let mut alice = Chat::new(DisappearingTimer::HOURS_24);
    let mut bob = Chat::new(DisappearingTimer::OFF);
    let alice_now = NOW;
    let bob_now = at(DAY);
    let sent = alice
        .send(header(1, alice_now), DataMessage::builder().text("hi"))
        .unwrap();
    bob.receive(sent.clone(), bob_now).unwrap();
    let bob_read = at(DAY + 2 * HOUR);
    bob.mark_read(id(1), bob_read).unwrap();
    // Alice's copy: 24 h after she sent it, on her clock. Bob's: 24 h after he read it,
    // on his. The skewed sent_at in the content changes neither.
    let (a, _) = alice.messages(alice_now).next().unwrap();
    assert_eq!(a.expires_at(), Some(at(DAY)));
    let (b, _) = bob.messages(bob_now).next().unwrap();
    assert_eq!(b.expires_at(), Some(at(2 * DAY + 2 * HOUR)));
    assert_eq!(b.at, bob_now);
}

#[test]
fn view_once_rules_as_pure_functions() {
    let mut r = record(Direction::Incoming, NOW, DisappearingTimer::OFF);
    r.view_once = true;
    let fourteen = VIEW_ONCE_LIFETIME.as_millis() as u64;
    assert_eq!(fourteen, 14 * DAY);
    assert_eq!(r.expires_at(), Some(at(14 * DAY)));
    r.opened_at = Some(at(HOUR));
    assert_eq!(r.expires_at(), Some(at(HOUR)));
    // With a timer too, the earliest rule wins.
    let mut r = record(Direction::Incoming, NOW, DisappearingTimer::HOURS_24);
    r.view_once = true;
    r.read_at = Some(at(HOUR));
    assert_eq!(r.expires_at(), Some(at(25 * HOUR)));
    // opened_at means nothing for a message that is not view-once.
    let mut r = record(Direction::Incoming, NOW, DisappearingTimer::OFF);
    r.opened_at = Some(NOW);
    assert_eq!(r.expires_at(), None);
}

#[test]
fn purge_function_over_store_records() {
    let mut a = record(Direction::Outgoing, NOW, DisappearingTimer::HOURS_24);
    a.id = id(1);
    let mut b = record(Direction::Incoming, NOW, DisappearingTimer::DAYS_7);
    b.id = id(2);
    b.read_at = Some(at(HOUR));
    let mut c = record(Direction::Incoming, NOW, DisappearingTimer::DAYS_7);
    c.id = id(3);
    let records = vec![a.clone(), b, c];
    let early = purge(&records, at(DAY - 1));
    assert!(early.messages.is_empty() && early.attachments.is_empty());
    assert_eq!(early.next_expiry, Some(at(DAY)));
    let p = purge(&records, at(DAY));
    assert_eq!(p.messages, vec![id(1)]);
    assert_eq!(p.attachments, a.attachments);
    assert_eq!(p.next_expiry, Some(at(7 * DAY + HOUR)));
    let all = purge(records.iter(), at(365 * DAY));
    assert_eq!(all.messages, vec![id(1), id(2)]);
    assert_eq!(all.next_expiry, None);
    assert_eq!(purge(&[], NOW), Purged::default());
}

// ---------------------------------------------------------------------------------------
// Chats

#[test]
fn timer_changes_apply_to_later_messages_only() {
    let mut chat = Chat::new(DisappearingTimer::OFF);
    let timer_of = |c: &Content| message(c).timer();
    let m1 = chat
        .send(header(1, NOW), DataMessage::builder().text("1"))
        .unwrap();
    assert_eq!(timer_of(&m1), DisappearingTimer::OFF);

    let change = chat
        .set_timer(header(2, at(1)), DisappearingTimer::DAYS_7)
        .unwrap();
    assert_eq!(change.body(), &Body::TimerChange(DisappearingTimer::DAYS_7));
    let m2 = chat
        .send(header(3, at(2)), DataMessage::builder().text("2"))
        .unwrap();
    assert_eq!(timer_of(&m2), DisappearingTimer::DAYS_7);

    // The peer turns it down to 24 h.
    let theirs = Content::new(
        header(4, at(3)),
        Body::TimerChange(DisappearingTimer::HOURS_24),
    );
    chat.receive(theirs, at(3)).unwrap();
    assert_eq!(chat.timer(), DisappearingTimer::HOURS_24);
    let m3 = chat
        .send(header(5, at(4)), DataMessage::builder().text("3"))
        .unwrap();
    assert_eq!(timer_of(&m3), DisappearingTimer::HOURS_24);

    // A received message keeps the timer its sender stamped, whatever ours is.
    let incoming = Content::new(
        header(6, at(5)),
        text_message("x", DisappearingTimer::DAYS_90),
    );
    chat.receive(incoming, at(5)).unwrap();

    let timers: Vec<_> = chat.messages(at(5)).map(|(l, _)| l.timer).collect();
    assert_eq!(
        timers,
        [
            DisappearingTimer::OFF,
            DisappearingTimer::DAYS_7,
            DisappearingTimer::HOURS_24,
            DisappearingTimer::DAYS_90
        ]
    );
    let events: Vec<_> = chat
        .events()
        .iter()
        .map(|e| (e.id, e.direction, e.timer))
        .collect();
    assert_eq!(
        events,
        [
            (id(2), Direction::Outgoing, DisappearingTimer::DAYS_7),
            (id(4), Direction::Incoming, DisappearingTimer::HOURS_24)
        ]
    );
    // Notices never disappear; the 24 h message does.
    let p = chat.purge(at(4 + DAY));
    assert_eq!(p.messages, vec![id(5)]);
    assert_eq!(chat.events().len(), 2);
}

#[test]
fn default_timer_applies_to_new_chats_only() {
    let mut default = DisappearingTimer::OFF;
    let mut before = Chat::new(default);
    default = DisappearingTimer::DAYS_90;
    let mut after = Chat::new(default);
    default = DisappearingTimer::HOURS_24;
    assert_eq!(before.timer(), DisappearingTimer::OFF);
    assert_eq!(after.timer(), DisappearingTimer::DAYS_90);
    assert_eq!(Chat::new(default).timer(), DisappearingTimer::HOURS_24);
    // A default creates no notice; announcing it is an explicit timer change.
    assert!(after.events().is_empty());

    let old = before
        .send(header(1, NOW), DataMessage::builder().text("old chat"))
        .unwrap();
    let new = after
        .send(header(1, NOW), DataMessage::builder().text("new chat"))
        .unwrap();
    assert_eq!(message(&old).timer(), DisappearingTimer::OFF);
    assert_eq!(message(&new).timer(), DisappearingTimer::DAYS_90);
    assert_eq!(before.purge(at(1000 * DAY)).messages, vec![]);
    assert_eq!(after.purge(at(90 * DAY)).messages, vec![id(1)]);
}

#[test]
fn purge_removes_expired_messages_and_their_keys() {
    let mut chat = Chat::new(DisappearingTimer::HOURS_24);
    chat.send(
        header(1, NOW),
        DataMessage::builder()
            .attachment(pointer(1, AttachmentKind::Image))
            .attachment(pointer(2, AttachmentKind::Document)),
    )
    .unwrap();
    let incoming = |n, timer| {
        Content::new(
            header(n, NOW),
            Body::Message(
                DataMessage::builder()
                    .attachment(pointer(n as u8, AttachmentKind::Audio))
                    .build(timer)
                    .unwrap(),
            ),
        )
    };
    chat.receive(incoming(3, DisappearingTimer::HOURS_24), at(HOUR))
        .unwrap();
    chat.receive(incoming(4, DisappearingTimer::HOURS_24), at(HOUR))
        .unwrap();
    chat.mark_read(id(4), at(2 * HOUR)).unwrap();
    chat.mark_read(id(4), at(3 * HOUR)).unwrap(); // first read time kept

    let early = chat.purge(at(DAY - 1));
    assert!(early.messages.is_empty());
    assert_eq!(early.next_expiry, Some(at(DAY)));

    let p = chat.purge(at(DAY));
    assert_eq!(p.messages, vec![id(1)]);
    assert_eq!(
        p.attachments,
        vec![
            pointer(1, AttachmentKind::Image).blob_id,
            pointer(2, AttachmentKind::Document).blob_id
        ]
    );
    assert_eq!(p.next_expiry, Some(at(DAY + 2 * HOUR)));
    let left: Vec<_> = chat.messages(at(DAY)).map(|(l, _)| l.id).collect();
    assert_eq!(left, [id(3), id(4)]);

    let p = chat.purge(at(DAY + 2 * HOUR));
    assert_eq!(p.messages, vec![id(4)]);
    assert_eq!(
        p.attachments,
        vec![pointer(4, AttachmentKind::Audio).blob_id]
    );
    assert_eq!(p.next_expiry, None); // message 3 is unread
    assert_eq!(
        chat.mark_read(id(4), at(DAY + 3 * HOUR)),
        Err(ReadError::UnknownMessage { id: id(4) })
    );
    assert_eq!(
        chat.mark_read(id(1), at(DAY + 3 * HOUR)),
        Err(ReadError::UnknownMessage { id: id(1) })
    );
}

#[test]
fn expired_messages_are_hidden_before_the_purge() {
    let mut chat = Chat::new(DisappearingTimer::HOURS_24);
    chat.send(header(1, NOW), DataMessage::builder().text("x"))
        .unwrap();
    assert_eq!(chat.messages(at(DAY - 1)).count(), 1);
    assert_eq!(chat.messages(at(DAY)).count(), 0);
}

fn view_once_content(n: u64) -> Content {
    Content::new(
        header(n, NOW),
        Body::Message(
            DataMessage::builder()
                .attachment(pointer(n as u8, AttachmentKind::Image))
                .view_once()
                .build(DisappearingTimer::OFF)
                .unwrap(),
        ),
    )
}

#[test]
fn view_once_opens_once() {
    let mut chat = Chat::new(DisappearingTimer::OFF);
    chat.receive(view_once_content(1), NOW).unwrap();
    // Listed, but its media is only reachable by opening it.
    let (l, content) = chat.messages(NOW).next().unwrap();
    assert!(l.view_once && content.is_none());

    let opened = chat.open_view_once(id(1), at(HOUR)).unwrap();
    assert_eq!(opened.attachments(), &[pointer(1, AttachmentKind::Image)]);
    assert_eq!(
        chat.open_view_once(id(1), at(HOUR)),
        Err(ViewOnceError::AlreadyOpened { id: id(1) })
    );
    assert_eq!(chat.messages(at(HOUR)).count(), 0);
    let p = chat.purge(at(HOUR));
    assert_eq!(p.messages, vec![id(1)]);
    assert_eq!(
        p.attachments,
        vec![pointer(1, AttachmentKind::Image).blob_id]
    );
    assert_eq!(
        chat.open_view_once(id(1), at(HOUR)),
        Err(ViewOnceError::UnknownMessage { id: id(1) })
    );

    // Not view-once, and our own view-once message, cannot be opened.
    chat.receive(
        Content::new(header(2, NOW), text_message("x", DisappearingTimer::OFF)),
        NOW,
    )
    .unwrap();
    assert_eq!(
        chat.open_view_once(id(2), NOW),
        Err(ViewOnceError::NotViewOnce { id: id(2) })
    );
    chat.send(
        header(3, NOW),
        DataMessage::builder()
            .attachment(pointer(3, AttachmentKind::Video))
            .view_once(),
    )
    .unwrap();
    assert_eq!(
        chat.open_view_once(id(3), NOW),
        Err(ViewOnceError::NotIncoming { id: id(3) })
    );
    // The sender keeps no viewable copy either.
    let (_, own) = chat.messages(NOW).find(|(l, _)| l.id == id(3)).unwrap();
    assert!(own.is_none());
    assert_eq!(
        chat.mark_read(id(3), NOW),
        Err(ReadError::NotIncoming { id: id(3) })
    );
}

#[test]
fn unopened_view_once_expires_after_14_days() {
    let mut chat = Chat::new(DisappearingTimer::OFF);
    chat.receive(view_once_content(1), NOW).unwrap();
    chat.receive(view_once_content(2), NOW).unwrap();
    assert!(chat.open_view_once(id(2), at(14 * DAY - 1)).is_ok());
    assert_eq!(
        chat.open_view_once(id(1), at(14 * DAY)),
        Err(ViewOnceError::Expired { id: id(1) })
    );
    assert_eq!(
        chat.mark_read(id(1), at(14 * DAY)),
        Err(ReadError::Expired { id: id(1) })
    );
    assert_eq!(chat.purge(at(14 * DAY - 2)).messages, vec![]);
    assert_eq!(chat.purge(at(14 * DAY)).messages, vec![id(1), id(2)]);
    // The sender's record of a view-once message goes after 14 days too.
    chat.send(
        header(3, NOW),
        DataMessage::builder()
            .attachment(pointer(3, AttachmentKind::Video))
            .view_once(),
    )
    .unwrap();
    assert_eq!(chat.purge(at(14 * DAY)).messages, vec![id(3)]);
}

#[test]
fn duplicate_ids_are_refused_and_the_first_kept() {
    let mut chat = Chat::new(DisappearingTimer::OFF);
    let first = chat
        .send(header(1, NOW), DataMessage::builder().text("first"))
        .unwrap();
    assert_eq!(
        chat.send(header(1, NOW), DataMessage::builder().text("again")),
        Err(SendError::DuplicateId { id: id(1) })
    );
    assert_eq!(
        chat.set_timer(header(1, NOW), DisappearingTimer::DAYS_7),
        Err(SendError::DuplicateId { id: id(1) })
    );
    assert_eq!(chat.timer(), DisappearingTimer::OFF);
    let forged = Content::new(
        header(1, NOW),
        text_message("forged", DisappearingTimer::OFF),
    );
    assert_eq!(
        chat.receive(forged, NOW),
        Err(ReceiveError::DuplicateId { id: id(1) })
    );
    let (_, kept) = chat.messages(NOW).next().unwrap();
    assert_eq!(kept, Some(&first));
    assert_eq!(
        chat.send(header(2, NOW), DataMessage::builder()),
        Err(SendError::Content(ContentError::EmptyMessage))
    );
    // Receipts, reactions and typing indicators are not stored.
    chat.receive(
        Content::new(header(3, NOW), Body::Typing(Typing::Started)),
        NOW,
    )
    .unwrap();
    assert_eq!(chat.messages(NOW).count(), 1);
}

// ---------------------------------------------------------------------------------------
// Random sequences: no message outlives its expiry, none is purged early.

mod sequences {
    use super::*;
    use proptest::prelude::*;

    fn timers() -> [DisappearingTimer; 5] {
        [
            DisappearingTimer::OFF,
            DisappearingTimer::HOURS_24,
            DisappearingTimer::DAYS_7,
            DisappearingTimer::DAYS_90,
            DisappearingTimer::from_secs(3600).unwrap(),
        ]
    }

    #[derive(Clone, Debug)]
    enum Action {
        Send { view_once: bool },
        Receive { timer: usize, view_once: bool },
        SetTimer(usize),
        ReceiveTimer(usize),
        Read(usize),
        Open(usize),
        Advance(u64),
        Purge,
    }

    fn action() -> impl Strategy<Value = Action> {
        prop_oneof![
            3 => any::<bool>().prop_map(|view_once| Action::Send { view_once }),
            3 => (0..5usize, any::<bool>())
                .prop_map(|(timer, view_once)| Action::Receive { timer, view_once }),
            1 => (0..5usize).prop_map(Action::SetTimer),
            1 => (0..5usize).prop_map(Action::ReceiveTimer),
            3 => any::<usize>().prop_map(Action::Read),
            2 => any::<usize>().prop_map(Action::Open),
            3 => prop_oneof![0..2 * HOUR, 0..20 * DAY, Just(DAY), Just(14 * DAY)]
                .prop_map(Action::Advance),
            2 => Just(Action::Purge),
        ]
    }

    /// The test's own statement of the rules, written independently of the library's.
    #[derive(Clone, Debug)]
    struct Model {
        n: u64,
        incoming: bool,
        at: u64,
        timer_ms: Option<u64>,
        view_once: bool,
        read_at: Option<u64>,
        opened_at: Option<u64>,
        purged: bool,
    }

    impl Model {
        fn new(n: u64, incoming: bool, at: u64, timer: DisappearingTimer, view_once: bool) -> Self {
            Self {
                n,
                incoming,
                at,
                timer_ms: timer.duration().map(|d| d.as_millis() as u64),
                view_once,
                read_at: None,
                opened_at: None,
                purged: false,
            }
        }

        fn expiry(&self) -> Option<u64> {
            let mut deadlines = Vec::new();
            if let Some(t) = self.timer_ms {
                let start = if self.incoming {
                    self.read_at
                } else {
                    Some(self.at)
                };
                deadlines.extend(start.map(|s| s + t));
            }
            if self.view_once {
                deadlines.push(self.at + 14 * DAY);
                deadlines.extend(self.opened_at);
            }
            deadlines.into_iter().min()
        }

        fn expired(&self, now: u64) -> bool {
            self.expiry().is_some_and(|e| e <= now)
        }
    }

    fn builder(n: u64, view_once: bool) -> confide::envelope::DataMessageBuilder {
        let b = DataMessage::builder().attachment(pointer(n as u8, AttachmentKind::Image));
        if view_once { b.view_once() } else { b }
    }

    fn run(actions: Vec<Action>) -> Result<(), TestCaseError> {
        let timers = timers();
        let mut chat = Chat::new(DisappearingTimer::OFF);
        let mut chat_timer = DisappearingTimer::OFF;
        let mut models: Vec<Model> = Vec::new();
        let mut now = NOW.as_millis();
        // Each step's number doubles as the id of anything it sends.
        for (n, action) in (1u64..).zip(actions) {
            let t = Timestamp::from_millis(now);
            match action {
                Action::Send { view_once } => {
                    let c = chat.send(header(n, t), builder(n, view_once)).unwrap();
                    prop_assert_eq!(message(&c).timer(), chat_timer);
                    models.push(Model::new(n, false, now, chat_timer, view_once));
                }
                Action::Receive { timer, view_once } => {
                    let timer = timers[timer];
                    // The peer's clock is off by some hours; it must not matter.
                    let skewed = Timestamp::from_millis(now.wrapping_sub(n * 7 * HOUR));
                    let body = Body::Message(builder(n, view_once).build(timer).unwrap());
                    chat.receive(Content::new(header(n, skewed), body), t)
                        .unwrap();
                    models.push(Model::new(n, true, now, timer, view_once));
                }
                Action::SetTimer(i) => {
                    chat_timer = timers[i];
                    chat.set_timer(header(n, t), chat_timer).unwrap();
                }
                Action::ReceiveTimer(i) => {
                    chat_timer = timers[i];
                    let c = Content::new(header(n, t), Body::TimerChange(chat_timer));
                    chat.receive(c, t).unwrap();
                }
                Action::Read(i) if !models.is_empty() => {
                    let len = models.len();
                    let m = &mut models[i % len];
                    let mid = id(m.n);
                    let expected = if m.purged {
                        Err(ReadError::UnknownMessage { id: mid })
                    } else if !m.incoming {
                        Err(ReadError::NotIncoming { id: mid })
                    } else if m.expired(now) {
                        Err(ReadError::Expired { id: mid })
                    } else {
                        m.read_at.get_or_insert(now);
                        Ok(())
                    };
                    prop_assert_eq!(chat.mark_read(mid, t), expected);
                }
                Action::Open(i) if !models.is_empty() => {
                    let len = models.len();
                    let m = &mut models[i % len];
                    let mid = id(m.n);
                    let expected = if m.purged {
                        Err(ViewOnceError::UnknownMessage { id: mid })
                    } else if !m.view_once {
                        Err(ViewOnceError::NotViewOnce { id: mid })
                    } else if !m.incoming {
                        Err(ViewOnceError::NotIncoming { id: mid })
                    } else if m.opened_at.is_some() {
                        Err(ViewOnceError::AlreadyOpened { id: mid })
                    } else if m.expired(now) {
                        Err(ViewOnceError::Expired { id: mid })
                    } else {
                        m.opened_at = Some(now);
                        m.read_at.get_or_insert(now);
                        Ok(pointer(m.n as u8, AttachmentKind::Image))
                    };
                    let got = chat
                        .open_view_once(mid, t)
                        .map(|m| m.attachments()[0].clone());
                    prop_assert_eq!(got, expected);
                }
                Action::Read(_) | Action::Open(_) => {}
                Action::Advance(ms) => now += ms,
                Action::Purge => {
                    let p = chat.purge(t);
                    let mut gone = Vec::new();
                    let mut blobs = Vec::new();
                    let mut next_expiry: Option<u64> = None;
                    for m in models.iter_mut().filter(|m| !m.purged) {
                        if m.expired(now) {
                            m.purged = true;
                            gone.push(id(m.n));
                            blobs.push(pointer(m.n as u8, AttachmentKind::Image).blob_id);
                        } else if let Some(e) = m.expiry() {
                            next_expiry = Some(next_expiry.map_or(e, |x| x.min(e)));
                        }
                    }
                    // Everything expired went, nothing else did.
                    prop_assert_eq!(&p.messages, &gone);
                    prop_assert_eq!(&p.attachments, &blobs);
                    prop_assert_eq!(p.next_expiry, next_expiry.map(Timestamp::from_millis));
                }
            }
            // After every step exactly the live, unexpired messages are listed, each with
            // the expiry the model computes: expired ones are hidden even before a purge.
            let t = Timestamp::from_millis(now);
            let listed: Vec<_> = chat
                .messages(t)
                .map(|(l, _)| (l.id, l.expires_at()))
                .collect();
            let want: Vec<_> = models
                .iter()
                .filter(|m| !m.purged && !m.expired(now))
                .map(|m| (id(m.n), m.expiry().map(Timestamp::from_millis)))
                .collect();
            prop_assert_eq!(listed, want);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn no_message_outlives_its_expiry_and_none_goes_early(
            actions in proptest::collection::vec(action(), 1..80)
        ) {
            run(actions)?;
        }
    }
}
