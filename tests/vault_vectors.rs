//! RFC 9807 Appendix C.1.1 and C.1.2: the real OPAQUE-3DH vectors for ristretto255,
//! SHA-512 and the Identity KSF, checked against opaque-ke 4.0.1 (the crate confide's
//! vault runs on) with the vault suite's OPRF and key exchange and the Identity KSF
//! (confide's vault swaps in Argon2id, which the RFC's vectors do not cover).
//!
//! The deterministic RNG hands out the RFC's random inputs in the order opaque-ke draws
//! them, as opaque-ke's own vector tests do.

#![cfg(feature = "backup")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialFinalization, CredentialRequest,
    CredentialResponse, Identifiers, RegistrationRequest, RegistrationUpload, ServerLogin,
    ServerLoginParameters, ServerRegistration, ServerSetup,
};
use rand_core::{CryptoRng, OsRng, RngCore};

/// The vault suite with the RFC vectors' Identity KSF.
struct VectorSuite;

impl opaque_ke::CipherSuite for VectorSuite {
    type OprfCs = opaque_ke::Ristretto255;
    type KeyExchange = opaque_ke::TripleDh<opaque_ke::Ristretto255, sha2::Sha512>;
    type Ksf = opaque_ke::ksf::Identity;
}

/// The RFC's text for the two ristretto255 vectors, verbatim.
const VECTORS: &str = r#"
C.1.1.  OPAQUE-3DH Real Test Vector 1

C.1.1.1.  Configuration

   OPRF: ristretto255-SHA512
   Hash: SHA512
   KSF: Identity
   KDF: HKDF-SHA512
   MAC: HMAC-SHA512
   Group: ristretto255
   Context: 4f50415155452d504f43
   Nh: 64
   Npk: 32
   Nsk: 32
   Nm: 64
   Nx: 64
   Nok: 32

C.1.1.2.  Input Values

   oprf_seed: f433d0227b0b9dd54f7c4422b600e764e47fb503f1f9a0f0a47c6606b0
   54a7fdc65347f1a08f277e22358bbabe26f823fca82c7848e9a75661f4ec5d5c1989e
   f
   credential_identifier: 31323334
   password: 436f7272656374486f72736542617474657279537461706c65
   envelope_nonce: ac13171b2f17bc2c74997f0fce1e1f35bec6b91fe2e12dbd323d2
   3ba7a38dfec
   masking_nonce: 38fe59af0df2c79f57b8780278f5ae47355fe1f817119041951c80
   f612fdfc6d
   server_private_key: 47451a85372f8b3537e249d7b54188091fb18edde78094b43
   e2ba42b5eb89f0d
   server_public_key: b2fe7af9f48cc502d016729d2fe25cdd433f2c4bc904660b2a
   382c9b79df1a78
   server_nonce: 71cd9960ecef2fe0d0f7494986fa3d8b2bb01963537e60efb13981e
   138e3d4a1
   client_nonce: da7e07376d6d6f034cfa9bb537d11b8c6b4238c334333d1f0aebb38
   0cae6a6cc
   client_keyshare_seed: 82850a697b42a505f5b68fcdafce8c31f0af2b581f063cf
   1091933541936304b
   server_keyshare_seed: 05a4f54206eef1ba2f615bc0aa285cb22f26d1153b5b40a
   1e85ff80da12f982f
   blind_registration: 76cfbfe758db884bebb33582331ba9f159720ca8784a2a070
   a265d9c2d6abe01
   blind_login: 6ecc102d2e7a7cf49617aad7bbe188556792d4acd60a1a8a8d2b65d4
   b0790308

