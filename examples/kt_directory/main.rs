//! Placeholder until the directory lands.
fn main() {}
