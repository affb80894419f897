//! x402 payments, as the reference clients speak them (version 2, schemes
//! `exact` and `upto` over Permit2): the terms a 402 offers, the payment a
//! client signs against them, the facilitator's checks before anything runs
//! (the EIP-712 signature, the terms, the Permit2 nonce, balance and
//! allowance, read from the chain), and settlement through x402's Permit2
//! proxy after the answer is ready — so a request whose backend fails is
//! never charged.
//!
//! The gateway is its own facilitator: it talks to the chain over JSON-RPC
//! like any client (the devnet, or any chain with the contracts of
//! `nml_runtime::predeploys::payments`).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use alloy_primitives::{Address, B256, Bytes, Signature, TxKind, U256, keccak256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{SolCall, SolValue};
use base64::Engine;
use nml_runtime::predeploys::payments::{
    IOPGToken, IPermit2, IX402ExactProxy, IX402UptoProxy, OPG_TOKEN, PERMIT2, X402_EXACT_PROXY, X402_UPTO_PROXY,
};
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::chain::{BLOCK_TIMESTAMP, ChainAccount, ChainError};

/// The header a 402 carries its terms in (base64 JSON).
pub const PAYMENT_REQUIRED: &str = "payment-required";
/// The header a version-2 client pays with.
pub const PAYMENT_SIGNATURE: &str = "payment-signature";
/// The header a version-1 client pays with.
pub const X_PAYMENT: &str = "x-payment";
/// The header of the settlement's answer.
pub const PAYMENT_RESPONSE: &str = "payment-response";
/// The header of the payment's settlement transaction.
pub const PROCESSING_HASH: &str = "x-processing-hash";

/// Seconds a signed payment must stay valid past the chain's time (as
/// x402's facilitators ask): the settlement's block may come that much later.
const DEADLINE_BUFFER: u64 = 6;

/// The gas a settlement may use (a proxy's `settle` uses about 90,000; a
/// settlement that reverts is caught by its receipt).
const SETTLE_GAS: u64 = 250_000;

/// An x402 scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// The signed amount is charged.
    Exact,
    /// Up to the signed amount is charged: what the answer cost.
    Upto,
}

impl Scheme {
    /// Its name in x402 messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Upto => "upto",
        }
    }

    fn proxy(self) -> Address {
        match self {
            Self::Exact => X402_EXACT_PROXY,
            Self::Upto => X402_UPTO_PROXY,
        }
    }

    fn witness_type(self) -> &'static str {
        match self {
            Self::Exact => "Witness(address to,uint256 validAfter)",
            Self::Upto => "Witness(address to,address facilitator,uint256 validAfter)",
        }
    }
}

/// What the gateway charges, in the token's smallest unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prices {
    /// Per request.
    pub per_request: U256,
    /// Per token of prompt and answer (`upto` only; `exact` charges `per_request`).
    pub per_token: U256,
    /// The most one request may cost: the amount `upto` asks to sign for.
    pub cap: U256,
}

/// How the gateway is paid.
#[derive(Debug, Clone)]
pub struct PaymentConfig {
    /// The chain's JSON-RPC URL.
    pub rpc_url: String,
    /// Its chain id (the network is `eip155:<id>`).
    pub chain_id: u64,
    /// The scheme offered.
    pub scheme: Scheme,
    /// The prices of every model not in `model_prices`.
    pub prices: Prices,
    /// Prices of their own, by model id (as the client names it, or the
    /// part after `provider/`).
    pub model_prices: BTreeMap<String, Prices>,
    /// Who is paid.
    pub pay_to: Address,
    /// The account that settles (pays the gas of settlement).
    pub facilitator: PrivateKeySigner,
    /// How long a signed payment may be valid, in seconds.
    pub max_timeout_seconds: u64,
}

/// Why a payment was refused: the reason code x402 clients know, and words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct PaymentError {
    /// x402's reason code.
    pub reason: &'static str,
    /// What was wrong.
    pub message: String,
}

