//! One module per section of `make bench`; each writes its fragment of `bench/results.md`.

pub mod coldstart;
pub mod copy;
pub mod fanout;
pub mod sweep;
pub mod tally;
