//! A full vault login (confide's client and `VaultServer` on in-memory records: attempt
//! counting, pending-login bookkeeping, the released key sealed under the session key and
//! unwrapped under the export key) against the floor, a bare opaque-ke 4.0.1 login with
//! the same suite. Both use Argon2id m = 256 KiB, t = 1, p = 1 (cheap, so the overhead
//! shows; at `VaultParams::recommended()` Argon2 dominates both). Messages cross
//! to_bytes/from_bytes (confide) and serialize/deserialize (opaque-ke) as on a wire.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use confide::backup::BackupKey;
use confide::backup::vault::{
    LoginFinalization, LoginRequest, LoginResponse, MemoryRecords, ReleasedKey, VaultParams,
    VaultServer, VaultServerSetup, recover_start, register_start,
};
use criterion::{Criterion, criterion_group, criterion_main};
use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialFinalization, CredentialRequest,
    CredentialResponse, Identifiers, ServerLogin, ServerLoginParameters, ServerRegistration,
    ServerSetup,
};
use rand_core::OsRng;

const PASSWORD: &[u8] = b"correct horse battery staple";

struct Bare;

impl opaque_ke::CipherSuite for Bare {
    type OprfCs = opaque_ke::Ristretto255;
    type KeyExchange = opaque_ke::TripleDh<opaque_ke::Ristretto255, sha2::Sha512>;
    type Ksf = argon2::Argon2<'static>;
}

fn argon2() -> argon2::Argon2<'static> {
    argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(256, 1, 1, None).unwrap(),
    )
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("vault_login");
    g.sample_size(20);

    // confide: register once, then time login start..open.
    let params = VaultParams::new(256, 1, 1).unwrap();
    let server = VaultServer::new(VaultServerSetup::generate(&mut OsRng), MemoryRecords::new());
    let key = BackupKey::generate(&mut OsRng);
    let (req, reg) = register_start(PASSWORD, &mut OsRng).unwrap();
    let resp = server.register_start(b"user", &req).unwrap();
    let upload = reg.finish(&resp, &key, &params, None, &mut OsRng).unwrap();
    server.register_finish(b"user", &upload).unwrap();
    g.bench_function("confide_vault", |b| {
        b.iter(|| {
            let (lreq, rec) = recover_start(PASSWORD, &mut OsRng).unwrap();
            let lreq = LoginRequest::from_bytes(&lreq.to_bytes()).unwrap();
            let (attempt, lresp) = server.login_start(b"user", &lreq, &mut OsRng).unwrap();
            let lresp = LoginResponse::from_bytes(&lresp.to_bytes()).unwrap();
            let (fin, proof) = rec.finish(&lresp, &mut OsRng).unwrap();
            let fin = LoginFinalization::from_bytes(&fin.to_bytes()).unwrap();
            let released = server
                .login_finish(b"user", &attempt, &fin, &mut OsRng)
                .unwrap();
            let released = ReleasedKey::from_bytes(&released.to_bytes()).unwrap();
            proof.open(&released).unwrap()
        })
    });

    // The floor: opaque-ke alone.
    let ksf = argon2();
    let setup = ServerSetup::<Bare>::new(&mut OsRng);
    let start = ClientRegistration::<Bare>::start(&mut OsRng, PASSWORD).unwrap();
    let resp = ServerRegistration::start(&setup, start.message, b"user").unwrap();
    let finish = start
        .state
        .finish(
            &mut OsRng,
            PASSWORD,
            resp.message,
            ClientRegistrationFinishParameters::new(Identifiers::default(), Some(&ksf)),
        )
        .unwrap();
    let record = ServerRegistration::finish(finish.message).serialize();
    g.bench_function("bare_opaque_ke", |b| {
        b.iter(|| {
            let start = ClientLogin::<Bare>::start(&mut OsRng, PASSWORD).unwrap();
            let request = CredentialRequest::deserialize(&start.message.serialize()).unwrap();
            let server_start = ServerLogin::start(
                &mut OsRng,
                &setup,
                Some(ServerRegistration::deserialize(&record).unwrap()),
                request,
                b"user",
                ServerLoginParameters::default(),
            )
            .unwrap();
            let response =
                CredentialResponse::deserialize(&server_start.message.serialize()).unwrap();
            let done = start
                .state
                .finish(
                    &mut OsRng,
                    PASSWORD,
                    response,
                    ClientLoginFinishParameters::new(None, Identifiers::default(), Some(&ksf)),
                )
                .unwrap();
            let fin = CredentialFinalization::deserialize(&done.message.serialize()).unwrap();
            let server_done = server_start
                .state
                .finish(fin, ServerLoginParameters::default())
                .unwrap();
            (done.export_key, server_done.session_key)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