C.1.1.3.  Intermediate Values

   client_public_key: 76a845464c68a5d2f7e442436bb1424953b17d3e2e289ccbac
   cafb57ac5c3675
   auth_key: 6cd32316f18d72a9a927a83199fa030663a38ce0c11fbaef82aa9003773
   0494fc555c4d49506284516edd1628c27965b7555a4ebfed2223199f6c67966dde822
   randomized_password: aac48c25ab036e30750839d31d6e73007344cb1155289fb7
   d329beb932e9adeea73d5d5c22a0ce1952f8aba6d66007615cd1698d4ac85ef1fcf15
   0031d1435d9
   envelope: ac13171b2f17bc2c74997f0fce1e1f35bec6b91fe2e12dbd323d23ba7a3
   8dfec634b0f5b96109c198a8027da51854c35bee90d1e1c781806d07d49b76de6a28b
   8d9e9b6c93b9f8b64d16dddd9c5bfb5fea48ee8fd2f75012a8b308605cdd8ba5
   handshake_secret: 81263cb85a0cfa12450f0f388de4e92291ec4c7c7a0878b6245
   50ff528726332f1298fc6cc822a432c89504347c7a2ccd70316ae3da6a15e0399e6db
   3f7c1b12
   server_mac_key: 0d36b26cfe38f51f804f0a9361818f32ee1ce2a4e5578653b5271
   84af058d3b2d8075c296fd84d24677913d1baa109290cd81a13ed383f9091a3804e65
   298dfc
   client_mac_key: 91750adbac54a5e8e53b4c233cc8d369fe83b0de1b6a3cd85575e
   eb0bb01a6a90a086a2cf5fe75fff2a9379c30ba9049510a33b5b0b1444a88800fc3ee
   e2260d
   oprf_key: 5d4c6a8b7c7138182afb4345d1fae6a9f18a1744afbcc3854f8f5a2b4b4
   c6d05

C.1.1.4.  Output Values

   registration_request: 5059ff249eb1551b7ce4991f3336205bde44a105a032e74
   7d21bf382e75f7a71
   registration_response: 7408a268083e03abc7097fc05b587834539065e86fb0c7
   b6342fcf5e01e5b019b2fe7af9f48cc502d016729d2fe25cdd433f2c4bc904660b2a3
   82c9b79df1a78
   registration_upload: 76a845464c68a5d2f7e442436bb1424953b17d3e2e289ccb
   accafb57ac5c36751ac5844383c7708077dea41cbefe2fa15724f449e535dd7dd562e
   66f5ecfb95864eadddec9db5874959905117dad40a4524111849799281fefe3c51fa8
   2785c5ac13171b2f17bc2c74997f0fce1e1f35bec6b91fe2e12dbd323d23ba7a38dfe
   c634b0f5b96109c198a8027da51854c35bee90d1e1c781806d07d49b76de6a28b8d9e
   9b6c93b9f8b64d16dddd9c5bfb5fea48ee8fd2f75012a8b308605cdd8ba5
   KE1: c4dedb0ba6ed5d965d6f250fbe554cd45cba5dfcce3ce836e4aee778aa3cd44d
   da7e07376d6d6f034cfa9bb537d11b8c6b4238c334333d1f0aebb380cae6a6cc6e29b
   ee50701498605b2c085d7b241ca15ba5c32027dd21ba420b94ce60da326
   KE2: 7e308140890bcde30cbcea28b01ea1ecfbd077cff62c4def8efa075aabcbb471
   38fe59af0df2c79f57b8780278f5ae47355fe1f817119041951c80f612fdfc6dd6ec6
   0bcdb26dc455ddf3e718f1020490c192d70dfc7e403981179d8073d1146a4f9aa1ced
   4e4cd984c657eb3b54ced3848326f70331953d91b02535af44d9fedc80188ca46743c
   52786e0382f95ad85c08f6afcd1ccfbff95e2bdeb015b166c6b20b92f832cc6df01e0
   b86a7efd92c1c804ff865781fa93f2f20b446c8371b671cd9960ecef2fe0d0f749498
   6fa3d8b2bb01963537e60efb13981e138e3d4a1c4f62198a9d6fa9170c42c3c71f197
   1b29eb1d5d0bd733e40816c91f7912cc4a660c48dae03e57aaa38f3d0cffcfc21852e
   bc8b405d15bd6744945ba1a93438a162b6111699d98a16bb55b7bdddfe0fc5608b23d
   a246e7bd73b47369169c5c90
   KE3: 4455df4f810ac31a6748835888564b536e6da5d9944dfea9e34defb9575fe5e2
   661ef61d2ae3929bcf57e53d464113d364365eb7d1a57b629707ca48da18e442
   export_key: 1ef15b4fa99e8a852412450ab78713aad30d21fa6966c9b8c9fb3262a
   970dc62950d4dd4ed62598229b1b72794fc0335199d9f7fcc6eaedde92cc04870e63f
   16
   session_key: 42afde6f5aca0cfa5c163763fbad55e73a41db6b41bc87b8e7b62214
   a8eedc6731fa3cb857d657ab9b3764b89a84e91ebcb4785166fbb02cedfcbdfda215b
   96f

C.1.2.  OPAQUE-3DH Real Test Vector 2