fn refuse(reason: &'static str, message: impl Into<String>) -> PaymentError {
    PaymentError { reason, message: message.into() }
}

/// A Permit2 witness transfer as a payer signs it for x402.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permit {
    /// The scheme (it fixes the witness type and the spender).
    pub scheme: Scheme,
    /// The token.
    pub token: Address,
    /// The amount signed for (`upto`: the cap).
    pub cap: U256,
    /// The spender: the scheme's proxy.
    pub spender: Address,
    /// Permit2's unordered nonce.
    pub nonce: U256,
    /// The last second it may be used in.
    pub deadline: U256,
    /// Who is paid.
    pub to: Address,
    /// Who may settle (`upto`; zero for `exact`).
    pub facilitator: Address,
    /// The first second it may be used in.
    pub valid_after: U256,
}

impl Permit {
    /// The EIP-712 digest the payer signs on chain `chain_id`, as Permit2
    /// computes it.
    pub fn digest(&self, chain_id: u64) -> B256 {
        let domain = keccak256(
            (
                keccak256("EIP712Domain(string name,uint256 chainId,address verifyingContract)"),
                keccak256("Permit2"),
                U256::from(chain_id),
                PERMIT2,
            )
                .abi_encode(),
        );
        let permitted =
            keccak256((keccak256("TokenPermissions(address token,uint256 amount)"), self.token, self.cap).abi_encode());
        let witness_typehash = keccak256(self.scheme.witness_type());
        let witness = match self.scheme {
            Scheme::Exact => keccak256((witness_typehash, self.to, self.valid_after).abi_encode()),
            Scheme::Upto => keccak256((witness_typehash, self.to, self.facilitator, self.valid_after).abi_encode()),
        };
        let type_hash = keccak256(format!(
            "PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline,Witness witness)TokenPermissions(address token,uint256 amount){}",
            self.scheme.witness_type()
        ));
        let data = keccak256((type_hash, permitted, self.spender, self.nonce, self.deadline, witness).abi_encode());
        keccak256([&[0x19, 0x01], domain.as_slice(), data.as_slice()].concat())
    }
}

/// A payment that passed every check and waits for the answer to settle.
#[derive(Debug, Clone)]
pub struct Verified {
    payer: Address,
    permit: Permit,
    signature: Bytes,
}

impl Verified {
    /// Who pays.
    pub fn payer(&self) -> Address {
        self.payer
    }
}

/// A settled payment.
#[derive(Debug, Clone)]
pub struct Settled {
    /// The settlement transaction.
    pub transaction: B256,
    /// What was charged.
    pub amount: U256,
    /// Who paid.
    pub payer: Address,
    /// Whether the transaction is mined; a settlement the chain took but
    /// did not mine within a minute may still be, and is answered as
    /// settled (its payment stays held, so it cannot be used again).
    pub mined: bool,
}

/// The facilitator: checks payments, then settles them, one nonce at a time.
#[derive(Debug)]
pub struct Payments {
    config: PaymentConfig,
    /// Payments verified and not yet settled or released: the same signed
    /// payment is never accepted twice at once.
    in_flight: Mutex<HashSet<(Address, U256)>>,
    /// The facilitator's account, which reads the chain and settles.
    account: Arc<ChainAccount>,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

fn field<'a>(value: &'a Value, path: &[&str]) -> Result<&'a Value, PaymentError> {
    let mut at = value;
    for key in path {
        at =
            at.get(key).ok_or_else(|| refuse("invalid_payload", format!("the payment has no `{}`", path.join("."))))?;
    }
    Ok(at)
}

fn address_at(value: &Value, path: &[&str]) -> Result<Address, PaymentError> {
    let text = field(value, path)?.as_str().unwrap_or_default();
    text.parse().map_err(|_| refuse("invalid_payload", format!("`{}` is not an address: {text:?}", path.join("."))))
}

