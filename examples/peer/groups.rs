//! The peer protocol's group (sender keys) and sealed-sender ops.

use confide::Decrypted;
use confide::group::cipher as group;
use confide::group::{
    DistributionId, GroupDecryptError, GroupDistributionError, GroupEncryptError,
    GroupKeyProcessError, GroupProcessError, GroupReceiveError, GroupSendError, Layout,
    SenderKeyDistributionMessage, SenderKeyMessage, SenderKeyRecord,
};
use confide::keys::{KeyPair, PrivateKey};
use confide::sealed::{
    self, ContentHint, ContentType, Recipient, SenderCertificate, SenderInfo, ServerCertificate,
    ServiceId, UnidentifiedSenderMessageContent,
};
use confide::session::cipher;
use confide::{Address, CiphertextMessage, DecryptError, SystemRng, Timestamp};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::{
    Failure, Peer, Reply, address, as_hex, as_str, as_u32, decrypt_error, encrypt_error, field,
    hex_field, key32, now, opt, payload, public_key, store_error,
};

fn distribution(req: &Value) -> Result<DistributionId, Failure> {
    as_str(field(req, "distribution_id")?, "distribution_id")?
        .parse()
        .map_err(|_| Failure::bad_request("field distribution_id must be a UUID"))
}

fn group_encrypt_error(e: GroupEncryptError) -> Failure {
    let code = match e {
        GroupEncryptError::ChainExhausted => "ChainExhausted",
        _ => "NoSenderKeyState",
    };
    Failure::new(code, e)
}

fn group_process_error(e: GroupProcessError) -> Failure {
    let code = match e {
        GroupProcessError::WrongDistribution => "WrongDistribution",
        GroupProcessError::WrongLayout => "WrongLayout",
        _ => "InvalidMessage",
    };
    Failure::new(code, e)
}

fn opt_u32(req: &Value, name: &str) -> Result<Option<u32>, Failure> {
    opt(req, name).map(|v| as_u32(v, name)).transpose()
}

fn opt_u64(req: &Value, name: &str) -> Result<Option<u64>, Failure> {
    opt(req, name)
        .map(|v| {
            v.as_u64()
                .ok_or_else(|| Failure::bad_request(format!("field {name} must be a u64")))
        })
        .transpose()
}

fn opt_key(req: &Value, name: &str, rng: &mut SystemRng) -> Result<KeyPair, Failure> {
    Ok(match opt(req, name) {
        Some(v) => KeyPair::from_private(PrivateKey::from_bytes(key32(&as_hex(v, name)?, name)?)),
        None => KeyPair::generate(rng),
    })
}

impl super::Device {
    /// The sender-key record of `sender` in a group, from the store (so persistent mode
    /// keeps group state across restarts like everything else).
    fn sender_key(
        &self,
        sender: &Address,
        id: DistributionId,
    ) -> Result<Option<SenderKeyRecord>, Failure> {
        self.store.get().sender_key(sender, id).map_err(store_error)
    }

    /// Decrypts a group message through the library's store-driven path: on a copy of
    /// the sender's record, saved only on success; with the persistent store one commit
    /// that also keeps the message, so a redelivery after a crash returns the stored
    /// plaintext with `redelivered: true`.
    fn group_open(&self, sender: &Address, m: &SenderKeyMessage) -> Result<Decrypted, Failure> {
        let id = m
            .distribution_id()
            .ok_or_else(|| group_decrypt_error(GroupDecryptError::WrongLayout))?;
        group::decrypt(self.store.get(), sender, id, m, now()).map_err(group_receive_error)
    }
}

fn group_receive_error(e: GroupReceiveError) -> Failure {
    match e {
        GroupReceiveError::Decrypt(e) => group_decrypt_error(e),
        GroupReceiveError::Store(e) => store_error(e),
        other => Failure::new("Store", other),
    }
}

fn group_send_error(e: GroupSendError) -> Failure {
    match e {
        GroupSendError::Encrypt(e) => group_encrypt_error(e),
        GroupSendError::Store(e) => store_error(e),
        other => Failure::new("Store", other),
    }
}

fn group_key_process_error(e: GroupKeyProcessError) -> Failure {
    match e {
        GroupKeyProcessError::Process(e) => group_process_error(e),
        GroupKeyProcessError::Store(e) => store_error(e),
        other => Failure::new("Store", other),
    }
}

fn group_distribution_error(e: GroupDistributionError) -> Failure {
    match e {
        GroupDistributionError::Store(e) => store_error(e),
        other => Failure::new("Store", other),
    }
}

fn group_decrypt_error(e: GroupDecryptError) -> Failure {
    Failure::new(e.code(), e)
}

impl Peer {
    fn own_address(&mut self) -> Result<Address, Failure> {
        let d = self.device()?;
        Ok(Address::new(d.name.clone(), d.device_id))
    }