C.1.2.1.  Configuration

   OPRF: ristretto255-SHA512
   Hash: SHA512
   KSF: Identity
   KDF: HKDF-SHA512
   MAC: HMAC-SHA512
   Group: ristretto255
   Context: 4f50415155452d504f43
   Nh: 64
   Npk: 32
   Nsk: 32
   Nm: 64
   Nx: 64
   Nok: 32

C.1.2.2.  Input Values

   client_identity: 616c696365
   server_identity: 626f62
   oprf_seed: f433d0227b0b9dd54f7c4422b600e764e47fb503f1f9a0f0a47c6606b0
   54a7fdc65347f1a08f277e22358bbabe26f823fca82c7848e9a75661f4ec5d5c1989e
   f
   credential_identifier: 31323334
   password: 436f7272656374486f72736542617474657279537461706c65
   envelope_nonce: ac13171b2f17bc2c74997f0fce1e1f35bec6b91fe2e12dbd323d2
   3ba7a38dfec
   masking_nonce: 38fe59af0df2c79f57b8780278f5ae47355fe1f817119041951c80
   f612fdfc6d
   server_private_key: 47451a85372f8b3537e249d7b54188091fb18edde78094b43
   e2ba42b5eb89f0d
   server_public_key: b2fe7af9f48cc502d016729d2fe25cdd433f2c4bc904660b2a
   382c9b79df1a78
   server_nonce: 71cd9960ecef2fe0d0f7494986fa3d8b2bb01963537e60efb13981e
   138e3d4a1
   client_nonce: da7e07376d6d6f034cfa9bb537d11b8c6b4238c334333d1f0aebb38
   0cae6a6cc
   client_keyshare_seed: 82850a697b42a505f5b68fcdafce8c31f0af2b581f063cf
   1091933541936304b
   server_keyshare_seed: 05a4f54206eef1ba2f615bc0aa285cb22f26d1153b5b40a
   1e85ff80da12f982f
   blind_registration: 76cfbfe758db884bebb33582331ba9f159720ca8784a2a070
   a265d9c2d6abe01
   blind_login: 6ecc102d2e7a7cf49617aad7bbe188556792d4acd60a1a8a8d2b65d4
   b0790308

C.1.2.3.  Intermediate Values

   client_public_key: 76a845464c68a5d2f7e442436bb1424953b17d3e2e289ccbac
   cafb57ac5c3675
   auth_key: 6cd32316f18d72a9a927a83199fa030663a38ce0c11fbaef82aa9003773
   0494fc555c4d49506284516edd1628c27965b7555a4ebfed2223199f6c67966dde822
   randomized_password: aac48c25ab036e30750839d31d6e73007344cb1155289fb7
   d329beb932e9adeea73d5d5c22a0ce1952f8aba6d66007615cd1698d4ac85ef1fcf15
   0031d1435d9
   envelope: ac13171b2f17bc2c74997f0fce1e1f35bec6b91fe2e12dbd323d23ba7a3
   8dfec1ac902dc5589e9a5f0de56ad685ea8486210ef41449cd4d8712828913c5d2b68
   0b2b3af4a26c765cff329bfb66d38ecf1d6cfa9e7a73c222c6efe0d9520f7d7c
   handshake_secret: 5e723bed1e5276de2503419eba9da61ead573109c4012268323
   98c7e08155b885bfe7bc93451f9d887a0c1d0c19233e40a8e47b347a9ac3907f94032
   a4cff64f
   server_mac_key: dad66bb9251073d17a13f8e5500f36e5998e3cde520ca0738e708
   5af62fd97812eb79a745c94d0bf8a6ac17f980cf435504cf64041eeb6bb237796d2c7
   f81e9a
   client_mac_key: f816fe2914f7c5b29852385615d7c7f31ac122adf202d7ccd4976
   06d7aabd48930323d1d02b1cc9ecd456c4de6f46c7950becb18bffd921dd5876381b5
   486ffe
   oprf_key: 5d4c6a8b7c7138182afb4345d1fae6a9f18a1744afbcc3854f8f5a2b4b4
   c6d05