fn uint_at(value: &Value, path: &[&str]) -> Result<U256, PaymentError> {
    let v = field(value, path)?;
    let parsed = match v {
        Value::String(s) if s.starts_with("0x") => U256::from_str_radix(&s[2..], 16).ok(),
        Value::String(s) => U256::from_str_radix(s, 10).ok(),
        Value::Number(n) => n.as_u64().map(U256::from),
        _ => None,
    };
    parsed.ok_or_else(|| refuse("invalid_payload", format!("`{}` is not an unsigned integer", path.join("."))))
}

impl Payments {
    /// A facilitator for `config`.
    pub fn new(config: PaymentConfig) -> Self {
        let account = Arc::new(ChainAccount::new(config.rpc_url.clone(), config.chain_id, config.facilitator.clone()));
        Self { config, in_flight: Mutex::default(), account }
    }

    /// The configuration.
    pub fn config(&self) -> &PaymentConfig {
        &self.config
    }

    /// The facilitator's account on the chain (data settlement sends through it too).
    pub fn account(&self) -> &Arc<ChainAccount> {
        &self.account
    }

    fn network(&self) -> String {
        format!("eip155:{}", self.config.chain_id)
    }

    /// The prices of `model`: its own, or the gateway's (also for `None`:
    /// a call whose model is not to be known, the private path's).
    pub fn prices(&self, model: Option<&str>) -> &Prices {
        let own = |model: &str| {
            let short = model.split_once('/').map_or(model, |(_, name)| name);
            self.config.model_prices.get(model).or_else(|| self.config.model_prices.get(short))
        };
        model.and_then(own).unwrap_or(&self.config.prices)
    }

    /// The amount a client signs for to call `model`.
    fn amount(&self, model: Option<&str>) -> U256 {
        let prices = self.prices(model);
        match self.config.scheme {
            Scheme::Exact => prices.per_request,
            Scheme::Upto => prices.cap,
        }
    }

    /// The terms of a call of `model`, as an x402 `PaymentRequirements`.
    pub fn requirements(&self, model: Option<&str>) -> Value {
        let mut extra = json!({ "name": "OpenGradient", "version": "1", "assetTransferMethod": "permit2" });
        if self.config.scheme == Scheme::Upto {
            extra["facilitatorAddress"] = json!(self.config.facilitator.address());
        }
        json!({
            "scheme": self.config.scheme.name(),
            "network": self.network(),
            "asset": OPG_TOKEN,
            "amount": self.amount(model).to_string(),
            "payTo": self.config.pay_to,
            "maxTimeoutSeconds": self.config.max_timeout_seconds,
            "extra": extra,
        })
    }

    /// The body and the `PAYMENT-REQUIRED` header of a 402 for a call of
    /// `model` at `url`.
    pub fn payment_required(&self, url: &str, model: Option<&str>, error: &str) -> (Value, String) {
        let body = json!({
            "x402Version": 2,
            "error": error,
            "resource": { "url": url, "description": "an LLM call through nml's TEE gateway", "mimeType": "application/json" },
            "accepts": [self.requirements(model)],
        });
        let header = base64::engine::general_purpose::STANDARD.encode(body.to_string());
        (body, header)
    }

