//! The nml devnet.
