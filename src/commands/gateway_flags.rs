//! What `nml gateway` and `nml devnet --gateway` share: the payment flags,
//! the facilitator they make, and the banner (docs/gateway.md).

use std::collections::BTreeMap;
use std::sync::Arc;

use alloy_primitives::{Address, U256};
use miette::miette;
use nml_gateway::chain::ChainAccount;
use nml_gateway::{DataSettlement, GatewayConfig, PaymentConfig, Payments, Prices, Scheme};
use nml_runtime::chain::dev_accounts;

use super::common::key_or_dev_account;
use nml_runtime::predeploys::{payment_address, payments};
use nml_runtime::rpc_client;
use nml_runtime::tee::Enclave;
use serde_json::json;

/// x402 payments (docs/gateway.md). Each flag overrides its key of the
/// project's `[gateway]` table.
#[derive(Debug, Clone, clap::Args)]
pub struct PaymentArgs {
    /// Ask for x402 payments: the price of one request, in OPG (e.g. `0.01`);
    /// needs a chain (`--rpc-url`, or the devnet of `--gateway`).
    #[arg(long, value_name = "OPG")]
    pub price: Option<String>,
    /// The price of one token of prompt and answer, in OPG (`upto` only;
    /// default 0).
    #[arg(long, value_name = "OPG")]
    pub price_per_token: Option<String>,
    /// The most one request may cost, in OPG: what `upto` asks to sign for
    /// (default 0.1).
    #[arg(long, value_name = "OPG")]
    pub cap: Option<String>,
    /// The x402 scheme offered (default upto).
    #[arg(long, value_enum)]
    pub scheme: Option<SchemeArg>,
    /// Who is paid (default: the signing enclave's payment address in the registry).
    #[arg(long, value_name = "ADDRESS")]
    pub pay_to: Option<Address>,
    /// The environment variable holding the key of the account that settles
    /// payments (default: the devnet's dev account 9).
    #[arg(long, value_name = "VAR")]
    pub facilitator_key_env: Option<String>,
}

/// A project's `[gateway]` table: the gateway's prices, and prices of
/// their own for some models (`[gateway.models."<model id>"]`).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayTable {
    /// `price`: OPG per request.
    pub price: Option<String>,
    /// `price_per_token`: OPG per token (`upto`).
    pub price_per_token: Option<String>,
    /// `cap`: the most one request may cost (`upto`).
    pub cap: Option<String>,
    /// `scheme`: `upto` or `exact`.
    pub scheme: Option<SchemeArg>,
    /// `pay_to`: who is paid.
    pub pay_to: Option<Address>,
    /// `[gateway.models."<id>"]`: a model's own prices; a key left out is
    /// the gateway's.
    #[serde(default)]
    pub models: BTreeMap<String, ModelPrices>,
}

/// `[gateway.models."<id>"]`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrices {
    /// OPG per request.
    pub price: Option<String>,
    /// OPG per token (`upto`).
    pub price_per_token: Option<String>,
    /// The most one request may cost (`upto`).
    pub cap: Option<String>,
}

impl GatewayTable {
    /// Parses the table.
    pub fn from_toml(table: Option<&toml::Table>) -> miette::Result<Option<Self>> {
        table.map(|t| t.clone().try_into::<Self>().map_err(|e| miette!("nml.toml [gateway]: {e}"))).transpose()
    }
}

/// The default cap of `upto`: 0.1 OPG, as OpenGradient's gateway asks.
const DEFAULT_CAP: U256 = U256::from_limbs([100_000_000_000_000_000, 0, 0, 0]);

/// Answers per Merkle batch of data settlement.
const BATCH_SIZE: usize = 20;

/// `--scheme`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchemeArg {
    /// The signed amount is charged.
    Exact,
    /// Up to the signed amount is charged: what the request cost.
    Upto,
}