    /// Decodes and checks a payment header for a call of `model` (blocking:
    /// it reads the chain). On success the payment is held until
    /// [`Payments::settle`] or [`Payments::release`].
    pub fn verify(&self, header: &str, model: Option<&str>) -> Result<Verified, PaymentError> {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(header.trim())
            .map_err(|_| refuse("invalid_payload", "the payment header is not base64"))?;
        let payment: Value = serde_json::from_slice(&decoded)
            .map_err(|_| refuse("invalid_payload", "the payment header is not base64 JSON"))?;
        if !payment.is_object() {
            return Err(refuse("invalid_payload", "the payment is not a JSON object"));
        }
        let version = match payment.get("x402Version") {
            None => return Err(refuse("invalid_payload", "the payment has no `x402Version`")),
            Some(v) => v
                .as_u64()
                .filter(|v| *v == 1 || *v == 2)
                .ok_or_else(|| refuse("invalid_x402_version", format!("x402Version {v} is not 1 or 2")))?,
        };
        // Version 2 repeats the terms it accepted; version 1 names scheme and network.
        let (scheme, network) = match version {
            2 => {
                let accepted = field(&payment, &["accepted"])?;
                if !accepted.is_object() {
                    return Err(refuse("invalid_payload", "the payment's `accepted` is not an object"));
                }
                let ours = self.requirements(model);
                for key in ["asset", "payTo", "amount"] {
                    let Some(theirs) = accepted.get(key).and_then(Value::as_str) else {
                        return Err(refuse("invalid_payload", format!("the payment has no `accepted.{key}`")));
                    };
                    if !theirs.eq_ignore_ascii_case(ours[key].as_str().unwrap_or_default()) {
                        return Err(refuse(
                            "payment_requirements_mismatch",
                            format!("the payment accepts {key} {theirs}, but this gateway asks for {}", ours[key]),
                        ));
                    }
                }
                (field(accepted, &["scheme"])?.clone(), field(accepted, &["network"])?.clone())
            }
            _ => (field(&payment, &["scheme"])?.clone(), field(&payment, &["network"])?.clone()),
        };
        let scheme = Some(scheme);
        let network = Some(network);
        if scheme.as_ref().and_then(Value::as_str) != Some(self.config.scheme.name()) {
            return Err(refuse(
                "unsupported_scheme",
                format!("this gateway takes scheme {}", self.config.scheme.name()),
            ));
        }
        if network.as_ref().and_then(Value::as_str) != Some(self.network().as_str()) {
            return Err(refuse("network_mismatch", format!("this gateway is paid on {}", self.network())));
        }
        let inner = field(&payment, &["payload"])?;
        let auth = field(inner, &["permit2Authorization"])?;
        let signature: Bytes = field(inner, &["signature"])?
            .as_str()
            .and_then(|s| alloy_primitives::hex::decode(s).ok())
            .ok_or_else(|| refuse("invalid_payload", "the signature is not hex"))?
            .into();
        let permit = Permit {
            scheme: self.config.scheme,
            token: address_at(auth, &["permitted", "token"])?,
            cap: uint_at(auth, &["permitted", "amount"])?,
            spender: address_at(auth, &["spender"])?,
            nonce: uint_at(auth, &["nonce"])?,
            deadline: uint_at(auth, &["deadline"])?,
            to: address_at(auth, &["witness", "to"])?,
            facilitator: match self.config.scheme {
                Scheme::Exact => Address::ZERO,
                Scheme::Upto => address_at(auth, &["witness", "facilitator"])?,
            },
            valid_after: uint_at(auth, &["witness", "validAfter"])?,
        };
        let verified = Verified { payer: address_at(auth, &["from"])?, permit, signature };
        self.check_terms(&verified.permit, model)?;
        let digest = verified.permit.digest(self.config.chain_id);
        let signer = Signature::try_from(verified.signature.as_ref())
            .ok()
            .and_then(|s| s.recover_address_from_prehash(&digest).ok());
        if signer != Some(verified.payer) {
            return Err(refuse("invalid_permit2_signature", "the Permit2 signature is not the payer's"));
        }
        if !self.in_flight.lock().insert((verified.payer, verified.permit.nonce)) {
            return Err(refuse("permit2_nonce_in_use", "this payment is already being used by another request"));
        }
        if let Err(e) = self.check_chain(&verified) {
            self.release(&verified);
            return Err(e);
        }
        Ok(verified)
    }