C.1.2.4.  Output Values

   registration_request: 5059ff249eb1551b7ce4991f3336205bde44a105a032e74
   7d21bf382e75f7a71
   registration_response: 7408a268083e03abc7097fc05b587834539065e86fb0c7
   b6342fcf5e01e5b019b2fe7af9f48cc502d016729d2fe25cdd433f2c4bc904660b2a3
   82c9b79df1a78
   registration_upload: 76a845464c68a5d2f7e442436bb1424953b17d3e2e289ccb
   accafb57ac5c36751ac5844383c7708077dea41cbefe2fa15724f449e535dd7dd562e
   66f5ecfb95864eadddec9db5874959905117dad40a4524111849799281fefe3c51fa8
   2785c5ac13171b2f17bc2c74997f0fce1e1f35bec6b91fe2e12dbd323d23ba7a38dfe
   c1ac902dc5589e9a5f0de56ad685ea8486210ef41449cd4d8712828913c5d2b680b2b
   3af4a26c765cff329bfb66d38ecf1d6cfa9e7a73c222c6efe0d9520f7d7c
   KE1: c4dedb0ba6ed5d965d6f250fbe554cd45cba5dfcce3ce836e4aee778aa3cd44d
   da7e07376d6d6f034cfa9bb537d11b8c6b4238c334333d1f0aebb380cae6a6cc6e29b
   ee50701498605b2c085d7b241ca15ba5c32027dd21ba420b94ce60da326
   KE2: 7e308140890bcde30cbcea28b01ea1ecfbd077cff62c4def8efa075aabcbb471
   38fe59af0df2c79f57b8780278f5ae47355fe1f817119041951c80f612fdfc6dd6ec6
   0bcdb26dc455ddf3e718f1020490c192d70dfc7e403981179d8073d1146a4f9aa1ced
   4e4cd984c657eb3b54ced3848326f70331953d91b02535af44d9fea502150b67fe367
   95dd8914f164e49f81c7688a38928372134b7dccd50e09f8fed9518b7b2f94835b3c4
   fe4c8475e7513f20eb97ff0568a39caee3fd6251876f71cd9960ecef2fe0d0f749498
   6fa3d8b2bb01963537e60efb13981e138e3d4a1c4f62198a9d6fa9170c42c3c71f197
   1b29eb1d5d0bd733e40816c91f7912cc4a292371e7809a9031743e943fb3b56f51de9
   03552fc91fba4e7419029951c3970b2e2f0a9dea218d22e9e4e0000855bb6421aa361
   0d6fc0f4033a6517030d4341
   KE3: 7a026de1d6126905736c3f6d92463a08d209833eb793e46d0f7f15b3e0f62c76
   43763c02bbc6b8d3d15b63250cae98171e9260f1ffa789750f534ac11a0176d5
   export_key: 1ef15b4fa99e8a852412450ab78713aad30d21fa6966c9b8c9fb3262a
   970dc62950d4dd4ed62598229b1b72794fc0335199d9f7fcc6eaedde92cc04870e63f
   16
   session_key: ae7951123ab5befc27e62e63f52cf472d6236cb386c968cc47b7e34f
   866aa4bc7638356a73cfce92becf39d6a7d32a1861f12130e824241fe6cab34fbd471
   a57

"#;

/// Yields its bytes in order, wrapping around (the RFC's inputs, in draw order).
struct ScriptRng {
    bytes: Vec<u8>,
}

impl RngCore for ScriptRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let n = dest.len().min(self.bytes.len());
        dest[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes.rotate_left(n);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for ScriptRng {}

fn rng(parts: &[&[u8]]) -> ScriptRng {
    ScriptRng {
        bytes: parts.concat(),
    }
}

/// Parses one vector's `name: hex` lines (hex wraps onto indented lines).
fn parse(section: &str) -> HashMap<String, Vec<u8>> {
    let mut out: HashMap<String, String> = HashMap::new();
    let mut current: Option<String> = None;
    for line in section.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with("C.") {
            current = None;
            continue;
        }
        if let Some((k, v)) = t.split_once(": ") {
            let k = k.trim().to_string();
            out.insert(k.clone(), v.trim().to_string());
            current = Some(k);
        } else if let Some(k) = &current {
            out.get_mut(k).unwrap().push_str(t);
        }
    }
    out.into_iter()
        .filter_map(|(k, v)| hex::decode(&v).ok().map(|b| (k, b)))
        .collect()
}

fn vectors() -> Vec<HashMap<String, Vec<u8>>> {
    let two: Vec<&str> = VECTORS.split("C.1.2.  ").collect();
    assert_eq!(two.len(), 2);
    two.iter().map(|s| parse(s)).collect()
}