    pub(super) fn group_create(&mut self, req: &Value) -> Reply {
        let mut rng = SystemRng::new();
        let id = match opt(req, "distribution_id") {
            Some(_) => distribution(req)?,
            None => DistributionId::random(&mut rng),
        };
        let rotate = match opt(req, "rotate") {
            Some(v) => v
                .as_bool()
                .ok_or_else(|| Failure::bad_request("field rotate must be a bool"))?,
            None => false,
        };
        let me = self.own_address()?;
        let store = self.device()?.store.get();
        let skdm = if rotate {
            group::rotate(store, &me, id, &mut rng)
        } else {
            group::distribution(store, &me, id, Layout::Current, &mut rng)
        }
        .map_err(group_distribution_error)?;
        Ok(json!({ "distribution_id": id.to_string(), "skdm": hex::encode(skdm.serialized()) }))
    }

    pub(super) fn group_process(&mut self, req: &Value) -> Reply {
        let sender = address(req, "sender")?;
        let skdm = SenderKeyDistributionMessage::try_from(&hex_field(req, "skdm")?[..])
            .map_err(|e| Failure::new("InvalidMessage", e))?;
        let d = self.device()?;
        let id = skdm.distribution_id().ok_or_else(|| {
            group_key_process_error(GroupKeyProcessError::Process(
                GroupProcessError::WrongLayout,
            ))
        })?;
        group::process(d.store.get(), &sender, id, &skdm).map_err(group_key_process_error)?;
        Ok(json!({}))
    }

    pub(super) fn group_encrypt(&mut self, req: &Value) -> Reply {
        let id = distribution(req)?;
        let plaintext = payload(req)?;
        let me = self.own_address()?;
        let mut rng = SystemRng::new();
        let d = self.device()?;
        // The advanced chain is saved before the ciphertext leaves, so a restart never
        // reuses a message key.
        let m = group::encrypt(d.store.get(), &me, id, &plaintext, &mut rng)
            .map_err(group_send_error)?;
        Ok(json!({ "ciphertext": hex::encode(m.serialized()) }))
    }

    pub(super) fn group_decrypt(&mut self, req: &Value) -> Reply {
        let sender = address(req, "sender")?;
        let m = SenderKeyMessage::try_from(&hex_field(req, "ciphertext")?[..])
            .map_err(|e| Failure::new("InvalidMessage", e))?;
        let got = self.device()?.group_open(&sender, &m)?;
        Ok(json!({
            "plaintext": hex::encode(got.plaintext.as_slice()),
            "text": String::from_utf8_lossy(&got.plaintext),
            "redelivered": got.redelivered,
        }))
    }

