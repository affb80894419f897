//! Price-history inference (the precompile at 0x…F5 that OpenGradient's
//! workflow contracts call): "take these price candles and run this model on
//! them as input `inputName`". This room turns such a query into the model
//! request it stands for; the mempool then serves that request like any other.
//!
//! The call, as the SDK's `PriceHistoryInference` contract makes it, is
//! selector [`PRICE_HISTORY_SELECTOR`] (`0xa192a0f9`; the public material
//! does not name the function) over `(string modelId, string inputName,
//! HistoricalInputQuery query)`, answered with the model's `ModelOutput` as
//! `runModelInference` returns it ([`PriceHistoryCall`]).
//!
//! Candles come from a [`PriceFeed`]: 1-minute candles per pair, aggregated
//! into the query's duration (open of the first, close of the last, highest
//! high, lowest low, summed volume), the last `total_candles` that closed at
//! or before the block's time, in the query's order. Each candle gives the
//! query's candle types in order (HIGH = 0, LOW = 1, OPEN = 2, CLOSE = 3,
//! VOLUME = 4), so the input is `total_candles × types` numbers, shaped to the
//! model's input (its fixed dimensions, and the one dynamic dimension, if
//! any, taking the rest).

use std::collections::BTreeMap;
use std::path::Path;

use nml_protocol::Dim;
use serde::Deserialize;

use super::abi::{ModelInferenceRequest, ModelInput, MultiDimensionalNumberTensor, Number};
use super::tensor::ModelSignature;

alloy_sol_types::sol! {
    /// What the workflow contract asks for.
    #[derive(Debug, PartialEq, Eq, Hash)]
    struct HistoricalInputQuery {
        string base;
        string quote;
        uint32 total_candles;
        uint32 candle_duration_in_mins;
        /// ASCENDING = 0, DESCENDING = 1.
        uint8 order;
        /// HIGH = 0, LOW = 1, OPEN = 2, CLOSE = 3, VOLUME = 4.
        uint8[] candle_types;
    }
}

/// The selector of price-history inference at 0x…F5.
pub const PRICE_HISTORY_SELECTOR: [u8; 4] = [0xa1, 0x92, 0xa0, 0xf9];

/// A decoded call to 0x…F5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceHistoryCall {
    /// The model to run.
    pub model_id: String,
    /// The model input the candles go to.
    pub input_name: String,
    /// Which candles.
    pub query: HistoricalInputQuery,
}

impl PriceHistoryCall {
    /// Decodes calldata, or says why it is not a price-history call.
    pub fn decode(calldata: &[u8]) -> Result<Self, String> {
        let args = calldata
            .strip_prefix(PRICE_HISTORY_SELECTOR.as_slice())
            .ok_or("price history: unknown selector (0x…F5 serves 0xa192a0f9)")?;
        let (model_id, input_name, query) =
            <(String, String, HistoricalInputQuery) as alloy_sol_types::SolValue>::abi_decode_params(args)
                .map_err(|e| format!("price history: cannot decode the arguments: {e}"))?;
        Ok(Self { model_id, input_name, query })
    }

    /// The calldata of this call.
    pub fn encode(&self) -> Vec<u8> {
        let args = (self.model_id.clone(), self.input_name.clone(), self.query.clone());
        [PRICE_HISTORY_SELECTOR.as_slice(), &alloy_sol_types::SolValue::abi_encode_params(&args)].concat()
    }
}

/// The most candles one query may ask for.
pub const MAX_CANDLES: u32 = 10_000;

/// Decimals of the candle values handed to the model.
pub const CANDLE_DECIMALS: i128 = 8;

/// One 1-minute candle.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Candle {
    /// Its opening time, unix seconds (a multiple of 60).
    pub time: u64,
    /// Opening price.
    pub open: f64,
    /// Highest price.
    pub high: f64,
    /// Lowest price.
    pub low: f64,
    /// Closing price.
    pub close: f64,
    /// Traded volume.
    pub volume: f64,
}

/// Where candles come from.
#[derive(Debug, Clone)]
pub enum PriceFeed {
    /// A built-in, deterministic, clearly synthetic feed for tests and
    /// demos: smooth daily and hourly waves around a base price per pair
    /// (ETH/USD 2,000, BTC/USD 60,000, SOL/USD 150, OPG/USD 1).
    Synthetic,
    /// 1-minute candles per pair (`"ETH/USD"`), read from a file.
    File(BTreeMap<String, Vec<Candle>>),
}

/// A feed file: `{"pairs": {"ETH/USD": [{"time", "open", "high", "low", "close", "volume"}, ...]}}`,
/// 1-minute candles, any order.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedFile {
    pairs: BTreeMap<String, Vec<Candle>>,
}

