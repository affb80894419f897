//! The devnet with on-chain inference: the inference mempool installed as
//! its pre-execution stage and precompile set, the model registry, and the
//! `nml_` queries over them.

use std::collections::HashMap;
use std::sync::Arc;

use alloy_primitives::{Address, B256, U256};
use alloy_signer_local::PrivateKeySigner;
use parking_lot::Mutex;
use serde::Serialize;

use super::scheduler::scheduler_signer;
use super::settlement::reloaded_book;
use super::{Devnet, DevnetConfig, NodeError};
use crate::chain::ETHER;
use crate::chain::{Chain, InferenceRecord};
use crate::inference::{Executor, InferenceError, ModelInfo, ModelRegistry};
use crate::llm::{LlmBackend, LlmRouter};
use crate::mempool::{Pipe, PipeConfig, PipeStatus, PoolCounts};
use crate::predeploys::{
    INFERENCE_HUB, SETTLEMENT_RELAY, SYSTEM_ADDRESS, TEE_REGISTRY, WORKFLOW_SCHEDULER, inference_hub_code, payments,
    settlement_relay_code, settlement_relay_setup, tee_registry_code, tee_registry_setup, workflow_scheduler_code,
    workflow_scheduler_setup,
};
use crate::settlement::{Book, Settlement, SettlementConfig, relay_signer};
use crate::tee::{Attestation, Enclave, Enclaves, Fault};

/// What a devnet with inference runs models with.
#[derive(Debug, Clone)]
pub struct InferenceSetup {
    /// Runs the model requests.
    pub executor: Arc<dyn Executor>,
    /// Answers the LLM calls (`--llm-url`, `[llm]`; by default none: every
    /// LLM id is unknown).
    pub llm: Arc<dyn LlmBackend>,
    /// The models the executor serves, when it has a registry (`nml_registerModel`, `nml_listModels`).
    pub registry: Option<Arc<ModelRegistry>>,
    /// How the inference mempool works.
    pub pipe: PipeConfig,
    /// The enclaves that attest TEE-mode results (`--tees`, `--tee-seed`).
    pub enclaves: Arc<Enclaves>,
    /// How their results settle (`--settlement`, `--settle-after`).
    pub settlement: SettlementConfig,
}

/// One attested inference call of a transaction (`nml_getAttestations`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttestedCall {
    /// The request id (also the attestation's `inputHash`).
    pub request_id: B256,
    /// The request's mode byte.
    pub mode: u8,
    /// The model the request named.
    pub model: String,
    /// The enclave's attestation.
    #[serde(flatten)]
    pub attestation: Attestation,
    /// Where its settlement stands; `None` for a result used before the
    /// devnet started (a loaded state).
    pub settlement: Option<Settlement>,
}

/// One of the devnet's enclaves (`nml_getTees`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TeeInfo {
    /// `keccak256(publicKey)`.
    pub tee_id: B256,
    /// The signing key, DER SubjectPublicKeyInfo.
    pub public_key: alloy_primitives::Bytes,
    /// Its TLS certificate (DER).
    pub tls_certificate: alloy_primitives::Bytes,
    /// Its attestation document (AWS Nitro format).
    pub attestation_document: alloy_primitives::Bytes,
    /// The devnet's root certificate (DER) the document chains to.
    pub root_certificate: alloy_primitives::Bytes,
    /// `keccak256(pcr0 ‖ pcr1 ‖ pcr2)` of its image.
    pub pcr_hash: B256,
}

impl InferenceSetup {
    /// A setup on `executor` with everything else as `nml devnet` starts by
    /// default, less its models and LLMs: no registry, no LLM backend, the default mempool, one enclave of seed 0,
    /// batch settlement after 3 blocks.
    pub fn new(executor: Arc<dyn Executor>) -> Self {
        Self {
            executor,
            llm: Arc::new(LlmRouter::new(None)),
            registry: None,
            pipe: PipeConfig::default(),
            enclaves: Arc::default(),
            settlement: SettlementConfig::default(),
        }
    }
}

/// The inference part of a devnet.
#[derive(Debug)]
pub(super) struct Inference {
    pub(super) pipe: Arc<Pipe>,
    registry: Option<Arc<ModelRegistry>>,
    /// The relay account's key and bookkeeping.
    pub(super) relay: PrivateKeySigner,
    pub(super) book: Mutex<Book>,
    /// The chain time of each enclave's last heartbeat sent by the operator.
    pub(super) heartbeats: Mutex<HashMap<B256, u64>>,
    /// The scheduler account's key, and its `execute` transactions on their
    /// way, by task id.
    pub(super) scheduler: PrivateKeySigner,
    pub(super) scheduled: Mutex<HashMap<U256, B256>>,
    /// Enclaves beyond the pipe's that the operator keeps alive in the
    /// registry (the gateway's).
    pub(super) operated: Mutex<Vec<Arc<Enclave>>>,
}

