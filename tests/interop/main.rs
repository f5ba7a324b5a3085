//! Interop tests: confide's `peer` example against other Signal-protocol v3
//! implementations run as separate processes (npm `libsignal` 6.0.0 and
//! `@privacyresearch/libsignal-protocol-typescript` 0.0.16, through the
//! driver scripts beside this file), all speaking
//! shared/interop/PEER_PROTOCOL.md.
//!
//! Needs Node.js >= 20 with npm; `npm ci` runs here on first use. confide's
//! peer binary is built by plain `cargo test` (it builds examples); with
//! `cargo test --test interop` build it first: `cargo build --example peer`.
//!
//! Test names read `<pairing>::<scenario>::<who>_initiates`. Randomness is
//! seeded and the seed printed; INTEROP_SEED=<n> reproduces a run.

// A test harness fails loudly on purpose: panics and unwraps are its asserts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod device;
mod harness;
mod scenarios;
mod strict;
mod wire;

use harness::Impl;

/// One test per scenario and direction for a pairing of implementations.
macro_rules! pairing {
    ($pairing:ident, $a:expr => $a_init:ident, $b:expr => $b_init:ident; $($scenario:ident),* $(,)?) => {
        mod $pairing {
            use super::*;
            $(
                mod $scenario {
                    use super::*;
                    #[test]
                    fn $a_init() {
                        scenarios::run(stringify!($scenario), $a, $b, scenarios::$scenario);
                    }
                    #[test]
                    fn $b_init() {
                        scenarios::run(stringify!($scenario), $b, $a, scenarios::$scenario);
                    }
                }
            )*
        }
    };
}

macro_rules! all_scenarios {
    ($pairing:ident, $a:expr => $a_init:ident, $b:expr => $b_init:ident) => {
        pairing!($pairing, $a => $a_init, $b => $b_init;
            one_time_prekey,
            no_one_time_prekey,
            prekey_messages_shuffled,
            long_chain_shuffled,
            held_across_ratchet_steps,
            payload_sizes,
            simultaneous_initiation,
            sign_verify,
        );
    };
}

all_scenarios!(confide_x_libsignal_node,
    Impl::Confide => confide_initiates, Impl::LibsignalNode => libsignal_node_initiates);
all_scenarios!(confide_x_ts_port,
    Impl::Confide => confide_initiates, Impl::TsPort => ts_port_initiates);
// Needs no confide binary: shows the drivers themselves interoperate.
all_scenarios!(libsignal_node_x_ts_port,
    Impl::LibsignalNode => libsignal_node_initiates, Impl::TsPort => ts_port_initiates);

/// confide as the receiver of bad input from each node library.
mod strict_confide_receives {
    use super::*;

    #[test]
    fn from_libsignal_node_sender_initiates() {
        strict::run(Impl::LibsignalNode, true);
    }
    #[test]
    fn from_libsignal_node_confide_initiates() {
        strict::run(Impl::LibsignalNode, false);
    }
    #[test]
    fn from_ts_port_sender_initiates() {
        strict::run(Impl::TsPort, true);
    }
    #[test]
    fn from_ts_port_confide_initiates() {
        strict::run(Impl::TsPort, false);
    }
}

/// Each peer on its own follows the framing rules of the protocol.
mod peer_protocol {
    use super::*;
    use harness::Peer;
    use serde_json::{Value, json};

    const RFC7748_A_PRIV: &str = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
    const RFC7748_A_PUB: &str = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
    const RFC7748_B_PRIV: &str = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
    const RFC7748_B_PUB: &str = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";

