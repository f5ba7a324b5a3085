//! The peer protocol's group (sender keys) and sealed-sender ops, through the device's
//! group and sealed-sender calls.

use confide::device::{SealAs, SealFor};
use confide::group::{DistributionId, Layout, SenderKeyDistributionMessage, SenderKeyMessage};
use confide::keys::{KeyPair, PrivateKey};
use confide::sealed::{
    ContentHint, ContentType, MultiRecipientMessage, SenderCertificate, SenderInfo,
    ServerCertificate, TrustRoots, UnidentifiedSenderMessageContent,
};
use confide::store::ProtocolStore;
use confide::{SystemRng, Timestamp};
use serde_json::{Value, json};

use super::Peer;
use super::json::{
    Failure, Reply, address, as_hex, as_str, decrypted, distribution, hex_field, key32, opt,
    opt_bool, opt_u32, opt_u64, payload, public_key,
};

fn opt_key(req: &Value, name: &str, rng: &mut SystemRng) -> Result<KeyPair, Failure> {
    Ok(match opt(req, name) {
        Some(v) => KeyPair::from_private(PrivateKey::from_bytes(key32(&as_hex(v, name)?, name)?)),
        None => KeyPair::generate(rng),
    })
}

fn layout(req: &Value) -> Result<Layout, Failure> {
    match opt(req, "layout")
        .map(|v| as_str(v, "layout"))
        .transpose()?
    {
        None | Some("current") => Ok(Layout::Current),
        Some("legacy") => Ok(Layout::Legacy),
        Some(_) => Err(Failure::bad_request(
            "field layout must be \"current\" or \"legacy\"",
        )),
    }
}

/// The group a (current-layout) message names.
fn named_group(id: Option<DistributionId>) -> Result<DistributionId, Failure> {
    id.ok_or_else(|| Failure::new("InvalidMessage", "the message names no group"))
}

impl<S: ProtocolStore> Peer<S> {
    pub(super) fn group_create(&self, req: &Value) -> Reply {
        let id = match opt(req, "distribution_id") {
            Some(_) => distribution(req)?,
            None => DistributionId::random(&mut SystemRng::new()),
        };
        let rotate = opt_bool(req, "rotate")?.unwrap_or(false);
        let layout = layout(req)?;
        let d = self.device()?;
        let skdm = match rotate {
            true => d.group_rotate(id)?,
            false => d.group_distribution_raw(id, layout)?,
        };
        Ok(json!({ "distribution_id": id.to_string(), "skdm": hex::encode(skdm.serialized()) }))
    }

    pub(super) fn group_process(&self, req: &Value) -> Reply {
        let sender = address(req, "sender")?;
        let skdm = SenderKeyDistributionMessage::try_from(&hex_field(req, "skdm")?[..])?;
        let id = named_group(skdm.distribution_id())?;
        self.device()?.group_process(&sender, id, &skdm)?;
        Ok(json!({}))
    }

    pub(super) fn group_encrypt(&self, req: &Value) -> Reply {
        let id = distribution(req)?;
        let plaintext = payload(req)?;
        let m = self.device()?.group_encrypt_raw(id, &plaintext)?;
        Ok(json!({ "ciphertext": hex::encode(m.serialized()) }))
    }

    pub(super) fn group_decrypt(&self, req: &Value) -> Reply {
        let sender = address(req, "sender")?;
        let m = SenderKeyMessage::try_from(&hex_field(req, "ciphertext")?[..])?;
        let id = named_group(m.distribution_id())?;
        let got = self.device()?.group_decrypt_raw(&sender, id, &m)?;
        Ok(decrypted(&got.plaintext, got.redelivered))
    }

    /// Plays the sealed-sender server: certifies a server key under a trust root, then
    /// this device under the server key.
    pub(super) fn sender_cert(&self, req: &Value) -> Reply {
        let mut rng = SystemRng::new();
        let root = opt_key(req, "trust_root_private", &mut rng)?;
        let server = opt_key(req, "server_key_private", &mut rng)?;
        let key_id = opt_u32(req, "server_key_id")?.unwrap_or(1);
        let e164 = opt(req, "e164")
            .map(|v| as_str(v, "e164").map(str::to_string))
            .transpose()?;
        let d = self.device()?;
        let expiration = opt_u64(req, "expiration")?
            .unwrap_or_else(|| d.now().as_millis().saturating_add(86_400_000));
        let server_cert = ServerCertificate::new(key_id, server.public(), root.private(), &mut rng);
        let info = SenderInfo {
            uuid: d.address().name().to_string(),
            e164,
            device_id: d.address().device_id(),
            identity_key: d.identity_key()?,
            expiration: Timestamp::from_millis(expiration),
        };
        let cert = SenderCertificate::new(info, server_cert.clone(), server.private(), &mut rng);
        Ok(json!({
            "trust_root": hex::encode(root.public().serialize()),
            "trust_root_private": hex::encode(root.private().to_bytes().as_ref()),
            "server_certificate": hex::encode(server_cert.serialized()),
            "sender_cert": hex::encode(cert.serialized()),
        }))
    }

