//! Benchmark harness behind `make bench`.
//!
//! Each section (`bench/sections/<name>.sh`) measures one thing and writes a Markdown fragment to
//! `bench/out/<name>.md`; `scripts/bench.sh` puts the fragments together into
//! `bench/results.md`. Benchmarks live here, never in timed unit tests.

pub mod report;
