//! `nml verify`: checks the attestations of a transaction's TEE inference
//! calls without running any model — the SDK's second step — against what a
//! chain says: the TEE registry for the enclave's key and state, the block's
//! time for the signature's freshness, and the settlement relay for the
//! settlement. Exits non-zero naming each check that failed.

use std::process::ExitCode;

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_sol_types::SolCall;
use miette::miette;
use nml_runtime::predeploys::{ISettlementRelay, ITEERegistry, SETTLEMENT_RELAY, TEE_REGISTRY};
use nml_runtime::settlement::batch_leaf;
use nml_runtime::tee::{Attestation, message_hash, verify_rsa_pss};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use nml_runtime::rpc_client;

use super::common::devnet_error;

/// The oldest a signature may be when its result is used.
const MAX_AGE: u64 = 3600;
/// How far ahead of its block a signature may be.
const MAX_AHEAD: u64 = 300;

/// Arguments of `nml verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The transaction whose inference calls to verify.
    pub tx: B256,
    /// The chain's JSON-RPC endpoint.
    #[arg(long, default_value = "http://127.0.0.1:8545")]
    pub rpc_url: String,
    /// Print the checks as JSON.
    #[arg(long)]
    pub json: bool,
}

/// One check of one call.
#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    ok: bool,
    detail: String,
}

/// What `nml_getAttestations` answers for one call.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Attested {
    request_id: B256,
    model: String,
    #[serde(flatten)]
    attestation: Attestation,
    settlement: Option<SettlementView>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SettlementView {
    status: String,
    mode: String,
    merkle_root: Option<B256>,
    #[serde(default)]
    proof: Vec<B256>,
}

