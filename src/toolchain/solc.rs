//! solc provisioning (in progress).