    pub(super) fn sender_cert(&mut self, req: &Value) -> Reply {
        let mut rng = SystemRng::new();
        let root = opt_key(req, "trust_root_private", &mut rng)?;
        let server = opt_key(req, "server_key_private", &mut rng)?;
        let key_id = opt_u32(req, "server_key_id")?.unwrap_or(1);
        let e164 = opt(req, "e164")
            .map(|v| as_str(v, "e164").map(str::to_string))
            .transpose()?;
        let expiration = opt_u64(req, "expiration")?
            .unwrap_or_else(|| now().as_millis().saturating_add(86_400_000));
        let me = self.own_address()?;
        let d = self.device()?;
        let identity = d.store.get().local_identity().map_err(store_error)?;
        let server_cert = ServerCertificate::new(key_id, server.public(), root.private(), &mut rng);
        let info = SenderInfo {
            uuid: me.name().to_string(),
            e164,
            device_id: me.device_id(),
            identity_key: *identity.identity_key(),
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

    pub(super) fn sealed_encrypt(&mut self, req: &Value) -> Reply {
        let addr = address(req, "address")?;
        let cert = SenderCertificate::try_from(&hex_field(req, "sender_cert")?[..])
            .map_err(|e| Failure::new("InvalidCertificate", e))?;
        let plaintext = payload(req)?;
        let version = opt_u32(req, "version")?.unwrap_or(1);
        if version != 1 && version != 2 {
            return Err(Failure::bad_request("field version must be 1 or 2"));
        }
        let hint = ContentHint::from_u32(opt_u32(req, "content_hint")?.unwrap_or(0));
        let group_id = opt(req, "group_id")
            .map(|v| as_hex(v, "group_id"))
            .transpose()?;
        let dist = opt(req, "distribution_id")
            .map(|_| distribution(req))
            .transpose()?;
        let explicit_registration_id = opt_u32(req, "registration_id")?;
        let me = self.own_address()?;
        let mut rng = SystemRng::new();
        let d = self.device()?;
        let store = d.store.get();
        // Everything the seal needs is checked before the inner message is made, so a
        // refused request advances no chain.
        let identity = store.local_identity().map_err(store_error)?;
        let theirs = store
            .identity(&addr)
            .map_err(store_error)?
            .ok_or_else(|| Failure::new("NoSession", "no identity known for address"))?;
        let v2_recipient = if version == 2 {
            // The multi-recipient message names each device with its registration id
            // (a server refuses stale ones): the session's, unless the request says.
            let from_session = store
                .session(&addr)
                .map_err(store_error)?
                .and_then(|r| r.current().map(|s| s.remote_registration_id()));
            let service_id: ServiceId = addr
                .name()
                .parse()
                .map_err(|_| Failure::bad_request("sealed v2 needs a UUID address name"))?;
            Some(Recipient {
                service_id,
                device_id: addr.device_id(),
                registration_id: explicit_registration_id.or(from_session).unwrap_or(1),
                identity_key: theirs,
            })
        } else {
            None
        };
        // A group message is made on a copy of the own record, kept only once sealed.
        let mut group_record = None;
        let (kind, inner) = match dist {
            Some(id) => {
                let mut record = d.sender_key(&me, id)?.ok_or_else(|| {
                    Failure::new("NoSenderKeyState", "no own sender key for this group")
                })?;
                let m = record
                    .encrypt(&plaintext, &mut rng)
                    .map_err(group_encrypt_error)?;
                group_record = Some(record);
                (ContentType::SenderKey, m.serialized().to_vec())
            }
            None => {
                let m = cipher::encrypt(store, &addr, &plaintext).map_err(encrypt_error)?;
                let kind = ContentType::from_message_type(m.message_type())
                    .ok_or_else(|| Failure::new("InvalidMessage", "unknown inner type"))?;
                (kind, m.serialized().to_vec())
            }
        };
        let content = UnidentifiedSenderMessageContent::new(kind, cert, inner, hint, group_id);
        let reply = match v2_recipient {
            Some(recipient) => {
                let multi = sealed::seal_v2(
                    &content,
                    &identity,
                    std::slice::from_ref(&recipient),
                    &mut rng,
                )
                .map_err(|e| Failure::new("InvalidArgument", e))?;
                let one = sealed::MultiRecipientMessage::try_from(&multi[..])
                    .ok()
                    .and_then(|m| m.for_recipient(&recipient.service_id))
                    .ok_or_else(|| Failure::new("InvalidMessage", "cannot split own message"))?;
                json!({
                    "inner_type": kind.message_type(),
                    "ciphertext": hex::encode(one),
                    "multi": hex::encode(multi),
                })
            }
            None => {
                let bytes = sealed::seal_v1(&content, &identity, &theirs, &mut rng)
                    .map_err(|e| Failure::new("InvalidKey", e))?;
                json!({ "inner_type": kind.message_type(), "ciphertext": hex::encode(bytes) })
            }
        };
        if let (Some(record), Some(id)) = (group_record, dist) {
            // Saved only once sealed, so a refused request advances no chain; the
            // ciphertext leaves (in the reply) only after this save.
            store
                .save_sender_key(&me, id, &record)
                .map_err(store_error)?;
        }
        Ok(reply)
    }

    pub(super) fn sealed_decrypt(&mut self, req: &Value) -> Reply {
        let bytes = hex_field(req, "ciphertext")?;
        let root = public_key(&hex_field(req, "trust_root")?, "trust_root")?;
        let at = opt_u64(req, "timestamp")?
            .map(Timestamp::from_millis)
            .unwrap_or_else(now);
        let mut rng = SystemRng::new();
        let d = self.device()?;
        let store = d.store.get();
        let identity = store.local_identity().map_err(store_error)?;
        let content =
            sealed::open(&bytes, &identity, &root, at).map_err(|e| Failure::new(e.code(), e))?;
        let s = content.sender().sender();
        let sender = Address::new(s.uuid.clone(), s.device_id);
        // A redelivered message (persistent mode: decrypted before a crash, reply lost)
        // comes back from the store, marked, for the group and the 1:1 kinds alike.
        let (pt, redelivered) = match content.content_type() {
            ContentType::SenderKey => {
                let m = SenderKeyMessage::try_from(content.contents())
                    .map_err(|e| Failure::new("InvalidMessage", e))?;
                let got = d.group_open(&sender, &m)?;
                (got.plaintext, got.redelivered)
            }
            ContentType::Plaintext => (Zeroizing::new(content.contents().to_vec()), false),
            kind => {
                let msg = CiphertextMessage::from_parts(kind.message_type(), content.contents())
                    .map_err(|e| decrypt_error(DecryptError::from(e)))?;
                if d.trust_all {
                    if let CiphertextMessage::PreKey(p) = &msg {
                        cipher::accept_identity(store, &sender, p.identity_key())
                            .map_err(store_error)?;
                    }
                }
                let got = cipher::decrypt(store, &sender, &msg, &mut rng, now())
                    .map_err(decrypt_error)?;
                (got.plaintext, got.redelivered)
            }
        };
        Ok(json!({
            "sender": { "name": sender.name(), "device_id": sender.device_id() },
            "sender_e164": s.e164,
            "inner_type": content.content_type().message_type(),
            "content_hint": content.content_hint().to_u32(),
            "group_id": content.group_id().map(hex::encode),
            "plaintext": hex::encode(pt.as_slice()),
            "text": String::from_utf8_lossy(&pt),
            "redelivered": redelivered,
        }))
    }
}
