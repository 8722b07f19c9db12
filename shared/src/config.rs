//! Configuration from the environment (DESIGN §7). TODO
