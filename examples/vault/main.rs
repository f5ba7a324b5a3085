//! The reference password vault (scaffold).
fn main() {}
