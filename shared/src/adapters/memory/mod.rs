//! In-memory adapters for fast unit tests of the domain. Never a substitute for the
//! integration tests against the emulator.

mod job_store;

pub use job_store::MemoryJobStore;
