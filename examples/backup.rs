//! Backup example (scaffold).
fn main() {}
