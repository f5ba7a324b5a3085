//! Disappearing messages end to end: Alice starts a chat under her default 24-hour timer,
//! tells Bob, and they exchange padded content through a real session. The clock is
//! simulated, so the run is instant and the output fixed.
//!
//! ```sh
//! cargo run --example disappearing
//! ```

use confide::envelope::{
    AttachmentKind, AttachmentPointer, BlobId, Chat, Content, ContentId, DataMessage,
    DisappearingTimer, Header, Sha256Digest,
};
use confide::media::MediaKey;
use confide::session::Versions;
use confide::session::cipher;
use confide::store::InMemoryStore;
use confide::{Address, SystemRng, Timestamp};

const HOUR: u64 = 60 * 60 * 1000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = SystemRng::new();
    let start = Timestamp::from_millis(1_700_000_000_000);
    let at = |ms: u64| Timestamp::from_millis(start.as_millis() + ms);

    // A session, as in the quickstart.
    let alice = InMemoryStore::generate(&mut rng);
    let bob = InMemoryStore::generate(&mut rng);
    let (alice_addr, bob_addr) = (Address::new("alice", 1), Address::new("bob", 1));
    let spec = cipher::BundleSpec::new(1, 1).with_pre_key(Some(1));
    let bundle = cipher::publish_bundle(&bob, &mut rng, &spec, start)?;
    cipher::start_session(
        &alice,
        &bob_addr,
        &bundle,
        Versions::V3AndV4,
        &mut rng,
        start,
    )?;

    // Alice's default timer is 24 h; Bob's is off. Each chat starts under its owner's.
    let mut alice_chat = Chat::new(DisappearingTimer::HOURS_24);
    let mut bob_chat = Chat::new(DisappearingTimer::OFF);
    let mut header = |t| Header::new(ContentId::random(&mut rng), t);

    // Alice announces her timer, then sends a photo.
    let notice = alice_chat.set_timer(header(start), alice_chat.timer())?;
    let photo = AttachmentPointer {
        blob_id: BlobId::try_from(&b"uploads/7f3a"[..])?,
        media_key: MediaKey::from_bytes([7; 32]), // MediaKey::generate(rng) in real use
        plaintext_sha256: Sha256Digest::from_bytes([1; 32]),
        encrypted_sha256: Sha256Digest::from_bytes([2; 32]),
        length: 48_213,
        kind: AttachmentKind::Image,
    };
    let message = alice_chat.send(
        header(at(1000)),
        DataMessage::builder()
            .text("the view from the top")
            .attachment(photo),
    )?;

    // Each content goes out padded and encrypted, and comes back the same.
    for content in [notice, message.clone()] {
        let padded = content.to_padded();
        let wire = cipher::encrypt(
            &alice,
            &alice_addr,
            &bob_addr,
            &padded,
            &mut confide::SystemRng::new(),
            start,
        )?;
        println!(
            "sent {} content bytes as {} padded, {} on the wire",
            content.as_bytes().len(),
            padded.len(),
            wire.serialized().len()
        );
        let plain =
            cipher::decrypt(&bob, &bob_addr, &alice_addr, &wire, &mut rng, at(2 * HOUR))?.plaintext;
        bob_chat.receive(Content::from_padded(&plain)?, at(2 * HOUR))?;
    }
    println!(
        "Bob's chat timer is now {} h",
        bob_chat.timer().as_secs() / 3600
    );

    // Bob reads the photo three hours after it arrived: his copy runs from then.
    bob_chat.mark_read(message.id(), at(5 * HOUR))?;
    let expiry = |chat: &Chat| {
        chat.messages(start)
            .next()
            .and_then(|(l, _)| l.expires_at())
    };
    println!(
        "Alice's copy expires {} h after start, Bob's {} h after start",
        hours(start, expiry(&alice_chat)),
        hours(start, expiry(&bob_chat))
    );

    for h in [25, 29] {
        let now = at(h * HOUR);
        let (a, b) = (alice_chat.purge(now), bob_chat.purge(now));
        println!(
            "purge at +{h} h: Alice removed {} message(s) and {} key(s), Bob {} and {}",
            a.messages.len(),
            a.attachments.len(),
            b.messages.len(),
            b.attachments.len()
        );
    }
    Ok(())
}

fn hours(start: Timestamp, t: Option<Timestamp>) -> u64 {
    t.map_or(0, |t| (t.as_millis() - start.as_millis()) / HOUR)
}