/// `amount` OPG (a decimal number) in the token's smallest unit (18 decimals).
fn opg(flag: &str, amount: &str) -> miette::Result<U256> {
    let bad = || miette!("{flag} {amount:?} is not an amount of OPG (like 0.01)");
    let (whole, fraction) = amount.trim().split_once('.').unwrap_or((amount.trim(), ""));
    if fraction.len() > 18 || (whole.is_empty() && fraction.is_empty()) {
        return Err(bad());
    }
    let digits = format!("{whole}{fraction:0<18}");
    U256::from_str_radix(&digits, 10).map_err(|_| bad())
}

/// What the gateway does on its chain: take payments, settle data.
#[derive(Debug, Default)]
pub struct OnChain {
    /// x402 payments, with `--price`.
    pub payments: Option<Arc<Payments>>,
    /// Data settlement on the relay.
    pub settlement: Option<Arc<DataSettlement>>,
    /// The gateway's account on the chain (the facilitator's), which
    /// settles and sends the enclave's heartbeats.
    pub account: Option<Arc<ChainAccount>>,
}

impl PaymentArgs {
    /// The gateway's work on the chain at `rpc_url` (blocking): payments
    /// when `--price` asks (the chain must have the payment contracts), and
    /// data settlement on the relay through the same account (granted the
    /// relay role by the devnet's dev account 0 when it lacks it; off, with
    /// a warning, where that fails).
    pub fn on_chain(&self, rpc_url: &str, enclave: &Enclave, table: Option<&GatewayTable>) -> miette::Result<OnChain> {
        let table = table.cloned().unwrap_or_default();
        if self.price.is_none() && table.price.is_none() && !table.models.is_empty() {
            return Err(miette!(
                help = "set `price` in [gateway] (or pass --price): models priced apart need a gateway that asks to be paid",
                "nml.toml prices models in [gateway.models] but asks no price"
            ));
        }
        let chain_id = rpc_client::call(rpc_url, "eth_chainId", json!([])).map_err(|e| miette!("{rpc_url}: {e}"))?;
        let chain_id = chain_id
            .as_str()
            .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
            .ok_or_else(|| miette!("{rpc_url}: eth_chainId answered {chain_id}"))?;
        let facilitator = key_or_dev_account("--facilitator-key-env", self.facilitator_key_env.as_deref(), 9)?;
        let payments = match self.price.as_ref().or(table.price.as_ref()) {
            Some(price) => {
                let code = rpc_client::call(rpc_url, "eth_getCode", json!([payments::OPG_TOKEN, "latest"]))
                    .map_err(|e| miette!("{rpc_url}: {e}"))?;
                if code.as_str().is_none_or(|c| c.len() <= 2) {
                    return Err(miette!(
                        help = "start the chain with `nml devnet` (which predeploys them)",
                        "the chain at {rpc_url} has no OPG token at {}: payments need it, Permit2 and x402's proxies",
                        payments::OPG_TOKEN
                    ));
                }
                let per_token = self.price_per_token.as_ref().or(table.price_per_token.as_ref());
                let cap = self.cap.as_ref().or(table.cap.as_ref());
                let prices = Prices {
                    per_request: opg("price", price)?,
                    per_token: per_token.map_or(Ok(U256::ZERO), |p| opg("price_per_token", p))?,
                    cap: cap.map_or(Ok(DEFAULT_CAP), |c| opg("cap", c))?,
                };
                let mut model_prices = BTreeMap::new();
                for (model, own) in &table.models {
                    let named = |key: &str| format!("[gateway.models.\"{model}\"] {key}");
                    let own = Prices {
                        per_request: own.price.as_ref().map_or(Ok(prices.per_request), |p| opg(&named("price"), p))?,
                        per_token: own
                            .price_per_token
                            .as_ref()
                            .map_or(Ok(prices.per_token), |p| opg(&named("price_per_token"), p))?,
                        cap: own.cap.as_ref().map_or(Ok(prices.cap), |c| opg(&named("cap"), c))?,
                    };
                    model_prices.insert(model.clone(), own);
                }
                let config = PaymentConfig {
                    rpc_url: rpc_url.to_owned(),
                    chain_id,
                    scheme: match self.scheme.or(table.scheme).unwrap_or(SchemeArg::Upto) {
                        SchemeArg::Exact => Scheme::Exact,
                        SchemeArg::Upto => Scheme::Upto,
                    },
                    prices,
                    model_prices,
                    pay_to: self.pay_to.or(table.pay_to).unwrap_or_else(|| payment_address(enclave.id())),
                    facilitator: facilitator.clone(),
                    max_timeout_seconds: 300,
                };
                Some(Arc::new(Payments::new(config)))
            }
            None => None,
        };
        let account = match &payments {
            Some(p) => Arc::clone(p.account()),
            None => Arc::new(ChainAccount::new(rpc_url.to_owned(), chain_id, facilitator)),
        };
        let admin = dev_accounts(1).first().map(|a| a.address);
        let settlement = match DataSettlement::connect(Arc::clone(&account), admin, BATCH_SIZE) {
            Ok(settlement) => Some(Arc::new(settlement)),
            Err(e) => {
                eprintln!("warning: data settlement is off: {e}");
                None
            }
        };
        Ok(OnChain { payments, settlement, account: Some(account) })
    }
}

