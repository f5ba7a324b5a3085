//! Key transparency in a few lines: Alice checks the identity key she holds for Bob
//! against a key directory whose heads an auditor signs, and is told "verified by the
//! directory". Then the directory swaps Bob's key for an attacker's, and Alice is told
//! that too: her phone, which verified Bob before, refuses the unexplained change; her
//! new laptop, checking for the first time, sees a mismatch.
//!
//! The directory is `examples/kt_directory` (akd's `Directory`), run in-process here.
//!
//! `cargo run --features kt --example key_transparency`

// The example drives part of the test directory (no HTTP, no misbehaving modes).
#[allow(dead_code)]
#[path = "kt_directory/directory.rs"]
mod directory;

use confide::device::{Device, KtError, SystemClock};
use confide::kt::{self, DirectoryTrust, KeyCheck, SignedHead, VrfPublicKey};
use confide::session::Versions;
use confide::store::InMemoryStore;
use confide::{Address, IdentityKeyPair, SystemRng};

use directory::{Config, KtDirectory, Served};

type Dev = Device<InMemoryStore, SystemRng, SystemClock>;

fn device(name: &str, device_id: u32) -> Dev {
    let mut rng = SystemRng::new();
    let store = InMemoryStore::generate(&mut rng);
    Device::new(store, Address::new(name, device_id), rng, SystemClock)
        .with_versions(Versions::V3AndV4)
}

fn entry(d: &Dev) -> Result<(Vec<u8>, Vec<u8>), Box<dyn std::error::Error>> {
    Ok((kt::label(d.address()), kt::value(&d.identity_key()?)))
}

/// `who` checks the key it holds for `contact` with what the directory serves.
fn check(
    rt: &tokio::runtime::Runtime,
    dir: &KtDirectory,
    trust: &DirectoryTrust,
    who: &Dev,
    contact: &Address,
) -> Result<Result<KeyCheck, KtError>, Box<dyn std::error::Error>> {
    let Served { head, proof, .. } = rt
        .block_on(dir.lookup(kt::label(contact)))
        .map_err(|e| e.message().to_string())?;
    let head = SignedHead::from_bytes(&head)?;
    Ok(who.verify_contact_key(trust, contact, &head, &proof))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let mut seeds = [0u8; 64];
    rand_core::RngCore::fill_bytes(&mut SystemRng::new(), &mut seeds);
    let (auditor_seed, vrf_seed) = seeds.split_at(32);
    let mut dir = rt
        .block_on(KtDirectory::new(Config {
            auditor_seed: auditor_seed.try_into()?,
            vrf_seed: vrf_seed.try_into()?,
            namespace: "example.kt.v1".into(),
        }))
        .map_err(|e| e.message().to_string())?;
    // What Alice's app ships with: the directory's VRF key and its auditor's key.
    let trust = DirectoryTrust::new(
        VrfPublicKey::from_bytes(&dir.vrf_public_key())?,
        vec![kt::AuditorKey::from_bytes(&dir.auditor_key())?],
        "example.kt.v1",
    );

    let phone = device("alice", 1);
    let bob = device("bob", 1);
    let epoch = rt
        .block_on(dir.publish(vec![entry(&phone)?, entry(&bob)?]))
        .map_err(|e| e.message().to_string())?
        .epoch;
    println!("directory: published Alice's and Bob's keys at epoch {epoch}");

    // Alice's phone meets Bob through a session, then checks the key it holds.
    phone.start_session(bob.address(), &bob.publish_bundle()?)?;
    match check(&rt, &dir, &trust, &phone, bob.address())?? {
        KeyCheck::Verified { epoch, version } => println!(
            "alice's phone: Bob's key verified by the directory at epoch {epoch} (version {version})"
        ),
        other => return Err(format!("expected a verified key, got {other:?}").into()),
    }
    let assurance = phone.identity_assurance(bob.address())?;
    println!("alice's phone shows: {}", assurance.default_text());

    // The directory is compromised: it publishes an attacker's key for Bob.
    let attacker = IdentityKeyPair::generate(&mut SystemRng::new());
    let swapped = rt
        .block_on(dir.swap_key(kt::label(bob.address()), kt::value(attacker.identity_key())))
        .map_err(|e| e.message().to_string())?;
    println!(
        "directory: now serves an attacker's key for Bob at epoch {}",
        swapped.epoch
    );

    // The phone verified Bob's key before and its sessions still hold it.
    match check(&rt, &dir, &trust, &phone, bob.address())? {
        Err(e @ KtError::UnexplainedKeyChange { .. }) => {
            println!("alice's phone refuses the directory's answer: {e}")
        }
        other => return Err(format!("expected an unexplained key change, got {other:?}").into()),
    }

    // Alice's new laptop meets Bob for the first time and checks the key it got.
    let laptop = device("alice", 2);
    laptop.start_session(bob.address(), &bob.publish_bundle()?)?;
    match check(&rt, &dir, &trust, &laptop, bob.address())?? {
        KeyCheck::Mismatch { epoch, version, .. } => println!(
            "alice's laptop: the directory lists another key for Bob at epoch {epoch} (version {version})"
        ),
        other => return Err(format!("expected a mismatch, got {other:?}").into()),
    }
    let assurance = laptop.identity_assurance(bob.address())?;
    println!("alice's laptop shows: {}", assurance.default_text());
    Ok(())
}
