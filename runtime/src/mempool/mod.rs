//! The mempool: the pending pool, the pre-execution stage and the block
//! builder. Transactions flow pool → [`PreExecution`] → [`BlockBuilder`] → chain.

mod builder;
pub mod pipe;
mod pool;

pub use builder::{
    BlockBuilder, Built, Head, Inclusion, InferenceWait, NoPreExecution, PreExecution, PreIncluded, Prepared,
    StageContext, Waker,
};
pub use pipe::{INFERENCE_PRECOMPILE, OnMiss, Pipe, PipeConfig, PipeStatus};
pub use pool::{Added, Pool, PoolContent, PoolCounts, REPLACEMENT_BUMP_PERCENT, Ready};