    fn check_terms(&self, v: &Permit, model: Option<&str>) -> Result<(), PaymentError> {
        if v.token != OPG_TOKEN {
            return Err(refuse("invalid_permit2_token", format!("the permit is for token {}, not OPG", v.token)));
        }
        if v.cap != self.amount(model) {
            return Err(refuse(
                "invalid_permit2_amount",
                format!("the permit is for {} but this gateway asks for {}", v.cap, self.amount(model)),
            ));
        }
        if v.spender != self.config.scheme.proxy() {
            return Err(refuse(
                "invalid_permit2_spender",
                format!("the spender must be x402's {} proxy", v.scheme.name()),
            ));
        }
        if v.to != self.config.pay_to {
            return Err(refuse(
                "invalid_permit2_recipient",
                format!("the payment goes to {}, not {}", v.to, self.config.pay_to),
            ));
        }
        if v.scheme == Scheme::Upto && v.facilitator != self.config.facilitator.address() {
            return Err(refuse("invalid_permit2_facilitator", "the witness names another facilitator"));
        }
        Ok(())
    }

    /// The permit's time window against `chain_time`, the timestamp the
    /// settlement's block will have at the earliest (Permit2 and the proxy
    /// check `block.timestamp`, never a clock of ours): the deadline at
    /// least [`DEADLINE_BUFFER`] seconds after it, `validAfter` not after it.
    fn check_time(v: &Permit, chain_time: u64) -> Result<(), PaymentError> {
        let chain = U256::from(chain_time);
        if v.deadline < chain {
            return Err(refuse(
                "permit2_deadline_expired",
                format!(
                    "the payment expired: its deadline {} is {} s before the chain's time {chain_time}",
                    v.deadline,
                    chain - v.deadline
                ),
            ));
        }
        if v.deadline < chain + U256::from(DEADLINE_BUFFER) {
            return Err(refuse(
                "permit2_deadline_expired",
                format!(
                    "the payment's deadline {} is too close: {} s after the chain's time {chain_time}, and settlement needs at least {DEADLINE_BUFFER} s",
                    v.deadline,
                    v.deadline - chain
                ),
            ));
        }
        if v.valid_after > chain {
            return Err(refuse(
                "permit2_not_yet_valid",
                format!(
                    "the payment is valid only after {}, {} s after the chain's time {chain_time}",
                    v.valid_after,
                    v.valid_after - chain
                ),
            ));
        }
        Ok(())
    }

    /// The permit's time window against the chain's, nonce unused, balance
    /// and allowance enough: read from the chain's pending block, the one
    /// the settlement joins at the earliest. (The latest block's timestamp
    /// would lag: after `evm_increaseTime`, or simply seconds after the
    /// last block, the settlement's block is later than it.)
    fn check_chain(&self, v: &Verified) -> Result<(), PaymentError> {
        let word = v.permit.nonce >> 8;
        let bit = U256::from(1) << (v.permit.nonce & U256::from(0xff)).to::<usize>();
        // Four reads in one round trip.
        let unavailable = |e: ChainError| refuse("facilitator_unavailable", format!("cannot read the chain: {e}"));
        let reads = self
            .account
            .call_all(&[
                (TxKind::Create, BLOCK_TIMESTAMP.to_vec()),
                (PERMIT2.into(), IPermit2::nonceBitmapCall { owner: v.payer, word }.abi_encode()),
                (OPG_TOKEN.into(), IOPGToken::balanceOfCall { owner: v.payer }.abi_encode()),
                (OPG_TOKEN.into(), IOPGToken::allowanceCall { owner: v.payer, spender: PERMIT2 }.abi_encode()),
            ])
            .map_err(unavailable)?;
        let mut words = reads
            .into_iter()
            .map(|read| read.map(|out| U256::from_be_slice(out.get(..32).unwrap_or_default())).map_err(unavailable));
        let mut next = || words.next().unwrap_or_else(|| Err(refuse("facilitator_unavailable", "a read is missing")));
        let (time, bitmap, balance, allowance) = (next(), next(), next(), next());
        let time = time?;
        let time = u64::try_from(time)
            .map_err(|_| refuse("facilitator_unavailable", format!("the chain's time {time} is not a timestamp")))?;
        Self::check_time(&v.permit, time)?;
        if bitmap? & bit != U256::ZERO {
            return Err(refuse("permit2_nonce_used", "this payment was already settled"));
        }
        let (balance, allowance) = (balance?, allowance?);
        if balance < v.permit.cap {
            return Err(refuse(
                "insufficient_funds",
                format!("the payer holds {balance} OPG units, the payment needs {}", v.permit.cap),
            ));
        }
        if allowance < v.permit.cap {
            return Err(refuse(
                "permit2_allowance_required",
                format!(
                    "the payer allows Permit2 {allowance} OPG units, the payment needs {} (approve OPG to Permit2 first)",
                    v.permit.cap
                ),
            ));
        }
        Ok(())
    }

