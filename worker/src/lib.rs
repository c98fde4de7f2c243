//! worker (skeleton; see the crate description).
