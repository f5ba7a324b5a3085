//! An in-process akd `Directory` (WhatsApp v1, in-memory storage, akd's fixed test VRF
//! key) on a current-thread runtime, making the proofs the unit tests verify.

use akd::append_only_zks::AzksParallelismConfig;
use akd::directory::Directory;
use akd::ecvrf::HardCodedAkdVRF;
use akd::storage::StorageManager;
use akd::storage::memory::AsyncInMemoryDatabase;
use akd::verify::history::HistoryParams;
use akd::{AkdLabel, AkdValue, EpochHash, WhatsAppV1Configuration};
use akd_core::proto::specs::types as akd_pb;
use protobuf::Message;

use crate::Timestamp;
use crate::kt::{AuditorSigningKey, DirectoryTrust, SignedHead, VrfPublicKey};

type Dir = Directory<WhatsAppV1Configuration, AsyncInMemoryDatabase, HardCodedAkdVRF>;

pub(crate) const NAMESPACE: &str = "confide.test";
pub(crate) const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

pub(crate) struct TestDirectory {
    rt: tokio::runtime::Runtime,
    dir: Dir,
    pub(crate) auditor: AuditorSigningKey,
}

impl TestDirectory {
    pub(crate) fn new() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let storage = StorageManager::new_no_cache(AsyncInMemoryDatabase::new());
        let dir = rt
            .block_on(Dir::new(
                storage,
                HardCodedAkdVRF {},
                AzksParallelismConfig::default(),
            ))
            .unwrap();
        Self {
            rt,
            dir,
            auditor: AuditorSigningKey::from_seed([7; 32]),
        }
    }

    pub(crate) fn trust(&self) -> DirectoryTrust {
        let vrf = self.rt.block_on(self.dir.get_public_key()).unwrap();
        DirectoryTrust::new(
            VrfPublicKey::from_bytes(vrf.as_bytes()).unwrap(),
            vec![self.auditor.public_key()],
            NAMESPACE,
        )
    }

    /// Publishes one epoch; returns its signed head.
    pub(crate) fn publish(&self, entries: &[(&[u8], &[u8])]) -> SignedHead {
        let updates = entries
            .iter()
            .map(|(l, v)| (AkdLabel(l.to_vec()), AkdValue(v.to_vec())))
            .collect();
        let EpochHash(epoch, root) = self.rt.block_on(self.dir.publish(updates)).unwrap();
        self.head(epoch, root)
    }

    pub(crate) fn head(&self, epoch: u64, root: [u8; 32]) -> SignedHead {
        self.auditor.sign(NAMESPACE, NOW, epoch, root)
    }

    /// A lookup proof (protobuf bytes) at the latest epoch.
    pub(crate) fn lookup(&self, label: &[u8]) -> Vec<u8> {
        let (proof, _) = self
            .rt
            .block_on(self.dir.lookup(AkdLabel(label.to_vec())))
            .unwrap();
        akd_pb::LookupProof::from(&proof).write_to_bytes().unwrap()
    }

    /// A complete history proof (protobuf bytes) at the latest epoch.
    pub(crate) fn history(&self, label: &[u8]) -> Vec<u8> {
        let (proof, _) = self
            .rt
            .block_on(
                self.dir
                    .key_history(&AkdLabel(label.to_vec()), HistoryParams::Complete),
            )
            .unwrap();
        akd_pb::HistoryProof::from(&proof).write_to_bytes().unwrap()
    }

    /// An append-only proof (protobuf bytes) from epoch `from` to `to`.
    #[cfg(feature = "kt-audit")]
    pub(crate) fn audit(&self, from: u64, to: u64) -> Vec<u8> {
        let proof = self.rt.block_on(self.dir.audit(from, to)).unwrap();
        akd_pb::AppendOnlyProof::from(&proof)
            .write_to_bytes()
            .unwrap()
    }
}
