//! Tests of the verifier with a real akd directory.
