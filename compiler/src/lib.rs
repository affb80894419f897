//! The nml compiler.
