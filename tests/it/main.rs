//! The one integration-test binary: drives the real `flareops` binary
//! against an emulator on an ephemeral loopback port.

mod action_install;
mod adopt;
mod bad_corpus;
mod build;
mod cli;
mod dns_records;
mod emulator_docs;
mod emulator_faults;
mod emulator_load;
mod envs;
mod fault_trials;
mod gitops;
mod history;
mod import;
mod init;
mod kill_trials;
mod ledger;
mod locks;
mod manifest_errors;
mod pages;
mod pages_kind;
mod python_sdk;
mod queue_kind;
mod queues;
mod readme_tour;
mod requests;
mod revert;
mod saved_plans;
mod scale;
mod schema;
mod seed_workflow;
mod support;
mod workers;
mod wrangler;
