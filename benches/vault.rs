//! vault benches (scaffold).
fn main() {}