impl PriceFeed {
    /// Reads a feed file (see [`PriceFeed::File`]).
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let file: FeedFile = serde_json::from_str(&text).map_err(|e| {
            format!("{} is not a price feed ({{\"pairs\": {{\"ETH/USD\": [candles]}}}}): {e}", path.display())
        })?;
        let mut pairs = BTreeMap::new();
        for (pair, mut candles) in file.pairs {
            candles.sort_by_key(|c| c.time);
            pairs.insert(pair.to_uppercase(), candles);
        }
        Ok(Self::File(pairs))
    }

    /// The 1-minute candle of `pair` that opens at `time`, if the feed has it.
    fn minute(&self, pair: &str, time: u64) -> Option<Candle> {
        match self {
            Self::Synthetic => synthetic(pair, time),
            Self::File(pairs) => {
                let candles = pairs.get(pair)?;
                candles.binary_search_by_key(&time, |c| c.time).ok().map(|i| candles[i])
            }
        }
    }

    /// Whether the feed knows `pair` at all.
    fn knows(&self, pair: &str) -> bool {
        match self {
            Self::Synthetic => synthetic(pair, 0).is_some(),
            Self::File(pairs) => pairs.contains_key(pair),
        }
    }
}

fn synthetic(pair: &str, time: u64) -> Option<Candle> {
    let base = match pair {
        "ETH/USD" => 2_000.0,
        "BTC/USD" => 60_000.0,
        "SOL/USD" => 150.0,
        "OPG/USD" => 1.0,
        _ => return None,
    };
    let price = |t: f64| {
        let day = (t / 86_400.0 * std::f64::consts::TAU).sin();
        let hour = (t / 3_600.0 * std::f64::consts::TAU).sin();
        base * (1.0 + 0.05 * day + 0.01 * hour)
    };
    let t = time as f64;
    let (open, close) = (price(t), price(t + 60.0));
    let mid = price(t + 30.0);
    let high = open.max(close).max(mid) * 1.0005;
    let low = open.min(close).min(mid) * 0.9995;
    let volume = 1_000.0 * (1.5 + (t / 7_200.0 * std::f64::consts::TAU).cos());
    Some(Candle { time, open, high, low, close, volume })
}

/// The model request a price-history query stands for at chain time `now`,
/// shaped for the model's `signature` (when the executor knows the model),
/// or why the query cannot be served.
pub fn request_for(
    call: &PriceHistoryCall,
    feed: &PriceFeed,
    now: u64,
    signature: Option<&ModelSignature>,
) -> Result<ModelInferenceRequest, String> {
    let query = &call.query;
    let pair = format!("{}/{}", query.base.to_uppercase(), query.quote.to_uppercase());
    if !feed.knows(&pair) {
        return Err(format!("price history: the feed has no pair {pair}"));
    }
    if query.total_candles == 0 || query.total_candles > MAX_CANDLES {
        return Err(format!("price history: total_candles is {}, expected 1..={MAX_CANDLES}", query.total_candles));
    }
    if query.candle_duration_in_mins == 0 {
        return Err("price history: candle_duration_in_mins is 0".to_owned());
    }
    if query.candle_types.is_empty() || query.candle_types.iter().any(|&t| t > 4) {
        return Err(
            "price history: candle_types must be HIGH = 0, LOW = 1, OPEN = 2, CLOSE = 3 or VOLUME = 4".to_owned()
        );
    }
    if query.order > 1 {
        return Err(format!("price history: order {} is not ASCENDING = 0 or DESCENDING = 1", query.order));
    }
    let span = u64::from(query.candle_duration_in_mins) * 60;
    // The last candle closes at or before `now`.
    let last_open = (now / 60 * 60).saturating_sub(span);
    let mut candles = Vec::with_capacity(query.total_candles as usize);
    for k in (0..u64::from(query.total_candles)).rev() {
        let start = last_open.checked_sub(k * span).ok_or("price history: the candles start before time 0")?;
        let minutes: Vec<Candle> = (0..u64::from(query.candle_duration_in_mins))
            .map(|m| feed.minute(&pair, start + m * 60))
            .collect::<Option<_>>()
            .ok_or_else(|| format!("price history: the feed has no {pair} candles for {start}..{}", start + span))?;
        candles.push(aggregate(&minutes));
    }
    if query.order == 1 {
        candles.reverse();
    }
    let values: Vec<Number> = candles
        .iter()
        .flat_map(|c| {
            query.candle_types.iter().map(move |&t| match t {
                0 => c.high,
                1 => c.low,
                2 => c.open,
                3 => c.close,
                _ => c.volume,
            })
        })
        .map(|v| Number { value: (v * 10f64.powi(CANDLE_DECIMALS as i32)).round() as i128, decimals: CANDLE_DECIMALS })
        .collect();
    let shape = shape_for(call, values.len(), query, signature)?;
    Ok(ModelInferenceRequest {
        mode: 0,
        modelCID: call.model_id.clone(),
        input: ModelInput {
            numbers: vec![MultiDimensionalNumberTensor { name: call.input_name.clone(), values, shape }],
            strings: vec![],
        },
    })
}

fn aggregate(minutes: &[Candle]) -> Candle {
    Candle {
        time: minutes[0].time,
        open: minutes[0].open,
        close: minutes[minutes.len() - 1].close,
        high: minutes.iter().map(|c| c.high).fold(f64::MIN, f64::max),
        low: minutes.iter().map(|c| c.low).fold(f64::MAX, f64::min),
        volume: minutes.iter().map(|c| c.volume).sum(),
    }
}