    /// Forgets a verified payment that will not be settled (the answer
    /// failed): nothing is charged and the client may use it again.
    pub fn release(&self, v: &Verified) {
        self.in_flight.lock().remove(&(v.payer, v.permit.nonce));
    }

    /// What a call of `model` with `tokens` tokens costs (`upto`; capped).
    pub fn charge(&self, model: Option<&str>, tokens: u64) -> U256 {
        let prices = self.prices(model);
        match self.config.scheme {
            Scheme::Exact => prices.per_request,
            Scheme::Upto => (prices.per_request + prices.per_token * U256::from(tokens)).min(prices.cap),
        }
    }

    /// Settles `v` for `amount` through the scheme's proxy and waits for the
    /// receipt (blocking). A settlement that failed leaves the payment
    /// unused (nothing moved); one mined spends its Permit2 nonce; one the
    /// chain took but has not mined keeps the payment held here.
    pub fn settle(&self, v: &Verified, amount: U256) -> Result<Settled, PaymentError> {
        let result = self.send_settlement(v, amount);
        if !matches!(result, Ok(Settled { mined: false, .. })) {
            self.release(v);
        }
        result
    }

    fn send_settlement(&self, v: &Verified, amount: U256) -> Result<Settled, PaymentError> {
        let p = &v.permit;
        let permit = IPermit2::PermitTransferFrom {
            permitted: IPermit2::TokenPermissions { token: p.token, amount: p.cap },
            nonce: p.nonce,
            deadline: p.deadline,
        };
        let (to, data) = match p.scheme {
            Scheme::Exact => (
                X402_EXACT_PROXY,
                IX402ExactProxy::settleCall {
                    permit,
                    owner: v.payer,
                    witness: IX402ExactProxy::Witness { to: p.to, validAfter: p.valid_after },
                    signature: v.signature.clone(),
                }
                .abi_encode(),
            ),
            Scheme::Upto => (
                X402_UPTO_PROXY,
                IX402UptoProxy::settleCall {
                    permit,
                    amount,
                    owner: v.payer,
                    witness: IX402UptoProxy::Witness {
                        to: p.to,
                        facilitator: p.facilitator,
                        validAfter: p.valid_after,
                    },
                    signature: v.signature.clone(),
                }
                .abi_encode(),
            ),
        };
        let (transaction, mined) = match self.account.send(to, data, SETTLE_GAS) {
            Ok(hash) => (hash, true),
            Err(ChainError::NotMined(hash)) => {
                tracing::warn!(%hash, "gateway: a settlement was not mined within a minute; the answer goes out");
                (hash, false)
            }
            Err(e) => return Err(refuse("settlement_failed", e.to_string())),
        };
        Ok(Settled { transaction, amount, payer: v.payer, mined })
    }

    /// The `PAYMENT-RESPONSE` header of a settled payment.
    pub fn payment_response(&self, settled: &Settled) -> String {
        let body = json!({
            "success": true,
            "transaction": settled.transaction,
            "network": self.network(),
            "payer": settled.payer,
            "amount": settled.amount.to_string(),
        });
        base64::engine::general_purpose::STANDARD.encode(body.to_string())
    }
}

