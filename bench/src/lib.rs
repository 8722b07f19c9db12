//! Benchmark harness behind `make bench` (`scripts/bench.sh` builds it in release and runs
//! `restore-bench <section>` for each section; each writes `bench/out/<section>.md`, and the
//! script puts them together into `bench/results.md`). Benchmarks live here, never in timed
//! unit tests, and nothing here is linked into a Lambda binary.

pub mod proxy;
pub mod report;
pub mod runtime_fake;
pub mod s3_endpoint;
pub mod sections;
pub mod tools;
