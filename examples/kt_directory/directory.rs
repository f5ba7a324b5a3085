//! The key directory and its auditor in one: akd's `Directory` (whatsapp_v1) over
//! in-memory storage, every epoch head signed with the auditor's key, and the ways a
//! directory can lie, switched at run time ([`Mode`]).
//!
//! A lie about the past is told by rebuilding it: akd proves only at its latest epoch,
//! so a rolled-back or forked view is a second `Directory` fed the published batches
//! again (VRF and commitments are deterministic, so the replay reaches the same roots).

use std::future::Future;
use std::pin::Pin;

use akd::ecvrf::{VRFKeyStorage, VrfError};
use akd::storage::StorageManager;
use akd::storage::memory::AsyncInMemoryDatabase;
use akd::{AkdLabel, AkdValue, AzksParallelismConfig, HistoryParams, WhatsAppV1Configuration};
use akd_core::proto::specs::types as pb;
use confide::Timestamp;
use confide::kt::AuditorSigningKey;
use protobuf::Message;

/// The VRF key from a 32-byte seed given on the command line (the ECVRF private key is
/// the 32-byte Ed25519 seed), so a test can pin the directory's VRF public key.
#[derive(Clone)]
pub(crate) struct SeedVrf([u8; 32]);

impl VRFKeyStorage for SeedVrf {
    // What `#[async_trait]` expands to: the trait is declared with it, and this avoids
    // a dependency for one method.
    fn retrieve<'life0, 'async_trait>(
        &'life0 self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, VrfError>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let seed = self.0.to_vec();
        Box::pin(async move { Ok(seed) })
    }
}

type Akd = akd::Directory<WhatsAppV1Configuration, AsyncInMemoryDatabase, SeedVrf>;

/// The age the `stale_head` mode gives its heads: 30 days.
const STALE_BY_MS: u64 = 30 * 24 * 60 * 60 * 1000;

/// The entry only the forked tree holds.
const FORK_LABEL: &[u8] = b"kt-directory.fork";

/// How the directory behaves from the next request on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Serves the latest signed head and proofs at it.
    Honest,
    /// Serves the head and proofs of an older epoch.
    Rollback { epoch: u64 },
    /// Serves a second tree: the same batches plus one more entry in the last epoch,
    /// its heads signed too.
    Fork,
    /// Flips the last byte of every proof served.
    TamperProof,
    /// Serves heads without the auditor's signature.
    UnsignedHead,
    /// Serves heads signed by a key that is not the auditor's.
    WrongSignature,
    /// Serves heads whose timestamp is 30 days old.
    StaleHead,
}

/// A request the directory refuses, with the HTTP status it maps to.
#[derive(Debug)]
pub(crate) enum DirError {
    /// 400: the request is malformed.
    Bad(String),
    /// 404: no such label or epoch.
    NotFound(String),
    /// 500: akd failed.
    Akd(String),
}

impl DirError {
    pub(crate) fn status(&self) -> u16 {
        match self {
            Self::Bad(_) => 400,
            Self::NotFound(_) => 404,
            Self::Akd(_) => 500,
        }
    }

    pub(crate) fn message(&self) -> &str {
        match self {
            Self::Bad(m) | Self::NotFound(m) | Self::Akd(m) => m,
        }
    }
}

fn akd_err(e: impl std::fmt::Display) -> DirError {
    DirError::Akd(e.to_string())
}

/// One epoch's head as signed when the epoch was published.
#[derive(Clone, Debug)]
struct Head {
    epoch: u64,
    root: [u8; 32],
    timestamp: Timestamp,
}

/// A tree and the heads of its epochs (`heads[i]` is epoch `i + 1`).
struct View {
    akd: Akd,
    heads: Vec<Head>,
}

impl View {
    async fn empty(vrf: &SeedVrf) -> Result<Self, DirError> {
        let storage = StorageManager::new_no_cache(AsyncInMemoryDatabase::new());
        let akd = Akd::new(storage, vrf.clone(), AzksParallelismConfig::default())
            .await
            .map_err(akd_err)?;
        Ok(Self {
            akd,
            heads: Vec::new(),
        })
    }

    async fn publish(
        &mut self,
        batch: &[(Vec<u8>, Vec<u8>)],
        timestamp: Timestamp,
    ) -> Result<Head, DirError> {
        let updates = batch
            .iter()
            .map(|(l, v)| (AkdLabel(l.clone()), AkdValue(v.clone())))
            .collect();
        let hash = self.akd.publish(updates).await.map_err(akd_err)?;
        let head = Head {
            epoch: hash.0,
            root: hash.1,
            timestamp,
        };
        self.heads.push(head.clone());
        Ok(head)
    }

    fn latest(&self) -> Result<&Head, DirError> {
        self.heads
            .last()
            .ok_or_else(|| DirError::NotFound("nothing published yet".into()))
    }

