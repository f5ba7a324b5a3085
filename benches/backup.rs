//! backup benches (scaffold).
fn main() {}
