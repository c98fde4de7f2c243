//! simulator (skeleton; see the crate description).