fn check(v: &HashMap<String, Vec<u8>>) {
    let g = |k: &str| {
        v.get(k)
            .unwrap_or_else(|| panic!("vector lacks {k}"))
            .clone()
    };
    let password = g("password");
    let cred_id = g("credential_identifier");
    let context = g("Context");
    let client_id = v.get("client_identity").cloned();
    let server_id = v.get("server_identity").cloned();
    let ids = Identifiers {
        client: client_id.as_deref(),
        server: server_id.as_deref(),
    };

    // A valid dummy public key (the RFC has none; it only matters for unknown users).
    let dummy = ServerSetup::<VectorSuite>::new(&mut OsRng).serialize();
    let dummy_pk = &dummy[dummy.len() - 32..];
    let setup = ServerSetup::<VectorSuite>::deserialize(
        &[
            g("oprf_seed").as_slice(),
            &g("server_private_key"),
            dummy_pk,
        ]
        .concat(),
    )
    .unwrap();
    assert_eq!(
        setup.keypair().public().serialize().as_slice(),
        g("server_public_key").as_slice()
    );

    // Registration.
    let start = ClientRegistration::<VectorSuite>::start(
        &mut rng(&[&g("blind_registration"), &[0u8; 32]]),
        &password,
    )
    .unwrap();
    assert_eq!(
        start.message.serialize().as_slice(),
        g("registration_request").as_slice()
    );
    let request = RegistrationRequest::deserialize(&g("registration_request")).unwrap();
    let response = ServerRegistration::<VectorSuite>::start(&setup, request, &cred_id).unwrap();
    assert_eq!(
        response.message.serialize().as_slice(),
        g("registration_response").as_slice()
    );
    let finish = start
        .state
        .finish(
            &mut rng(&[&g("envelope_nonce")]),
            &password,
            response.message,
            ClientRegistrationFinishParameters::new(ids, None),
        )
        .unwrap();
    assert_eq!(
        finish.message.serialize().as_slice(),
        g("registration_upload").as_slice()
    );
    assert_eq!(finish.export_key.as_slice(), g("export_key").as_slice());
    let record = ServerRegistration::finish(
        RegistrationUpload::deserialize(&g("registration_upload")).unwrap(),
    );

    // Login: KE1, KE2, KE3, then both session keys.
    let client = ClientLogin::<VectorSuite>::start(
        // A ristretto255 random scalar takes 64 bytes (reduced wide): the blind, then zeros.
        &mut rng(&[
            &g("blind_login"),
            &[0u8; 32],
            &g("client_keyshare_seed"),
            &g("client_nonce"),
        ]),
        &password,
    )
    .unwrap();
    assert_eq!(client.message.serialize().as_slice(), g("KE1").as_slice());
    let dummy_masking_key = [0x5au8; 64];
    let params = ServerLoginParameters {
        context: Some(&context),
        identifiers: ids,
    };
    let server = ServerLogin::start(
        &mut rng(&[
            &dummy_masking_key,
            &g("masking_nonce"),
            &g("server_keyshare_seed"),
            &g("server_nonce"),
        ]),
        &setup,
        Some(record),
        CredentialRequest::deserialize(&g("KE1")).unwrap(),
        &cred_id,
        params.clone(),
    )
    .unwrap();
    assert_eq!(server.message.serialize().as_slice(), g("KE2").as_slice());
    let done = client
        .state
        .finish(
            &mut OsRng,
            &password,
            CredentialResponse::deserialize(&g("KE2")).unwrap(),
            ClientLoginFinishParameters::new(Some(&context), ids, None),
        )
        .unwrap();
    assert_eq!(done.message.serialize().as_slice(), g("KE3").as_slice());
    assert_eq!(done.session_key.as_slice(), g("session_key").as_slice());
    assert_eq!(done.export_key.as_slice(), g("export_key").as_slice());
    let server_done = server
        .state
        .finish(
            CredentialFinalization::deserialize(&g("KE3")).unwrap(),
            params,
        )
        .unwrap();
    assert_eq!(
        server_done.session_key.as_slice(),
        g("session_key").as_slice()
    );
}

#[test]
fn rfc9807_real_vector_1_ristretto255_3dh_sha512() {
    let v = vectors();
    assert!(!v[0].contains_key("client_identity"));
    check(&v[0]);
}

#[test]
fn rfc9807_real_vector_2_with_identities() {
    let v = vectors();
    assert_eq!(v[1]["client_identity"], b"alice");
    check(&v[1]);
}