/// `nml_mempoolStatus`: the pool, and what the inference mempool is doing.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MempoolStatus {
    /// Executable transactions waiting for a block.
    pub pending: usize,
    /// Transactions waiting for an earlier nonce.
    pub queued: usize,
    /// The inference mempool.
    #[serde(flatten)]
    pub pipe: PipeStatus,
}

impl Devnet {
    /// A devnet whose precompile at 0x…F4 runs models on `setup.executor`
    /// through the inference mempool (PROTOCOL.md part B).
    pub fn with_inference(config: DevnetConfig, setup: InferenceSetup) -> Result<Self, NodeError> {
        let pipe = Pipe::new(setup.executor, setup.llm, setup.pipe, setup.enclaves);
        let mut devnet = Self::with_extensions(config, pipe.precompiles(), pipe.clone())?;
        devnet.with_chain(|chain| pipe.learn(records(chain)));
        let relay = relay_signer(pipe.enclaves().seed());
        let scheduler = scheduler_signer(pipe.enclaves().seed());
        devnet.install_predeploys(pipe.enclaves(), relay.address(), scheduler.address())?;
        // The chain of a `--state` file: its settlements, and what its
        // relay still owed, are read back.
        let duties = devnet.loaded_duties.take();
        let book = Mutex::new(devnet.with_chain(|chain| reloaded_book(chain, setup.settlement, duties)));
        let heartbeats = Mutex::default();
        let scheduled = Mutex::default();
        devnet.inference = Some(Inference {
            pipe,
            registry: setup.registry,
            relay,
            book,
            heartbeats,
            scheduler,
            scheduled,
            operated: Mutex::default(),
        });
        Ok(devnet)
    }

    /// Installs the TEE registry with the enclaves registered, the
    /// settlement relay with `relay` as its relay, the inference hub, and the
    /// workflow scheduler run by `scheduler` (both accounts funded), unless
    /// the chain has them (a loaded state, a fork of a chain that has them);
    /// and the contracts of x402 payments with OPG minted to the dev
    /// accounts, unless the chain has the token. Dev account 0 holds the
    /// admin roles.
    fn install_predeploys(&self, enclaves: &Enclaves, relay: Address, scheduler: Address) -> Result<(), NodeError> {
        let latest = self.with_chain(|c| c.latest());
        let mut calls = Vec::new();
        if latest.code_of(payments::OPG_TOKEN)?.is_empty() {
            for (address, code) in payments::payment_codes() {
                self.set_code(address, code);
            }
            calls.extend(payments::opg_setup(self.accounts()));
        }
        if latest.code_of(TEE_REGISTRY)?.is_empty() {
            let all = enclaves.all().map_err(|e| NodeError::Failed(e.to_string()))?;
            let admin = self.accounts().first().copied().unwrap_or(SYSTEM_ADDRESS);
            self.set_code(TEE_REGISTRY, tee_registry_code());
            self.set_code(SETTLEMENT_RELAY, settlement_relay_code());
            self.set_code(INFERENCE_HUB, inference_hub_code());
            self.set_code(WORKFLOW_SCHEDULER, workflow_scheduler_code());
            self.set_balance(relay, U256::from(1_000u64) * U256::from(ETHER));
            self.set_balance(scheduler, U256::from(1_000u64) * U256::from(ETHER));
            calls.extend(tee_registry_setup(admin, all));
            calls.extend(settlement_relay_setup(admin, relay));
            calls.extend(workflow_scheduler_setup(scheduler));
        }
        if calls.is_empty() {
            return Ok(());
        }
        self.run_system_calls(&calls)
    }

    /// Registers `enclave` in the TEE registry as an LLM proxy (a gateway)
    /// served at `endpoint` with `tls_certificate`, under an attestation
    /// document of the devnet's PKI for the gateway's image, with its
    /// Oblivious HTTP key configuration when it has one, and keeps its
    /// heartbeats fresh from then on.
    pub fn register_llm_proxy(
        &self,
        enclave: Arc<Enclave>,
        tls_certificate: alloy_primitives::Bytes,
        endpoint: String,
        ohttp_key_config: Option<alloy_primitives::Bytes>,
    ) -> Result<(), NodeError> {
        let inference = self.inference()?;
        let seed = inference.pipe.enclaves().seed();
        let failed = |e: String| NodeError::Failed(format!("registering the gateway's enclave: {e}"));
        let pki = crate::tee::nitro::DevnetPki::from_seed(seed).map_err(failed)?;
        let document = pki
            .document(
                seed,
                crate::tee::GATEWAY_ENCLAVE,
                &crate::tee::nitro::gateway_pcrs(),
                enclave.public_key(),
                &tls_certificate,
            )
            .map_err(failed)?;
        let calls =
            crate::predeploys::llm_proxy_registration(&enclave, tls_certificate, document, endpoint, ohttp_key_config)
                .map_err(|e| failed(e.to_string()))?;
        self.run_system_calls(&calls)?;
        inference.operated.lock().push(enclave);
        Ok(())
    }