    pub(super) fn sealed_encrypt(&self, req: &Value) -> Reply {
        let addr = address(req, "address")?;
        let cert = SenderCertificate::try_from(&hex_field(req, "sender_cert")?[..])?;
        let plaintext = payload(req)?;
        let version = opt_u32(req, "version")?.unwrap_or(1);
        let hint = ContentHint::from_u32(opt_u32(req, "content_hint")?.unwrap_or(0));
        let group_id = opt(req, "group_id")
            .map(|v| as_hex(v, "group_id"))
            .transpose()?;
        let dist = opt(req, "distribution_id")
            .map(|_| distribution(req))
            .transpose()?;
        let d = self.device()?;
        let v2 = match version {
            1 => None,
            2 => Some(d.recipient(&addr)?),
            _ => return Err(Failure::bad_request("field version must be 1 or 2")),
        };
        let to = match &v2 {
            Some(recipient) => SealFor::V2(std::slice::from_ref(recipient)),
            None => SealFor::V1(&addr),
        };
        let (kind, sealed) = match dist {
            Some(id) => {
                let mut from = SealAs::new(&cert).hint(hint);
                if let Some(group_id) = &group_id {
                    from = from.group_id(group_id);
                }
                let sealed = d.seal_group_message_raw(id, &plaintext, &from, to)?;
                (ContentType::SenderKey, sealed)
            }
            None => {
                // Encrypted and sealed in two steps (what `Device::seal_message_raw`
                // does), since the reply names the inner message's type.
                let m = d.encrypt_raw(&addr, &plaintext)?;
                let kind = ContentType::from_message_type(m.message_type())
                    .ok_or_else(|| Failure::new("InvalidMessage", "unknown inner type"))?;
                let content = UnidentifiedSenderMessageContent::new(
                    kind,
                    cert,
                    m.serialized().to_vec(),
                    hint,
                    group_id,
                );
                (kind, d.seal(&content, to)?)
            }
        };
        let mut reply = json!({ "inner_type": kind.message_type() });
        if let (Some(recipient), Value::Object(map)) = (&v2, &mut reply) {
            // What the server would deliver to the one recipient, and the whole message.
            let one = MultiRecipientMessage::try_from(&sealed[..])
                .ok()
                .and_then(|m| m.for_recipient(&recipient.service_id))
                .ok_or_else(|| Failure::new("InvalidMessage", "cannot split own message"))?;
            map.insert("ciphertext".into(), json!(hex::encode(one)));
            map.insert("multi".into(), json!(hex::encode(&sealed)));
        } else if let Value::Object(map) = &mut reply {
            map.insert("ciphertext".into(), json!(hex::encode(&sealed)));
        }
        Ok(reply)
    }

    /// Opens, validates (at the request's `timestamp`, default now) and decrypts through
    /// the device; a redelivered message (persistent mode) comes back marked.
    pub(super) fn sealed_decrypt(&self, req: &Value) -> Reply {
        let bytes = hex_field(req, "ciphertext")?;
        let root = TrustRoots::new(public_key(&hex_field(req, "trust_root")?, "trust_root")?);
        if let Some(at) = opt_u64(req, "timestamp")? {
            self.clock.set(Timestamp::from_millis(at));
        }
        let got = self.device()?.unseal(&bytes, &root)?;
        let mut reply = decrypted(&got.plaintext, got.redelivered);
        if let Value::Object(map) = &mut reply {
            let info = got.certificate.sender();
            map.insert(
                "sender".into(),
                json!({ "name": got.sender.name(), "device_id": got.sender.device_id() }),
            );
            map.insert("sender_e164".into(), json!(info.e164));
            map.insert("inner_type".into(), json!(got.content_type.message_type()));
            map.insert("content_hint".into(), json!(got.content_hint.to_u32()));
            map.insert(
                "group_id".into(),
                json!(got.group_id.as_deref().map(hex::encode)),
            );
        }
        Ok(reply)
    }
}
