//! Pure decisions: no I/O, no async, no clock. Everything here is unit-tested without AWS.

pub mod copy;
pub mod retention;
pub mod select;
