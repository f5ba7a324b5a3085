//! Alice and Bob set up a Signal-protocol session with confide and talk.
//!
//! `cargo run --example quickstart`

use confide::cipher::{self, BundleSpec};
use confide::store::{InMemoryStore, SessionStore};
use confide::{Address, CiphertextMessage, DecryptError, SessionRecord, SystemRng, Timestamp};

fn short(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("{hex}… ({} bytes)", bytes.len())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // confide never reaches for a hidden RNG or clock: the app passes both in.
    let mut rng = SystemRng::new();
    let now = Timestamp::from_system_time(std::time::SystemTime::now());

    let alice = InMemoryStore::generate(&mut rng);
    let bob = InMemoryStore::generate(&mut rng);
    let alice_addr = Address::new("alice", 1);
    let bob_addr = Address::new("bob", 1);

    // 1. Bob publishes a bundle: identity key, signed prekey, one one-time prekey.
    let spec = BundleSpec {
        device_id: 1,
        signed_pre_key_id: 1,
        pre_key_id: Some(100),
    };
    let bundle = cipher::new_bundle(&bob, &mut rng, spec, now)?;
    println!("Bob's bundle");
    println!(
        "  identity key    {}",
        short(&bundle.identity_key.serialize())
    );
    println!(
        "  signed prekey   #{} (signature checks: {})",
        bundle.signed_pre_key.id,
        bundle.has_valid_signature()
    );
    println!("  one-time prekey #{}", bundle.pre_key.map_or(0, |p| p.id));

    // 2. Alice starts a session from it (X3DH) and writes first, while Bob is offline.
    cipher::process_bundle(&alice, &bob_addr, &bundle, &mut rng, now)?;
    let first = cipher::encrypt(&alice, &bob_addr, b"Hi Bob! Only you can read this.")?;
    println!(
        "\nAlice -> Bob  type {} (PreKeySignalMessage)  {}",
        first.message_type(),
        short(first.serialized())
    );

    // 3. Bob receives bytes from the network, parses them, and decrypts.
    let wire = CiphertextMessage::from_parts(first.message_type(), first.serialized())?;
    let text = cipher::decrypt(&bob, &alice_addr, &wire, &mut rng)?;
    println!("Bob reads     {:?}", String::from_utf8_lossy(&text));

    // 4. Bob answers; from now on both send ordinary ratchet messages.
    let reply = cipher::encrypt(&bob, &alice_addr, b"Hi Alice, got it.")?;
    println!(
        "\nBob -> Alice  type {} (SignalMessage)  {}",
        reply.message_type(),
        short(reply.serialized())
    );
    let text = cipher::decrypt(&alice, &bob_addr, &reply, &mut rng)?;
    println!("Alice reads   {:?}", String::from_utf8_lossy(&text));

    // 5. Messages may arrive out of order; each decrypts exactly once.
    let m1 = cipher::encrypt(&alice, &bob_addr, b"one")?;
    let m2 = cipher::encrypt(&alice, &bob_addr, b"two")?;
    for m in [&m2, &m1] {
        let text = cipher::decrypt(&bob, &alice_addr, m, &mut rng)?;
        println!(
            "Bob reads     {:?} (counter order swapped)",
            String::from_utf8_lossy(&text)
        );
    }
    match cipher::decrypt(&bob, &alice_addr, &m1, &mut rng) {
        Err(DecryptError::DuplicateMessage { counter }) => {
            println!("Replay of counter {counter} refused: DuplicateMessage");
        }
        other => println!("unexpected: {other:?}"),
    }

    // 6. A tampered message fails, and changes nothing.
    let m3 = cipher::encrypt(&alice, &bob_addr, b"three")?;
    let mut bytes = m3.serialized().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let tampered = CiphertextMessage::from_parts(m3.message_type(), &bytes)?;
    let err = cipher::decrypt(&bob, &alice_addr, &tampered, &mut rng).err();
    println!(
        "Tampered copy: {}",
        err.map_or("accepted?!".into(), |e| e.to_string())
    );
    let text = cipher::decrypt(&bob, &alice_addr, &m3, &mut rng)?;
    println!("Genuine copy:  {:?}", String::from_utf8_lossy(&text));

    // 7. Session state is a documented protobuf the app can persist (encrypted!).
    if let Some(record) = bob.session(&alice_addr)? {
        let bytes = record.to_bytes();
        let restored = SessionRecord::from_bytes(&bytes)?;
        println!(
            "\nBob's session record: {} bytes, reloads: {}",
            bytes.len(),
            restored.has_current_session()
        );
    }
    Ok(())
}
