//! Benchmarks: criterion benches and load harness binaries.
