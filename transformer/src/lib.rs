//! transformer (skeleton; see the crate description).
