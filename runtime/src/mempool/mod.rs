//! The mempool: the pending pool, the pre-execution stage and the block
//! builder. Transactions flow pool → [`PreExecution`] → [`BlockBuilder`] → chain.

mod builder;
mod pool;

pub use builder::{BlockBuilder, Built, Inclusion, NoPreExecution, PreExecution, Prepared, StageContext};
pub use pool::{Added, Pool, PoolContent, REPLACEMENT_BUMP_PERCENT};
