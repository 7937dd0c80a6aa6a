//! flareops: a GitOps reconciler for Cloudflare.
//!
//! The pipeline (see `docs/ARCHITECTURE.md`):
//! `manifest::load` -> [`model::DesiredState`]; `live::fetch` (through
//! [`cloudflare::Client`]) -> [`model::LiveState`]; `plan::plan` (pure) ->
//! [`plan::Plan`]; `render::*` (pure views); [`apply::run`] applies it (lock,
//! re-check, journal, ledger) through [`apply::execute`], which runs exactly
//! the plan. The `emulator` module is a local Cloudflare API that shares no
//! wire types with the client.

pub mod apply;
pub mod build;
pub mod cli;
pub mod cloudflare;
pub mod drift;
pub mod duration;
pub mod emulator;
pub mod import;
pub mod ledger;
pub mod live;
pub mod manifest;
pub mod model;
pub mod plan;
pub mod process;
pub mod render;