/// The banner line that says how the gateway is paid.
pub fn payments_line(payments: Option<&Payments>) -> String {
    match payments {
        Some(p) => {
            let c = p.config();
            format!(
                "Payments: x402 {} on eip155:{} in OPG, {} units a request (cap {}){}, paid to {}, settled by {}",
                c.scheme.name(),
                c.chain_id,
                c.prices.per_request,
                c.prices.cap,
                match c.model_prices.len() {
                    0 => String::new(),
                    n => format!(", {n} model(s) priced apart"),
                },
                c.pay_to,
                c.facilitator.address()
            )
        }
        None => "Payments: none asked (every request is answered free)".to_owned(),
    }
}

/// What a starting gateway says about itself (before its address).
pub fn banner(config: &GatewayConfig) -> String {
    format!(
        "LLM calls: {}\nSigning enclave: {} (GET /signing-key)\n{}\nData settlement: {}",
        config.backend.describe(),
        config.enclave.id(),
        payments_line(config.payments.as_deref()),
        if config.settlement.is_some() {
            "on the settlement relay (X-SETTLEMENT-TYPE: batch by default, individual, private)"
        } else {
            "none (no chain)"
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> miette::Result<Option<GatewayTable>> {
        GatewayTable::from_toml(Some(&text.parse::<toml::Table>().expect("toml")))
    }

    #[test]
    fn the_gateway_table_reads_prices_and_models_priced_apart() {
        let parsed = table(
            "scheme = \"exact\"\nprice = \"0.002\"\n[models.\"claude-haiku-4-5\"]\nprice = \"0.003\"\ncap = \"1\"\n",
        )
        .expect("parses")
        .expect("a table");
        assert_eq!(parsed.scheme, Some(SchemeArg::Exact));
        assert_eq!(parsed.price.as_deref(), Some("0.002"));
        let own = &parsed.models["claude-haiku-4-5"];
        assert_eq!(
            (own.price.as_deref(), own.cap.as_deref(), own.price_per_token.as_deref()),
            (Some("0.003"), Some("1"), None)
        );
        assert_eq!(opg("price", "0.003").expect("an amount"), U256::from(3_000_000_000_000_000u64));
        assert_eq!(DEFAULT_CAP, opg("cap", "0.1").expect("an amount"));
    }

    #[test]
    fn a_key_the_table_does_not_have_is_an_error_that_names_it() {
        let e = table("prices = \"1\"\n").expect_err("refused").to_string();
        assert!(e.contains("[gateway]") && e.contains("prices"), "{e}");
        let e = table("scheme = \"later\"\n").expect_err("refused").to_string();
        assert!(e.contains("later"), "{e}");
    }
}