/// `[total_candles, types]`, or the model's input shape filled with `count`.
fn shape_for(
    call: &PriceHistoryCall,
    count: usize,
    query: &HistoricalInputQuery,
    signature: Option<&ModelSignature>,
) -> Result<Vec<u32>, String> {
    let natural = vec![query.total_candles, query.candle_types.len() as u32];
    let Some(spec) = signature.and_then(|s| s.inputs.iter().find(|i| i.name == call.input_name)) else {
        return Ok(natural);
    };
    let misfit = || {
        format!(
            "price history: {} candles × {} values do not fit input `{}` of model `{}` ({})",
            query.total_candles,
            query.candle_types.len(),
            spec.name,
            call.model_id,
            spec.type_and_shape()
        )
    };
    let fixed: u64 = spec.shape.iter().filter_map(|d| if let Dim::Fixed(n) = d { Some(*n) } else { None }).product();
    let dynamic = spec.shape.iter().filter(|d| matches!(d, Dim::Symbolic(_))).count();
    let count = count as u64;
    let rest = match dynamic {
        0 if fixed == count => 0,
        1 if fixed > 0 && count.is_multiple_of(fixed) => count / fixed,
        _ => return Err(misfit()),
    };
    spec.shape
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => u32::try_from(*n).map_err(|_| misfit()),
            Dim::Symbolic(_) => u32::try_from(rest).map_err(|_| misfit()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::tensor::TensorSpec;
    use nml_protocol::ElementType;

    fn call(candles: u32, minutes: u32, order: u8, types: Vec<u8>) -> PriceHistoryCall {
        PriceHistoryCall {
            model_id: "m".into(),
            input_name: "x".into(),
            query: HistoricalInputQuery {
                base: "eth".into(),
                quote: "usd".into(),
                total_candles: candles,
                candle_duration_in_mins: minutes,
                order,
                candle_types: types,
            },
        }
    }

    #[test]
    fn calls_round_trip_and_other_selectors_are_refused() {
        let c = call(3, 5, 1, vec![0, 3]);
        assert_eq!(PriceHistoryCall::decode(&c.encode()), Ok(c));
        assert!(PriceHistoryCall::decode(&[0, 0, 0, 0]).unwrap_err().contains("unknown selector"));
        assert!(PriceHistoryCall::decode(&PRICE_HISTORY_SELECTOR).unwrap_err().contains("cannot decode"));
    }

    #[test]
    fn candles_aggregate_and_order() {
        let now = 1_700_000_000;
        let up = request_for(&call(3, 5, 0, vec![2, 3]), &PriceFeed::Synthetic, now, None).unwrap();
        let down = request_for(&call(3, 5, 1, vec![2, 3]), &PriceFeed::Synthetic, now, None).unwrap();
        let values = |r: &ModelInferenceRequest| r.input.numbers[0].values.iter().map(|n| n.value).collect::<Vec<_>>();
        assert_eq!(up.input.numbers[0].shape, [3, 2]);
        let (a, b) = (values(&up), values(&down));
        assert_eq!(a.chunks(2).rev().flatten().copied().collect::<Vec<_>>(), b);
        // A candle's close is the next candle's open (the feed is continuous).
        assert_eq!(a[1], a[2]);
        // The last candle closed at or before `now`.
        let last_close = synthetic("ETH/USD", now / 60 * 60 - 60).unwrap().close;
        assert_eq!(a[5], (last_close * 1e8).round() as i128);
    }

    #[test]
    fn bad_queries_are_named() {
        let feed = PriceFeed::Synthetic;
        let mut unknown = call(3, 5, 0, vec![3]);
        unknown.query.base = "DOGE".into();
        assert!(request_for(&unknown, &feed, 1_000_000, None).unwrap_err().contains("no pair DOGE/USD"));
        assert!(
            request_for(&call(0, 5, 0, vec![3]), &feed, 1_000_000, None).unwrap_err().contains("total_candles is 0")
        );
        assert!(request_for(&call(3, 0, 0, vec![3]), &feed, 1_000_000, None).unwrap_err().contains("is 0"));
        assert!(request_for(&call(3, 5, 0, vec![9]), &feed, 1_000_000, None).is_err());
        let spec =
            TensorSpec { name: "x".into(), element: ElementType::Float32, shape: vec![Dim::Fixed(1), Dim::Fixed(4)] };
        let signature = ModelSignature { inputs: vec![spec], outputs: vec![] };
        let err = request_for(&call(3, 5, 0, vec![3]), &feed, 1_000_000, Some(&signature)).unwrap_err();
        assert!(err.contains("3 candles × 1 values do not fit input `x`"), "{err}");
        let fits = request_for(&call(4, 5, 0, vec![3]), &feed, 1_000_000, Some(&signature)).unwrap();
        assert_eq!(fits.input.numbers[0].shape, [1, 4]);
    }
}