    fn at(&self, epoch: u64) -> Result<&Head, DirError> {
        epoch
            .checked_sub(1)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.heads.get(i))
            .ok_or_else(|| DirError::NotFound(format!("no epoch {epoch}")))
    }
}

/// The directory's configuration (from the command line).
pub(crate) struct Config {
    pub(crate) auditor_seed: [u8; 32],
    pub(crate) vrf_seed: [u8; 32],
    pub(crate) namespace: String,
}

/// A head ready to serve and the proof that goes with it.
pub(crate) struct Served {
    pub(crate) epoch: u64,
    pub(crate) head: Vec<u8>,
    pub(crate) proof: Vec<u8>,
}

/// The directory, its auditor, its clock and its mode.
pub(crate) struct KtDirectory {
    vrf: SeedVrf,
    vrf_public_key: [u8; 32],
    auditor: AuditorSigningKey,
    impostor: AuditorSigningKey,
    namespace: String,
    /// `None`: the system clock.
    clock_ms: Option<u64>,
    /// Every batch published, epoch by epoch (`log[i]` made epoch `i + 1`).
    log: Vec<Vec<(Vec<u8>, Vec<u8>)>>,
    main: View,
    /// The tree a rollback or fork serves instead of `main`.
    shadow: Option<View>,
    mode: Mode,
}

impl KtDirectory {
    pub(crate) async fn new(config: Config) -> Result<Self, DirError> {
        let vrf = SeedVrf(config.vrf_seed);
        let main = View::empty(&vrf).await?;
        let public = main.akd.get_public_key().await.map_err(akd_err)?;
        let mut impostor_seed = config.auditor_seed;
        for b in &mut impostor_seed {
            *b ^= 0xa5;
        }
        Ok(Self {
            vrf_public_key: public.to_bytes(),
            vrf,
            auditor: AuditorSigningKey::from_seed(config.auditor_seed),
            impostor: AuditorSigningKey::from_seed(impostor_seed),
            namespace: config.namespace,
            clock_ms: None,
            log: Vec::new(),
            main,
            shadow: None,
            mode: Mode::Honest,
        })
    }

    pub(crate) fn vrf_public_key(&self) -> [u8; 32] {
        self.vrf_public_key
    }

    pub(crate) fn auditor_key(&self) -> [u8; 32] {
        self.auditor.public_key().to_bytes()
    }

    /// Sets the clock the heads are stamped with (`None`: the system clock).
    pub(crate) fn set_clock(&mut self, ms: Option<u64>) {
        self.clock_ms = ms;
    }

    fn now(&self) -> Timestamp {
        match self.clock_ms {
            Some(ms) => Timestamp::from_millis(ms),
            None => Timestamp::from_system_time(std::time::SystemTime::now()),
        }
    }

