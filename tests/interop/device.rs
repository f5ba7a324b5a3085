//! A `Device` is one peer process with its identity, plus the typed
//! operations the scenarios use. Every helper asserts with a message naming
//! the devices and implementations involved, so a failure says which side
//! did what.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde_json::{Value, json};

use crate::harness::{Impl, Peer};

/// An encrypted message in flight, with the plaintext it must decrypt to.
#[derive(Clone, Debug)]
pub(crate) struct Msg {
    pub(crate) kind: u64,
    pub(crate) ct: Vec<u8>,
    pub(crate) pt: Vec<u8>,
    /// e.g. "alice->bob #3", for failure messages.
    pub(crate) tag: String,
}

#[derive(Debug)]
pub(crate) struct DecryptError {
    pub(crate) code: String,
    pub(crate) error: String,
}

pub(crate) struct Device {
    pub(crate) peer: Peer,
    pub(crate) kind: Impl,
    pub(crate) name: String,
    pub(crate) device_id: u64,
    pub(crate) identity_key: Vec<u8>,
    sent: usize,
}

impl Device {
    pub(crate) fn new(kind: Impl, name: &str, device_id: u64) -> Device {
        let label = format!("{name}[{}]", kind.label());
        let mut peer = Peer::spawn(kind, &label);
        let hello = peer.ok("hello", json!({}));
        if hello["message_version"] != json!(3) && hello["message_version"] != json!(4) {
            peer.fail(&format!("hello has bad message_version: {hello}"));
        }
        let id = peer.ok(
            "generate_identity",
            json!({ "name": name, "device_id": device_id }),
        );
        let identity_key = hex_field(&mut peer, &id, "identity_key");
        if identity_key.len() != 33 || identity_key[0] != 5 {
            peer.fail(&format!("identity_key is not 05||32 bytes: {id}"));
        }
        Device {
            peer,
            kind,
            name: name.to_string(),
            device_id,
            identity_key,
            sent: 0,
        }
    }

    pub(crate) fn label(&self) -> &str {
        &self.peer.label
    }

    pub(crate) fn address(&self) -> Value {
        json!({ "name": self.name, "device_id": self.device_id })
    }

    /// A fresh prekey bundle, with or without a one-time prekey.
    pub(crate) fn bundle(&mut self, one_time: bool) -> Value {
        let r = self.peer.ok("bundle", json!({ "one_time": one_time }));
        let b = r["bundle"].clone();
        if b["prekey"].is_null() == one_time {
            self.peer.fail(&format!(
                "bundle(one_time={one_time}) has wrong prekey: {b}"
            ));
        }
        b
    }

    pub(crate) fn start_session(&mut self, other: &Device, bundle: Value) {
        self.peer.ok(
            "process_bundle",
            json!({ "address": other.address(), "bundle": bundle }),
        );
    }

    pub(crate) fn has_session(&mut self, other: &Device) -> bool {
        let r = self
            .peer
            .ok("has_session", json!({ "address": other.address() }));
        match r["has_session"] {
            Value::Bool(b) => b,
            _ => self
                .peer
                .fail(&format!("has_session reply lacks bool: {r}")),
        }
    }

    pub(crate) fn encrypt(&mut self, to: &Device, pt: &[u8]) -> Msg {
        let r = self.peer.ok(
            "encrypt",
            json!({ "address": to.address(), "plaintext": hex::encode(pt) }),
        );
        let kind = match r["type"].as_u64() {
            Some(k @ (2 | 3)) => k,
            _ => self
                .peer
                .fail(&format!("encrypt returned bad type: {}", r["type"])),
        };
        let ct = hex_field(&mut self.peer, &r, "ciphertext");
        self.sent += 1;
        Msg {
            kind,
            ct,
            pt: pt.to_vec(),
            tag: format!("{}->{} #{}", self.name, to.name, self.sent),
        }
    }

    /// Decrypts raw bytes with an explicit type number.
    pub(crate) fn try_decrypt_raw(
        &mut self,
        from: &Device,
        kind: u64,
        ct: &[u8],
    ) -> Result<Vec<u8>, DecryptError> {
        let r = self.peer.call(
            "decrypt",
            json!({ "address": from.address(), "type": kind, "ciphertext": hex::encode(ct) }),
        );
        if r["ok"] == json!(true) {
            Ok(hex_field(&mut self.peer, &r, "plaintext"))
        } else {
            Err(DecryptError {
                code: r["code"].as_str().unwrap_or("").to_string(),
                error: r["error"].as_str().unwrap_or("").to_string(),
            })
        }
    }

    pub(crate) fn try_decrypt(&mut self, from: &Device, m: &Msg) -> Result<Vec<u8>, DecryptError> {
        self.try_decrypt_raw(from, m.kind, &m.ct)
    }

    /// Decrypts `m` and checks the exact plaintext.
    pub(crate) fn decrypt(&mut self, from: &Device, m: &Msg) {
        match self.try_decrypt(from, m) {
            Ok(pt) if pt == m.pt => {}
            Ok(pt) => self.peer.fail(&format!(
                "message {} (type {}, {} bytes): plaintext mismatch: got {} bytes {}, want {} bytes {}",
                m.tag,
                m.kind,
                m.ct.len(),
                pt.len(),
                short_hex(&pt),
                m.pt.len(),
                short_hex(&m.pt)
            )),
            Err(e) => self.peer.fail(&format!(
                "cannot decrypt message {} from {} (type {}, {} bytes, starts {}): code={} error={}",
                m.tag,
                from.label(),
                m.kind,
                m.ct.len(),
                short_hex(&m.ct),
                e.code,
                e.error
            )),
        }
    }
}

fn hex_field(peer: &mut Peer, reply: &Value, field: &str) -> Vec<u8> {
    match reply[field].as_str().map(hex::decode) {
        Some(Ok(v)) => v,
        _ => peer.fail(&format!("reply field {field} is not hex: {reply}")),
    }
}

pub(crate) fn short_hex(b: &[u8]) -> String {
    if b.len() <= 24 {
        hex::encode(b)
    } else {
        format!("{}..", hex::encode(&b[..24]))
    }
}

/// Seeded randomness so a failure reproduces: INTEROP_SEED=<n> reruns it.
pub(crate) fn test_rng(what: &str) -> ChaCha8Rng {
    let seed = match std::env::var("INTEROP_SEED") {
        Ok(s) => s.parse().expect("INTEROP_SEED must be a u64"),
        Err(_) => {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            t.as_secs() ^ u64::from(t.subsec_nanos()).rotate_left(32)
        }
    };
    // Printed, not logged: cargo test shows it with the failure output.
    println!("{what}: seed {seed} (rerun with INTEROP_SEED={seed})");
    ChaCha8Rng::seed_from_u64(seed)
}

pub(crate) fn random_bytes(rng: &mut ChaCha8Rng, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rng.fill_bytes(&mut v);
    v
}

pub(crate) fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}

/// Fisher-Yates with the seeded rng.
pub(crate) fn shuffle<T>(rng: &mut ChaCha8Rng, v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = below(rng, i + 1);
        v.swap(i, j);
    }
}