    /// An independent devnet whose chain starts as this one's head (pool,
    /// snapshots, filters and inspectors are not copied; mining is
    /// automatic). With inference, it runs on the same executor and starts
    /// knowing every result this one knows.
    pub fn fork(&self) -> Self {
        let chain = self.lock().chain.clone();
        let config =
            DevnetConfig { chain: chain.config().clone(), mining: super::Mining::Auto, state_file: None, fork: None };
        let (precompiles, stage, inference) = match &self.inference {
            Some(inference) => {
                let pipe = inference.pipe.fork();
                let precompiles = pipe.precompiles();
                let stage: Arc<dyn crate::mempool::PreExecution> = pipe.clone();
                let book = Mutex::new(Book::new(inference.book.lock().config(), chain.head_number()));
                let relay = inference.relay.clone();
                let heartbeats = Mutex::new(inference.heartbeats.lock().clone());
                let scheduler = inference.scheduler.clone();
                let inference = Inference {
                    pipe,
                    registry: inference.registry.clone(),
                    relay,
                    book,
                    heartbeats,
                    scheduler,
                    scheduled: Mutex::default(),
                    operated: Mutex::new(inference.operated.lock().clone()),
                };
                (precompiles, stage, Some(inference))
            }
            None => (Arc::clone(&self.engine.precompiles), Arc::clone(&self.engine.stage), None),
        };
        let mut fork = Self::assemble(config, chain, precompiles, stage);
        fork.inference = inference;
        fork
    }

    pub(super) fn inference(&self) -> Result<&Inference, NodeError> {
        self.inference.as_ref().ok_or_else(|| {
            NodeError::Failed("this devnet runs without inference (start it with models, e.g. --models DIR)".into())
        })
    }

    fn registry(&self) -> Result<&Arc<ModelRegistry>, NodeError> {
        self.inference()?
            .registry
            .as_ref()
            .ok_or_else(|| NodeError::Failed("this devnet's executor has no model registry".into()))
    }

    /// Registers an ONNX model from its bytes (`nml_registerModel`); the id is
    /// derived from the bytes (CIDv1, sha2-256) unless given.
    pub fn register_model(&self, bytes: Vec<u8>, id: Option<&str>) -> Result<ModelInfo, NodeError> {
        self.registry()?.register(bytes, id).map_err(model_error)
    }

    /// The registered models (`nml_listModels`).
    pub fn list_models(&self) -> Result<Vec<ModelInfo>, NodeError> {
        Ok(self.registry()?.list())
    }

    /// The inference calls of a mined transaction, in call order
    /// (`nml_getInferenceReceipts`); `None` for an unknown transaction.
    pub fn inference_receipts(&self, hash: B256) -> Option<Vec<InferenceRecord>> {
        self.with_chain(|c| {
            let (block, index) = c.transaction(&hash)?;
            Some(block.receipts.get(index)?.inference.clone())
        })
    }

    /// The attestations of a mined transaction's TEE-mode inference calls,
    /// in call order (`nml_getAttestations`); `None` for an unknown
    /// transaction.
    pub fn attestations(&self, hash: B256) -> Option<Vec<AttestedCall>> {
        let records = self.inference_receipts(hash)?;
        let used_in = self.with_chain(|c| c.tx_location(&hash).map(|l| l.block)).unwrap_or_default();
        Some(
            records
                .into_iter()
                .filter_map(|r| {
                    let attestation = r.attestation?;
                    let settlement = self.with_book(|b| b.settlement(&attestation, used_in)).ok().flatten();
                    Some(AttestedCall {
                        request_id: r.request_id,
                        mode: r.mode,
                        model: r.model,
                        attestation,
                        settlement,
                    })
                })
                .collect(),
        )
    }

    /// The devnet's enclaves (`nml_getTees`).
    pub fn tees(&self) -> Result<Vec<TeeInfo>, NodeError> {
        let enclaves = self.inference()?.pipe.enclaves();
        let all = enclaves.all().map_err(|e| NodeError::Failed(e.to_string()))?;
        Ok(all
            .iter()
            .map(|e| TeeInfo {
                tee_id: e.id(),
                public_key: e.public_key().clone(),
                tls_certificate: e.tls_certificate().clone(),
                attestation_document: e.attestation_document().clone(),
                root_certificate: e.root_certificate().clone(),
                pcr_hash: e.pcr_hash(),
            })
            .collect())
    }

