//! Placeholder until the kt benches land.
fn main() {}
