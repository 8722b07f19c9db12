//! Domain rules. Nothing in here imports an AWS SDK type.

pub mod completion;
pub mod cost;
pub mod event;
pub mod fanout;
pub mod job;
pub mod manifest;
pub mod notification;
pub mod object;
pub mod path;
pub mod plan;
pub mod request;
pub mod state;
pub mod storage;