    /// The inference mempool (none without inference).
    pub fn pipe(&self) -> Option<Arc<Pipe>> {
        self.inference.as_ref().map(|i| Arc::clone(&i.pipe))
    }

    /// Switches an injected fault on or off (`nml_setTeeFault`).
    pub fn set_tee_fault(&self, fault: Fault, on: bool) -> Result<(), NodeError> {
        self.inference()?.pipe.enclaves().faults().set(fault, on);
        Ok(())
    }

    /// The faults switched on (`nml_getTeeFaults`).
    pub fn tee_faults(&self) -> Result<Vec<Fault>, NodeError> {
        Ok(self.inference()?.pipe.enclaves().faults().active())
    }

    /// The pool and the inference mempool (`nml_mempoolStatus`). Answers while
    /// a block is being built: the pool counts then are those at its start.
    pub fn mempool_status(&self) -> Result<MempoolStatus, NodeError> {
        let pipe = self.inference()?.pipe.status();
        let PoolCounts { pending, queued } = self.engine.inner.lock().pool.counts();
        Ok(MempoolStatus { pending, queued, pipe })
    }

    /// Makes the inference mempool learn the records of a chain just loaded.
    pub(super) fn learn_records(&self, chain: &Chain) {
        if let Some(inference) = &self.inference {
            inference.pipe.learn(records(chain));
        }
    }
}

fn records(chain: &Chain) -> impl Iterator<Item = &InferenceRecord> {
    chain.built_blocks(0, chain.head_number()).flat_map(|b| b.receipts.iter().flat_map(|r| r.inference.iter()))
}

fn model_error(e: InferenceError) -> NodeError {
    NodeError::InvalidParams(e.to_string())
}

#[cfg(test)]
mod tests {
    use alloy_rpc_types_eth::TransactionRequest;
    use nml_protocol::ModelId;

    use super::*;
    use crate::inference::{ModelInput, ModelOutput};

    /// Test double: knows no model.
    struct NoModels;

    impl Executor for NoModels {
        fn run(&self, model: &ModelId, _input: &ModelInput) -> Result<ModelOutput, InferenceError> {
            Err(InferenceError::Unavailable { reason: format!("no model {model}") })
        }
    }

    /// A batch's blob carries its leaves: the relay's gas grows with them.
    /// 1,024 is the most `nml devnet --batch-size` allows.
    #[test]
    fn the_largest_batch_fits_the_gas_the_relay_gives_it() {
        use crate::settlement::{Posting, batch_leaf, calldata, merkle::MerkleTree};

        let devnet = Devnet::with_inference(DevnetConfig::default(), InferenceSetup::new(Arc::new(NoModels))).unwrap();
        let relay = devnet.inference().unwrap().relay.address();
        let results: Vec<Attestation> = (0..1024u32)
            .map(|i| {
                let hash = alloy_primitives::keccak256(i.to_be_bytes());
                Attestation {
                    tee_id: hash,
                    input_hash: hash,
                    output_hash: hash,
                    timestamp: 1,
                    signature: vec![7; 256].into(),
                }
            })
            .collect();
        let leaves: Vec<B256> = results.iter().map(batch_leaf).collect();
        let posting = Posting::Batch { root: MerkleTree::new(&leaves).unwrap().root(), results };
        let request = TransactionRequest::default()
            .from(relay)
            .to(crate::predeploys::SETTLEMENT_RELAY)
            .input(calldata(&posting, relay).into());
        let needed = devnet.estimate_gas(request, None, None).unwrap();
        assert!(needed <= super::super::settlement::posting_gas(&posting), "{needed} gas");
    }

    #[test]
    fn the_mempool_status_counts_pending_and_queued_transactions() {
        let config = DevnetConfig { mining: crate::Mining::Manual, ..DevnetConfig::default() };
        let devnet = Devnet::with_inference(config, InferenceSetup::new(Arc::new(NoModels))).unwrap();
        let from = devnet.accounts()[0];
        // Two executable, and one behind the gap at nonce 2.
        for nonce in [0, 1, 3] {
            let request = TransactionRequest::default().from(from).to(from).nonce(nonce).gas_limit(21_000);
            devnet.send_transaction(request).unwrap();
        }
        let status = devnet.mempool_status().unwrap();
        assert_eq!((status.pending, status.queued), (2, 1));
        assert_eq!(devnet.pool_counts(), PoolCounts { pending: 2, queued: 1 });
        devnet.mine(None).unwrap();
        let status = devnet.mempool_status().unwrap();
        assert_eq!((status.pending, status.queued), (0, 1));
    }
}