/// Runs `nml verify`.
pub fn run(args: VerifyArgs) -> miette::Result<ExitCode> {
    let url = &args.rpc_url;
    let rpc = |method: &str, params: Value| rpc_client::call(url, method, params).map_err(devnet_error);
    let calls = rpc("nml_getAttestations", json!([args.tx]))?;
    if calls.is_null() {
        return Err(miette!("transaction {} is not mined on {url}", args.tx));
    }
    let calls: Vec<Attested> =
        serde_json::from_value(calls).map_err(|e| miette!("the node sent malformed attestations: {e}"))?;
    let records = rpc("nml_getInferenceReceipts", json!([args.tx]))?;
    let outputs: Vec<(B256, Bytes)> = records
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let id = serde_json::from_value(r["requestId"].clone()).ok()?;
            let raw = serde_json::from_value(r["rawOutput"].clone()).ok()?;
            Some((id, raw))
        })
        .collect();
    let receipt = rpc("eth_getTransactionReceipt", json!([args.tx]))?;
    let block = rpc("eth_getBlockByNumber", json!([receipt["blockNumber"], false]))?;
    let mined_at = hex_u64(&block["timestamp"]).ok_or_else(|| miette!("the node sent a block without a timestamp"))?;
    let view = |to: Address, data: Vec<u8>| -> miette::Result<Bytes> {
        let out = rpc("eth_call", json!([{ "to": to, "data": Bytes::from(data) }, "latest"]))?;
        serde_json::from_value(out).map_err(|e| miette!("bad eth_call answer: {e}"))
    };
    let mut report = Vec::new();
    let mut failed = false;
    for call in &calls {
        let returned = outputs.iter().find(|(id, _)| *id == call.request_id).map(|(_, raw)| raw);
        let checks = check_call(call, returned, mined_at, &view)?;
        failed |= checks.iter().any(|c| !c.ok);
        report.push((call, checks));
    }
    if args.json {
        let out: Vec<Value> = report
            .iter()
            .map(|(call, checks)| json!({ "requestId": call.request_id, "model": call.model, "teeId": call.attestation.tee_id, "checks": checks }))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "tx": args.tx, "calls": out, "ok": !failed })).unwrap_or_default()
        );
    } else {
        if calls.is_empty() {
            println!("{}: no TEE-attested inference call", args.tx);
        }
        for (call, checks) in &report {
            println!("call {} ({}) by TEE {}", call.request_id, call.model, call.attestation.tee_id);
            for check in checks {
                println!("  {} {:<10} {}", if check.ok { "ok  " } else { "FAIL" }, check.name, check.detail);
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// `eth_call` of `data` to an address, at the latest block.
type View<'a> = &'a dyn Fn(Address, Vec<u8>) -> miette::Result<Bytes>;

/// Calls a view of the contract at `to` and decodes its answer.
fn query<C: SolCall>(view: View<'_>, to: Address, call: C) -> miette::Result<C::Return> {
    C::abi_decode_returns(&view(to, call.abi_encode())?)
        .map_err(|e| miette!("the contract at {to} answered something unexpected: {e}"))
}

fn hex_u64(value: &Value) -> Option<u64> {
    u64::from_str_radix(value.as_str()?.trim_start_matches("0x"), 16).ok()
}

fn check_call(call: &Attested, returned: Option<&Bytes>, mined_at: u64, view: View<'_>) -> miette::Result<Vec<Check>> {
    let a = &call.attestation;
    let tee = query(view, TEE_REGISTRY, ITEERegistry::getTEECall { teeId: a.tee_id })?;
    let mut checks = Vec::new();
    checks.push(Check {
        name: "input",
        ok: a.input_hash == call.request_id,
        detail: "inputHash is the request id (keccak256 of the ABI-encoded request)".into(),
    });
    let output_ok = returned.is_some_and(|raw| keccak256(raw) == a.output_hash);
    checks.push(Check {
        name: "output",
        ok: output_ok,
        detail: if output_ok {
            "outputHash is keccak256 of the output the contract received".into()
        } else {
            "outputHash is not the hash of the output the contract received".into()
        },
    });
    let registered = tee.registeredAt != U256::ZERO;
    checks.push(Check {
        name: "registered",
        ok: registered,
        detail: if registered {
            format!("in the TEE registry since {}", tee.registeredAt)
        } else {
            "not in the TEE registry".into()
        },
    });
    let message = message_hash(a.input_hash, a.output_hash, a.timestamp);
    let signed = registered && verify_rsa_pss(&tee.publicKey, message, &a.signature);
    checks.push(Check {
        name: "signature",
        ok: signed,
        detail: if signed {
            "RSA-PSS by the registered key verifies".into()
        } else {
            "RSA-PSS does not verify with the registered key".into()
        },
    });
    let fresh = a.timestamp.saturating_add(MAX_AGE) >= mined_at && a.timestamp <= mined_at.saturating_add(MAX_AHEAD);
    checks.push(Check {
        name: "timestamp",
        ok: fresh,
        detail: format!("signed at {}, used in a block of {mined_at} (window: 1 h old, 5 min ahead)", a.timestamp),
    });
    checks.push(Check {
        name: "enabled",
        ok: tee.enabled,
        detail: if tee.enabled { "enabled".into() } else { "disabled in the registry".into() },
    });
    let active = query(view, TEE_REGISTRY, ITEERegistry::isTEEActiveCall { teeId: a.tee_id })?;
    checks.push(Check {
        name: "active",
        ok: active,
        detail: if active {
            format!("heartbeat at {}", tee.lastHeartbeatAt)
        } else {
            format!("no heartbeat since {}", tee.lastHeartbeatAt)
        },
    });
    let image = query(view, TEE_REGISTRY, ITEERegistry::approvedPCRsCall { pcrHash: tee.pcrHash })?;
    checks.push(Check {
        name: "pcr",
        ok: image.approved && !image.revoked,
        detail: format!(
            "image {} {}",
            tee.pcrHash,
            if image.revoked {
                "revoked"
            } else if image.approved {
                "approved"
            } else {
                "not approved"
            }
        ),
    });
    checks.push(settlement_check(call, view)?);
    Ok(checks)
}

fn settlement_check(call: &Attested, view: View<'_>) -> miette::Result<Check> {
    let a = &call.attestation;
    let Some(s) = &call.settlement else {
        let detail = "unknown to this node (used before it started)".into();
        return Ok(Check { name: "settlement", ok: false, detail });
    };
    let (ok, detail) = match (s.status.as_str(), s.mode.as_str()) {
        ("private", _) => (true, "private: nothing is posted, by the client's choice".to_owned()),
        ("settled", "individual") => {
            let record = ISettlementRelay::isSettledCall {
                teeId: a.tee_id,
                inputHash: a.input_hash,
                outputHash: a.output_hash,
                timestamp: U256::from(a.timestamp),
            };
            let on_chain = query(view, SETTLEMENT_RELAY, record)?;
            (on_chain, if on_chain { "record on the relay".into() } else { "no record on the relay".into() })
        }
        ("settled", _) => {
            let root = s.merkle_root.unwrap_or_default();
            let proof = ISettlementRelay::isSettledInBatchCall { proof: s.proof.clone(), root, leaf: batch_leaf(a) };
            let on_chain = query(view, SETTLEMENT_RELAY, proof)?;
            let detail = if on_chain {
                format!("leaf proven against settled root {root}")
            } else {
                format!("proof fails against root {root}")
            };
            (on_chain, detail)
        }
        ("missed", _) => (
            false,
            "missed: due before the loaded chain's head, never settled on it; this relay will not post it".into(),
        ),
        (status, _) => (false, format!("{status}: not settled yet (the trust gap is open)")),
    };
    Ok(Check { name: "settlement", ok, detail })
}
