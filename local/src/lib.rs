//! Library half of `restore-local`, so its loops are testable against the emulator.

pub mod events;
pub mod pipeline;
