//! The password vault (scaffold).
