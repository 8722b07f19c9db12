//! Ports: what the domain needs from the outside world, as traits. Adapters implement them.

mod dispatcher;
mod job_store;
mod mailer;
mod object_store;

pub use dispatcher::{
    job_name, CopyPhase, CopyStatus, DispatchRequest, DispatchStatus, DispatchTarget, Dispatcher,
};
pub use job_store::JobStore;
pub use mailer::{Mail, Mailer};
pub use object_store::ObjectStore;