    /// Publishes a batch as the next epoch (into the fork too, when one is served) and
    /// returns its head as currently served.
    pub(crate) async fn publish(
        &mut self,
        batch: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<Served, DirError> {
        if batch.is_empty() {
            return Err(DirError::Bad("an epoch needs at least one entry".into()));
        }
        let labels: std::collections::HashSet<&[u8]> =
            batch.iter().map(|(l, _)| l.as_slice()).collect();
        if labels.len() != batch.len() {
            return Err(DirError::Bad("a label appears twice in the batch".into()));
        }
        let now = self.now();
        self.main.publish(&batch, now).await?;
        if self.mode == Mode::Fork {
            if let Some(fork) = self.shadow.as_mut() {
                fork.publish(&batch, now).await?;
            }
        }
        self.log.push(batch);
        self.head(None)
    }

    /// Switches the mode. `swap_key` is not a mode: it publishes `value` for `label`
    /// (an attacker's key, which the directory then proves like any other).
    pub(crate) async fn set_mode(&mut self, mode: Mode) -> Result<(), DirError> {
        let shadow = match &mode {
            Mode::Rollback { epoch } => Some(self.replay(*epoch, None).await?),
            Mode::Fork => {
                let epoch = self.main.latest()?.epoch;
                Some(self.replay(epoch, Some(self.now())).await?)
            }
            _ => None,
        };
        self.shadow = shadow;
        self.mode = mode;
        Ok(())
    }

    /// Publishes an attacker's `value` for `label` as the next epoch.
    pub(crate) async fn swap_key(
        &mut self,
        label: Vec<u8>,
        value: Vec<u8>,
    ) -> Result<Served, DirError> {
        self.publish(vec![(label, value)]).await
    }

    /// A new tree with the batches up to `epoch`; with `fork_at`, the last batch gets
    /// one more entry and its head that timestamp (else the replay must reach the roots
    /// `main` signed, and keeps those heads).
    async fn replay(&self, epoch: u64, fork_at: Option<Timestamp>) -> Result<View, DirError> {
        let count = usize::try_from(epoch)
            .ok()
            .filter(|n| (1..=self.log.len()).contains(n))
            .ok_or_else(|| DirError::NotFound(format!("no epoch {epoch}")))?;
        let mut view = View::empty(&self.vrf).await?;
        for (i, batch) in self.log.iter().take(count).enumerate() {
            let signed = self.main.heads.get(i).cloned();
            let Some(signed) = signed else {
                return Err(DirError::Akd("log and heads disagree".into()));
            };
            match fork_at {
                Some(at) if i + 1 == count => {
                    let mut forked = batch.clone();
                    forked.push((FORK_LABEL.to_vec(), at.as_millis().to_be_bytes().to_vec()));
                    view.publish(&forked, at).await?;
                }
                _ => {
                    let head = view.publish(batch, signed.timestamp).await?;
                    if head.root != signed.root || head.epoch != signed.epoch {
                        return Err(DirError::Akd(format!(
                            "replay reached another root at epoch {}",
                            head.epoch
                        )));
                    }
                }
            }
        }
        Ok(view)
    }

    fn served(&self) -> &View {
        match (&self.mode, &self.shadow) {
            (Mode::Rollback { .. } | Mode::Fork, Some(shadow)) => shadow,
            _ => &self.main,
        }
    }

    /// The served head's bytes, the mode's lie applied.
    fn head_bytes(&self, head: &Head) -> Vec<u8> {
        let ns = self.namespace.as_str();
        match self.mode {
            Mode::UnsignedHead => {
                confide::kt::SignedHead::unsigned(ns, head.timestamp, head.epoch, head.root)
                    .to_bytes()
            }
            Mode::WrongSignature => self
                .impostor
                .sign(ns, head.timestamp, head.epoch, head.root)
                .to_bytes(),
            Mode::StaleHead => {
                let old =
                    Timestamp::from_millis(self.now().as_millis().saturating_sub(STALE_BY_MS));
                self.auditor.sign(ns, old, head.epoch, head.root).to_bytes()
            }
            _ => self
                .auditor
                .sign(ns, head.timestamp, head.epoch, head.root)
                .to_bytes(),
        }
    }

    fn proof_bytes(&self, mut proof: Vec<u8>) -> Vec<u8> {
        if self.mode == Mode::TamperProof {
            if let Some(last) = proof.last_mut() {
                *last ^= 0x01;
            }
        }
        proof
    }

    /// The served head: the latest, or epoch `epoch`'s.
    pub(crate) fn head(&self, epoch: Option<u64>) -> Result<Served, DirError> {
        let view = self.served();
        let head = match epoch {
            Some(e) => view.at(e)?,
            None => view.latest()?,
        };
        Ok(Served {
            epoch: head.epoch,
            head: self.head_bytes(head),
            proof: Vec::new(),
        })
    }

    /// The latest version of `label` with its lookup proof (protobuf `LookupProof`).
    pub(crate) async fn lookup(&self, label: Vec<u8>) -> Result<Served, DirError> {
        let view = self.served();
        let (proof, hash) = view
            .akd
            .lookup(AkdLabel(label))
            .await
            .map_err(|e| DirError::NotFound(e.to_string()))?;
        let bytes = pb::LookupProof::from(&proof)
            .write_to_bytes()
            .map_err(akd_err)?;
        self.with_head(view, hash.0, bytes)
    }

    /// Every version of `label` with the history proof (`HistoryProof`, `Complete`).
    pub(crate) async fn history(&self, label: Vec<u8>) -> Result<Served, DirError> {
        let view = self.served();
        let (proof, hash) = view
            .akd
            .key_history(&AkdLabel(label), HistoryParams::Complete)
            .await
            .map_err(|e| DirError::NotFound(e.to_string()))?;
        let bytes = pb::HistoryProof::from(&proof)
            .write_to_bytes()
            .map_err(akd_err)?;
        self.with_head(view, hash.0, bytes)
    }

    /// The append-only proof from epoch `from` to `to` (`AppendOnlyProof`), with `to`'s
    /// head.
    pub(crate) async fn audit(&self, from: u64, to: u64) -> Result<Served, DirError> {
        let view = self.served();
        if from == 0 || from >= to {
            return Err(DirError::Bad(format!("cannot audit from {from} to {to}")));
        }
        view.at(to)?;
        let proof = view.akd.audit(from, to).await.map_err(akd_err)?;
        let bytes = pb::AppendOnlyProof::from(&proof)
            .write_to_bytes()
            .map_err(akd_err)?;
        self.with_head(view, to, bytes)
    }

    fn with_head(&self, view: &View, epoch: u64, proof: Vec<u8>) -> Result<Served, DirError> {
        let head = view.at(epoch)?;
        Ok(Served {
            epoch,
            head: self.head_bytes(head),
            proof: self.proof_bytes(proof),
        })
    }
}
