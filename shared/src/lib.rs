//! drpilot's common crate: settings, pure DR decisions, small ports, and their AWS adapters.
//! Each function under `functions/` is a thin `main.rs` over this crate.

pub mod accounts;
pub mod aws;
pub mod backup;
pub mod config;
pub mod copier;
pub mod dashboard;
pub mod error;
pub mod events;
pub mod lagcheck;
pub mod lambda;
pub mod model;
pub mod notice;
pub mod permissions;
pub mod plan;
pub mod ports;
pub mod promoter;
pub mod state;
pub mod statuspage;
pub mod table;
pub mod verifier;

pub use error::{Error, Result};
