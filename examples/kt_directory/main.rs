//! A test key directory: akd's `Directory` (whatsapp_v1 configuration) on in-memory
//! storage, playing its own auditor (each epoch head signed with an Ed25519 key), served
//! over HTTP/1.1 on 127.0.0.1 — and able to lie, so tests can watch confide catch it.
//!
//! `cargo run --features kt --example kt_directory -- --auditor-seed HEX32 [--vrf-seed
//! HEX32] [--namespace NS]`. When listening it prints one JSON line:
//! `{"port": P, "vrf_public_key": hex, "auditor_key": hex}`.
//!
//! Routes (JSON bodies, bytes as hex):
//! - `POST /publish {"entries":[{"label":hex,"value":hex}]}`: the next epoch → `{epoch, head}`
//! - `GET /head[?epoch=N]` → `{epoch, head}` (a `SignedHead`'s bytes)
//! - `GET /lookup?label=hex` → `{epoch, head, proof}` (a `LookupProof`)
//! - `GET /history?label=hex` → `{epoch, head, proof}` (a `HistoryProof`, all versions)
//! - `GET /audit?from=E1&to=E2` → `{epoch, head, proof}` (an `AppendOnlyProof`, `to`'s head)
//! - `POST /clock {"ms": N | null}`: the time heads are stamped with (null: system clock)
//! - `POST /mode {"mode": ...}`: `honest`, `swap_key` (with `label`, `value`: publishes
//!   that value as an attacker would), `rollback` (with `epoch`), `fork`, `tamper_proof`,
//!   `unsigned_head`, `wrong_signature`, `stale_head`.

mod directory;
mod http;

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

use directory::{Config, DirError, KtDirectory, Mode, Served};
use http::Request;

type Shared = Arc<Mutex<KtDirectory>>;

fn hex32(s: &str, what: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(s).map_err(|e| format!("{what}: {e}"))?;
    bytes
        .try_into()
        .map_err(|_| format!("{what}: 32 bytes expected"))
}

fn parse_args() -> Result<Config, String> {
    let mut auditor_seed = None;
    let mut vrf_seed = [7u8; 32];
    let mut namespace = "confide.kt.test".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--auditor-seed" => auditor_seed = Some(hex32(&value()?, "--auditor-seed")?),
            "--vrf-seed" => vrf_seed = hex32(&value()?, "--vrf-seed")?,
            "--namespace" => namespace = value()?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Config {
        auditor_seed: auditor_seed.ok_or("--auditor-seed HEX is required")?,
        vrf_seed,
        namespace,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = parse_args()?;
    let dir = KtDirectory::new(config)
        .await
        .map_err(|e| e.message().to_string())?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let ready = json!({
        "port": listener.local_addr()?.port(),
        "vrf_public_key": hex::encode(dir.vrf_public_key()),
        "auditor_key": hex::encode(dir.auditor_key()),
    });
    println!("{ready}");
    let shared: Shared = Arc::new(Mutex::new(dir));
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(serve(stream, shared.clone()));
    }
}

async fn serve(mut stream: TcpStream, dir: Shared) {
    let (status, body) = match http::read_request(&mut stream).await {
        Ok(request) => match route(&request, &dir).await {
            Ok(v) => (200, v),
            Err(e) => (e.status(), json!({ "error": e.message() })),
        },
        Err((status, reason)) => (status, json!({ "error": reason })),
    };
    http::respond(&mut stream, status, &body.to_string()).await;
}

fn bad(what: impl Into<String>) -> DirError {
    DirError::Bad(what.into())
}

fn hex_param(s: Option<&str>, what: &str) -> Result<Vec<u8>, DirError> {
    let s = s.ok_or_else(|| bad(format!("{what} is missing")))?;
    hex::decode(s).map_err(|e| bad(format!("{what}: {e}")))
}

fn u64_param(s: Option<&str>, what: &str) -> Result<u64, DirError> {
    s.ok_or_else(|| bad(format!("{what} is missing")))?
        .parse()
        .map_err(|_| bad(format!("{what} is not a number")))
}

fn served(s: Served) -> Value {
    let mut v = json!({ "epoch": s.epoch, "head": hex::encode(&s.head) });
    if !s.proof.is_empty() {
        v["proof"] = Value::String(hex::encode(&s.proof));
    }
    v
}

async fn route(req: &Request, dir: &Shared) -> Result<Value, DirError> {
    let body = || -> Result<Value, DirError> {
        serde_json::from_slice(&req.body).map_err(|e| bad(format!("body: {e}")))
    };
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/publish") => {
            let body = body()?;
            let entries = body["entries"]
                .as_array()
                .ok_or_else(|| bad("entries must be an array"))?;
            let mut batch = Vec::with_capacity(entries.len());
            for e in entries {
                batch.push((
                    hex_param(e["label"].as_str(), "label")?,
                    hex_param(e["value"].as_str(), "value")?,
                ));
            }
            Ok(served(dir.lock().await.publish(batch).await?))
        }
        ("GET", "/head") => {
            let epoch = match req.param("epoch") {
                Some(e) => Some(u64_param(Some(e), "epoch")?),
                None => None,
            };
            Ok(served(dir.lock().await.head(epoch)?))
        }
        ("GET", "/lookup") => {
            let label = hex_param(req.param("label"), "label")?;
            Ok(served(dir.lock().await.lookup(label).await?))
        }
        ("GET", "/history") => {
            let label = hex_param(req.param("label"), "label")?;
            Ok(served(dir.lock().await.history(label).await?))
        }
        ("GET", "/audit") => {
            let from = u64_param(req.param("from"), "from")?;
            let to = u64_param(req.param("to"), "to")?;
            Ok(served(dir.lock().await.audit(from, to).await?))
        }
        ("POST", "/clock") => {
            let body = body()?;
            let ms = match &body["ms"] {
                Value::Null => None,
                v => Some(
                    v.as_u64()
                        .ok_or_else(|| bad("ms must be a number or null"))?,
                ),
            };
            dir.lock().await.set_clock(ms);
            Ok(json!({ "ms": ms }))
        }
        ("POST", "/mode") => {
            let body = body()?;
            let name = body["mode"]
                .as_str()
                .ok_or_else(|| bad("mode must be a string"))?;
            let mut dir = dir.lock().await;
            let mode = match name {
                "honest" => Mode::Honest,
                "swap_key" => {
                    let label = hex_param(body["label"].as_str(), "label")?;
                    let value = hex_param(body["value"].as_str(), "value")?;
                    return Ok(served(dir.swap_key(label, value).await?));
                }
                "rollback" => Mode::Rollback {
                    epoch: body["epoch"]
                        .as_u64()
                        .ok_or_else(|| bad("rollback needs an epoch"))?,
                },
                "fork" => Mode::Fork,
                "tamper_proof" => Mode::TamperProof,
                "unsigned_head" => Mode::UnsignedHead,
                "wrong_signature" => Mode::WrongSignature,
                "stale_head" => Mode::StaleHead,
                other => return Err(bad(format!("unknown mode {other}"))),
            };
            dir.set_mode(mode).await?;
            // Before the first epoch there is no head to show yet.
            Ok(dir.head(None).map(served).unwrap_or_else(|_| json!({})))
        }
        (_, "/publish" | "/head" | "/lookup" | "/history" | "/audit" | "/clock" | "/mode") => {
            Err(DirError::Bad("wrong method".into()))
        }
        (_, path) => Err(DirError::NotFound(format!("no route {path}"))),
    }
}
