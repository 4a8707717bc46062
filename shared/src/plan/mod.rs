//! Pure decisions: no I/O, no async, no clock. Everything here is unit-tested without AWS.

pub mod alerting;
pub mod backup;
pub mod copy;
pub mod lag;
pub mod promotion;
pub mod recovery;
pub mod retention;
pub mod select;
pub mod verify;
