//! A user chats with a business that moves from self-managed hosting to the operator's
//! cloud to a vendor. Every notice is printed before the first message it concerns.
//!
//! Run with `cargo run --example business_chat`.

use confide::business::{
    AttestationVerifier, BusinessId, ChatItem, ChatPrivacy, DisclosureTracker, HostingAttestation,
    HostingMode, HostingTag, Provider, SelfManagedEndpoint,
};
use confide::{IdentityKeyPair, SystemRng, Timestamp};

const DAY: u64 = 86_400_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = SystemRng::new();
    let start = 1_640_995_200_000; // 1 Jan 2022
    let at = |day: u64| Timestamp::from_millis(start + day * DAY);

    let business_key = IdentityKeyPair::generate(&mut rng);
    let business = BusinessId::new("acme-shop")?;
    let cloud_key = IdentityKeyPair::generate(&mut rng);
    let vendor_key = IdentityKeyPair::generate(&mut rng);
    let hostings = [
        HostingMode::SelfManaged(SelfManagedEndpoint::BusinessApp),
        HostingMode::OperatorCloud {
            operator: Provider::new("Operator Cloud API", cloud_key.identity_key())?,
            retention_days: 30,
        },
        HostingMode::VendorManaged {
            vendor: Provider::new("Helpdesk Vendor Inc", vendor_key.identity_key())?,
            retention_days: Some(90),
        },
    ];

    let mut verifier = AttestationVerifier::new();
    let mut chat = DisclosureTracker::new(business.clone());
    let mut next_id = 0u64;
    for (i, mode) in hostings.into_iter().enumerate() {
        let serial = i as u64 + 1;
        let day = i as u64 * 30;
        let signed =
            HostingAttestation::new(business.clone(), mode, serial, at(day), at(day + 365))?
                .sign(&mut rng, &business_key);
        // The business's next message carries the new serial inside its encrypted content,
        // and arrives before the user's app has refreshed the business profile.
        let tag = HostingTag::from_bytes(
            &HostingTag {
                business_id: business.clone(),
                serial,
            }
            .to_bytes(),
        )?;
        next_id += 1;
        let early = chat.on_message(next_id, Some(tag.serial))?;
        print_items(&early, day);
        println!(
            "day {day:>3}  (message {next_id} waits: hosting serial {serial} not verified yet)"
        );

        // The app fetches and verifies the attestation; the notice comes out first.
        let verified =
            verifier.verify(&signed, &business, business_key.identity_key(), at(day + 1))?;
        print_items(&chat.on_attestation(&verified)?, day + 1);
        let privacy = ChatPrivacy::from_attestation(&verified);
        println!(
            "          end-to-end to the business: {}; readers: {:?}",
            privacy.is_end_to_end_to_business(),
            privacy.readers()
        );
        next_id += 1;
        print_items(&chat.on_message(next_id, Some(serial))?, day + 2);
    }
    Ok(())
}

fn print_items(items: &[ChatItem], day: u64) {
    for item in items {
        match item {
            ChatItem::Notice(n) => {
                println!("day {day:>3}  NOTICE [{}] {}", n.code(), n.default_text())
            }
            ChatItem::Message { id, hosting_serial } => {
                println!("day {day:>3}  message {id} (hosting serial {hosting_serial})");
            }
            _ => println!("day {day:>3}  {item:?}"),
        }
    }
}
