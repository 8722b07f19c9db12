//! In-memory adapters for fast unit tests of the domain. Never a substitute for the
//! integration tests against the emulator.

mod dispatcher;
mod mailer;
mod object_store;

pub use dispatcher::MemoryDispatcher;
pub use mailer::MemoryMailer;
pub use object_store::{MemoryObjectStore, ObjectStoreOp, ScriptedRestore, StoredObject};

mod job_store;

pub use job_store::MemoryJobStore;