    fn check(kind: Impl) {
        let mut p = Peer::spawn(kind, kind.label());
        let hello = p.ok("hello", json!({}));
        for f in ["impl", "version"] {
            assert!(hello[f].is_string(), "hello lacks string {f}: {hello}");
        }
        for f in ["sender_keys", "sealed_sender"] {
            assert!(hello[f].is_boolean(), "hello lacks bool {f}: {hello}");
        }
        assert!(
            matches!(hello["message_version"].as_u64(), Some(3 | 4)),
            "hello message_version: {hello}"
        );

        // Bad input gets ok:false and the process keeps going.
        let r = p.raw("this is not json");
        assert_eq!(r["ok"], json!(false), "invalid JSON: {r}");
        assert!(
            r["error"].is_string(),
            "invalid JSON reply lacks error: {r}"
        );
        let r = p.call("no_such_op", json!({}));
        assert_eq!(r["ok"], json!(false), "unknown op: {r}");
        assert!(r["error"].is_string() && r["code"].is_string(), "{r}");

        let id = p.ok(
            "generate_identity",
            json!({ "name": "carol", "device_id": 3, "registration_id": 1234 }),
        );
        assert_eq!(id["name"], json!("carol"));
        assert_eq!(id["device_id"], json!(3));
        assert_eq!(id["registration_id"], json!(1234));
        let key = id["identity_key"].as_str().unwrap_or("");
        assert!(
            key.len() == 66 && key.starts_with("05"),
            "identity_key: {id}"
        );
        assert_eq!(id["identity_private"].as_str().map(str::len), Some(64));

        let addr = json!({ "name": "dave", "device_id": 1 });
        for (op, fields) in [
            ("decrypt", json!({ "address": addr, "type": 2 })),
            ("decrypt", json!({ "address": addr, "ciphertext": "33" })),
            (
                "encrypt",
                json!({ "address": { "name": "dave", "device_id": "1" }, "text": "x" }),
            ),
            ("encrypt", json!({ "text": "x" })),
            ("sign", json!({ "message": "not hex" })),
            ("sign", json!({})),
            ("verify", json!({ "public_key": key, "message": "00" })),
            ("process_bundle", json!({ "address": addr, "bundle": 5 })),
        ] {
            let r = p.call(op, fields.clone());
            assert_eq!(r["ok"], json!(false), "{op} {fields} should fail: {r}");
        }
        // No session yet: encrypt fails, has_session is false.
        let r = p.call("encrypt", json!({ "address": addr, "text": "x" }));
        assert_eq!(r["ok"], json!(false), "encrypt without session: {r}");
        let r = p.ok("has_session", json!({ "address": addr }));
        assert_eq!(r["has_session"], json!(false));

        // Given private keys give the X25519 public keys of RFC 7748 section 6.1.
        let mut other = Peer::spawn(kind, "dave");
        let id = other.ok(
            "generate_identity",
            json!({ "name": "dave", "device_id": 1, "identity_private": RFC7748_A_PRIV }),
        );
        assert_eq!(
            id["identity_key"],
            json!(format!("05{RFC7748_A_PUB}")),
            "{id}"
        );
        let mut bundle: Value = other.ok(
            "bundle",
            json!({
                "signed_prekey_id": 9,
                "prekey_id": 4,
                "signed_prekey_private": RFC7748_B_PRIV,
                "prekey_private": RFC7748_A_PRIV,
            }),
        )["bundle"]
            .clone();
        assert_eq!(bundle["signed_prekey_id"], json!(9));
        assert_eq!(bundle["prekey_id"], json!(4));
        assert_eq!(bundle["signed_prekey"], json!(format!("05{RFC7748_B_PUB}")));
        assert_eq!(bundle["prekey"], json!(format!("05{RFC7748_A_PUB}")));
        assert_eq!(bundle["identity_key"], id["identity_key"]);
        assert!(bundle["kyber_prekey"].is_null() || kind == Impl::Confide);

        // A bundle whose signed-prekey signature is wrong is refused.
        let sig = bundle["signed_prekey_signature"]
            .as_str()
            .unwrap()
            .to_string();
        let mut raw = hex::decode(&sig).unwrap();
        raw[10] ^= 0x04;
        bundle["signed_prekey_signature"] = json!(hex::encode(&raw));
        let r = p.call(
            "process_bundle",
            json!({ "address": addr, "bundle": bundle }),
        );
        assert_eq!(r["ok"], json!(false), "bad bundle signature accepted: {r}");
        let r = p.ok("has_session", json!({ "address": addr }));
        assert_eq!(
            r["has_session"],
            json!(false),
            "session after a refused bundle"
        );

        // Ops the node drivers do not have say so.
        if kind != Impl::Confide {
            for op in [
                "group_create",
                "sealed_encrypt",
                "fingerprint",
                "media_encrypt",
            ] {
                let r = p.call(op, json!({}));
                assert_eq!(r["ok"], json!(false), "{op}: {r}");
                let err = r["error"].as_str().unwrap_or("");
                assert!(err.contains("unsupported"), "{op} error: {r}");
            }
        }

        // quit: one reply, then exit 0.
        let r = p.call("quit", json!({}));
        assert_eq!(r["ok"], json!(true), "quit: {r}");
        assert!(p.wait_exit().success(), "exit status after quit");

        // EOF: exit 0.
        let status = other.close_and_wait();
        assert!(status.success(), "exit status after EOF: {status}");
    }

    #[test]
    fn confide() {
        check(Impl::Confide);
    }
    #[test]
    fn libsignal_node() {
        check(Impl::LibsignalNode);
    }
    #[test]
    fn ts_port() {
        check(Impl::TsPort);
    }
}