/// What an x402 client sends for the terms `requirements` (one entry of a
/// 402's `accepts`) on chain `chain_id`: the `PAYMENT-SIGNATURE` header,
/// signed by `payer` with Permit2 nonce `nonce`. For Rust clients, tests and
/// benchmarks; the gateway never signs payments itself.
pub fn payment_header(
    payer: &PrivateKeySigner,
    chain_id: u64,
    requirements: &Value,
    nonce: U256,
) -> Result<String, PaymentError> {
    let scheme = match requirements["scheme"].as_str() {
        Some("exact") => Scheme::Exact,
        Some("upto") => Scheme::Upto,
        other => return Err(refuse("unsupported_scheme", format!("scheme {other:?}"))),
    };
    let now = now();
    let permit = Permit {
        scheme,
        token: address_at(requirements, &["asset"])?,
        cap: uint_at(requirements, &["amount"])?,
        spender: scheme.proxy(),
        nonce,
        deadline: U256::from(now + requirements["maxTimeoutSeconds"].as_u64().unwrap_or(300)),
        to: address_at(requirements, &["payTo"])?,
        facilitator: match scheme {
            Scheme::Exact => Address::ZERO,
            Scheme::Upto => address_at(requirements, &["extra", "facilitatorAddress"])?,
        },
        valid_after: U256::from(now.saturating_sub(600)),
    };
    let signature = payer
        .sign_hash_sync(&permit.digest(chain_id))
        .map_err(|e| refuse("invalid_payload", format!("signing: {e}")))?;
    let mut witness = json!({ "to": permit.to, "validAfter": permit.valid_after.to_string() });
    if scheme == Scheme::Upto {
        witness["facilitator"] = json!(permit.facilitator);
    }
    let payment = json!({
        "x402Version": 2,
        "accepted": requirements,
        "payload": {
            "permit2Authorization": {
                "from": payer.address(),
                "permitted": { "token": permit.token, "amount": permit.cap.to_string() },
                "spender": permit.spender,
                "nonce": permit.nonce.to_string(),
                "deadline": permit.deadline.to_string(),
                "witness": witness,
            },
            "signature": Bytes::from(signature.as_bytes().to_vec()),
        },
    });
    Ok(base64::engine::general_purpose::STANDARD.encode(payment.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A facilitator whose chain is never reached: what these payments
    /// are refused for is found before any read.
    fn payments() -> Payments {
        let price = U256::from(1_000);
        Payments::new(PaymentConfig {
            rpc_url: "http://127.0.0.1:1".into(),
            chain_id: 31337,
            scheme: Scheme::Exact,
            prices: Prices { per_request: price, per_token: U256::ZERO, cap: price },
            model_prices: BTreeMap::new(),
            pay_to: Address::repeat_byte(2),
            facilitator: PrivateKeySigner::random(),
            max_timeout_seconds: 300,
        })
    }

    #[test]
    fn a_malformed_payment_is_refused_with_x402s_code_and_plain_words() {
        let payments = payments();
        let refused = |payment: Value| {
            let header = base64::engine::general_purpose::STANDARD.encode(payment.to_string());
            payments.verify(&header, None).unwrap_err().to_string()
        };
        assert_eq!(refused(json!({"x402Version": 2})), "invalid_payload: the payment has no `accepted`");
        assert_eq!(
            refused(json!({"x402Version": 2, "accepted": null})),
            "invalid_payload: the payment's `accepted` is not an object"
        );
        assert_eq!(
            refused(json!({"x402Version": 2, "accepted": {"payTo": "0x"}})),
            "invalid_payload: the payment has no `accepted.asset`"
        );
        assert_eq!(refused(json!([1])), "invalid_payload: the payment is not a JSON object");
        assert_eq!(refused(json!({"accepted": {}})), "invalid_payload: the payment has no `x402Version`");
        assert_eq!(refused(json!({"x402Version": 3})), "invalid_x402_version: x402Version 3 is not 1 or 2");
        assert_eq!(refused(json!({"x402Version": "2"})), r#"invalid_x402_version: x402Version "2" is not 1 or 2"#);
    }
}
