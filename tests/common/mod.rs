//! Shared helpers for the integration tests.
#![allow(dead_code, unreachable_pub)]

use confide::session::Versions;
use confide::session::cipher::{self, BundleSpec};
use confide::store::InMemoryStore;
use confide::{Address, CiphertextMessage, Timestamp};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

pub const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);

pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

pub struct Device {
    pub store: InMemoryStore,
    pub address: Address,
    next_id: u32,
}

impl Device {
    pub fn new(name: &str, rng: &mut ChaCha20Rng) -> Self {
        Self {
            store: InMemoryStore::generate(rng),
            address: Address::new(name, 1),
            next_id: 1,
        }
    }

    pub fn bundle(&mut self, rng: &mut ChaCha20Rng, one_time: bool) -> confide::PreKeyBundle {
        let id = self.next_id;
        self.next_id += 1;
        let spec = BundleSpec::new(1, id).with_pre_key(one_time.then_some(id + 1000));
        cipher::publish_bundle(&self.store, rng, &spec, NOW).unwrap()
    }

    pub fn start(&self, other: &mut Device, rng: &mut ChaCha20Rng, one_time: bool) {
        let bundle = other.bundle(rng, one_time);
        cipher::start_session(
            &self.store,
            &other.address,
            &bundle,
            Versions::V3AndV4,
            rng,
            NOW,
        )
        .unwrap();
    }

    pub fn send(&self, to: &Device, text: &[u8]) -> CiphertextMessage {
        cipher::encrypt(
            &self.store,
            &self.address,
            &to.address,
            text,
            &mut confide::SystemRng::new(),
            NOW,
        )
        .unwrap()
    }

    pub fn recv(
        &self,
        from: &Device,
        msg: &CiphertextMessage,
        rng: &mut ChaCha20Rng,
    ) -> Result<Vec<u8>, confide::DecryptError> {
        // Go through bytes, as a real transport would.
        let parsed = CiphertextMessage::from_parts(msg.message_type(), msg.serialized())?;
        cipher::decrypt(&self.store, &self.address, &from.address, &parsed, rng, NOW)
            .map(|d| d.plaintext.to_vec())
    }

    /// The serialized session record with `other`, for before/after comparisons.
    pub fn snapshot(&self, other: &Device) -> Vec<u8> {
        use confide::store::{PreKeyStore, SessionStore};
        let mut out = self
            .store
            .session(&other.address)
            .unwrap()
            .map(|r| r.to_bytes().to_vec())
            .unwrap_or_default();
        // Prekeys are state too: a failed decrypt must not consume one.
        for id in 0..2100 {
            if self.store.pre_key(id).unwrap().is_some() {
                out.extend_from_slice(&id.to_be_bytes());
            }
        }
        out
    }
}
