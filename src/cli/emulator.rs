//! `flareops emulator`: serve the local Cloudflare API until stopped.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;

use super::{EmulatorArgs, Printer};
use crate::emulator::{self, FaultConfig};

/// The fault-injection flags of `flareops emulator` (see `crate::emulator::faults`).
#[derive(Debug, Args)]
#[command(next_help_heading = "Fault injection")]
pub struct FaultArgs {
    /// Fault injection, off by default and changeable at run time through
    /// `/__emulator/faults`: a JSON file with per-endpoint rules. The --fault-*
    /// and --rate-limit flags override the file's seed, default faults and rate limit.
    #[arg(long = "faults", value_name = "FILE.json")]
    pub file: Option<PathBuf>,
    /// Seed of the fault generator: the same seed and requests give the same faults
    /// [default: random, reported by GET /__emulator/faults].
    #[arg(long, value_name = "N")]
    pub fault_seed: Option<u64>,
    /// Share of requests failed, split evenly across 5xx, 429, reset and lost
    /// response (0.0..=1.0 or a percentage like 20%); the per-kind flags override their part.
    #[arg(long, value_name = "RATE", value_parser = crate::emulator::faults::parse_rate)]
    pub fault_rate: Option<f64>,
    /// Latency added to every request, in milliseconds.
    #[arg(long, value_name = "MS")]
    pub fault_latency_ms: Option<u64>,
    /// Extra latency drawn uniformly from 0..=MS per request.
    #[arg(long, value_name = "MS")]
    pub fault_jitter_ms: Option<u64>,
    /// Share of requests answered 500/502/503/504, not processed.
    #[arg(long = "fault-5xx-rate", value_name = "RATE", value_parser = crate::emulator::faults::parse_rate)]
    pub fault_5xx_rate: Option<f64>,
    /// Share of requests answered 429 with Retry-After, not processed.
    #[arg(long = "fault-429-rate", value_name = "RATE", value_parser = crate::emulator::faults::parse_rate)]
    pub fault_429_rate: Option<f64>,
    /// Retry-After of the injected 429s, in seconds [default: 1].
    #[arg(long, value_name = "SECS")]
    pub fault_retry_after: Option<u64>,
    /// Share of requests whose connection is reset before any response, not processed.
    #[arg(long, value_name = "RATE", value_parser = crate::emulator::faults::parse_rate)]
    pub fault_reset_rate: Option<f64>,
    /// Share of requests processed (writes committed) whose response is then lost
    /// (connection reset).
    #[arg(long, value_name = "RATE", value_parser = crate::emulator::faults::parse_rate)]
    pub fault_lost_response_rate: Option<f64>,
    /// Cloudflare's per-token rate limit: at most N requests per window, then 429 with
    /// Retry-After. Without a value, Cloudflare's 1200/300s.
    #[arg(long, value_name = "N/WINDOW", num_args = 0..=1, default_missing_value = "1200/300s")]
    pub rate_limit: Option<crate::emulator::RateLimit>,
    /// When the token expires (RFC 3339, e.g. 2020-01-01T00:00:00Z): token
    /// verification answers `expired` from then on, by the emulator's clock.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub token_expires_on: Option<time::OffsetDateTime>,
}

fn parse_time(text: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|error| format!("not an RFC 3339 time ({error}); e.g. 2020-01-01T00:00:00Z"))
}

pub async fn run(args: &EmulatorArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let token = match &args.token {
        Some(token) => token.clone(),
        None => match std::env::var("CLOUDFLARE_API_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
        {
            Some(token) => token,
            None => bail!(
                "the emulator needs a token that every request must carry\nhint: pass --token T or export CLOUDFLARE_API_TOKEN"
            ),
        },
    };
    if !args.listen.ip().is_loopback() {
        // Reachable from the network: its token must be one chosen for it,
        // never a Cloudflare token inherited from the environment.
        if args.token.is_none() {
            bail!(
                "refusing to listen on {}, which is not a loopback address, with the token from CLOUDFLARE_API_TOKEN\nhint: pass a token made for the emulator with --token, or listen on 127.0.0.1",
                args.listen
            );
        }
        printer.message(&format!(
            "warning: listening on {}, which is not a loopback address",
            args.listen
        ));
    }
    let config = emulator::Config {
        listen: args.listen,
        state_dir: args.state.clone(),
        token,
        account_id: args.account_id.clone(),
        zones: args.zones.clone(),
    };
    let faults = fault_config(&args.faults)?;
    let server = emulator::start_with_faults(config, faults)
        .await
        .with_context(|| {
            format!(
                "starting the emulator with state in {}",
                args.state.display()
            )
        })?;
    printer.data(&format!(
        "flareops emulator listening on {}\naccount id: {}\n",
        server.base_url(),
        args.account_id
    ));
    for zone in &args.zones {
        printer.data(&format!("zone: {zone} (id {})\n", emulator::zone_id(zone)));
    }
    server.set_token_expiry(args.faults.token_expires_on);
    let faults = server.fault_config();
    if !faults.is_noop() {
        printer.message(&format!(
            "fault injection on (seed {}); GET /__emulator/faults shows it, DELETE turns it off",
            faults.seed.unwrap_or_default()
        ));
    }
    wait_for_stop().await;
    server.shutdown().await;
    printer.message("flareops emulator stopped");
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// The fault configuration of the command line: `--faults FILE` if given, then each `--fault-*`
/// and `--rate-limit` flag given overriding its part (`--fault-rate` first, the per-kind rates
/// after it).
fn fault_config(args: &FaultArgs) -> anyhow::Result<FaultConfig> {
    let mut config = match &args.file {
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("reading the fault configuration {}", path.display()))?;
            FaultConfig::from_json(&bytes)
                .with_context(|| format!("in the fault configuration {}", path.display()))?
        }
        None => FaultConfig::default(),
    };
    if let Some(seed) = args.fault_seed {
        config.seed = Some(seed);
    }
    let default = &mut config.default;
    if let Some(rate) = args.fault_rate {
        default.split_rate(rate);
    }
    let overrides = [
        (args.fault_5xx_rate, &mut default.server_error_rate),
        (args.fault_429_rate, &mut default.too_many_requests_rate),
        (args.fault_reset_rate, &mut default.reset_rate),
        (
            args.fault_lost_response_rate,
            &mut default.lost_response_rate,
        ),
    ];
    for (flag, field) in overrides {
        if let Some(rate) = flag {
            *field = rate;
        }
    }
    if let Some(latency) = args.fault_latency_ms {
        default.latency_ms = latency;
    }
    if let Some(jitter) = args.fault_jitter_ms {
        default.jitter_ms = jitter;
    }
    if let Some(retry_after) = args.fault_retry_after {
        default.retry_after = retry_after;
    }
    if let Some(limit) = args.rate_limit {
        config.rate_limit = Some(limit);
    }
    config
        .validate()
        .context("invalid fault flags (see flareops emulator --help)")?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::cli::{Cli, Command};

    fn emulator_args(extra: &[&str]) -> Box<EmulatorArgs> {
        let argv = ["flareops", "emulator"].iter().chain(extra);
        match Cli::try_parse_from(argv).expect("arguments parse").command {
            Command::Emulator(args) => args,
            other => panic!("not the emulator command: {other:?}"),
        }
    }

    #[test]
    fn listens_on_loopback_and_injects_nothing_by_default() {
        let args = emulator_args(&[]);
        assert!(args.listen.ip().is_loopback(), "{}", args.listen);
        let config = fault_config(&args.faults).unwrap();
        assert!(config.is_noop(), "{config:?}");
        assert_eq!(config, FaultConfig::default());
    }

    #[test]
    fn fault_rate_splits_and_per_kind_flags_override() {
        let args = emulator_args(&[
            "--fault-seed",
            "7",
            "--fault-rate",
            "20%",
            "--fault-reset-rate",
            "0",
            "--fault-latency-ms",
            "5",
            "--fault-jitter-ms",
            "3",
            "--fault-retry-after",
            "2",
            "--rate-limit",
            "3/2s",
        ]);
        let config = fault_config(&args.faults).unwrap();
        assert_eq!(config.seed, Some(7));
        let default = &config.default;
        assert_eq!(default.server_error_rate, 0.05);
        assert_eq!(default.too_many_requests_rate, 0.05);
        assert_eq!(default.lost_response_rate, 0.05);
        assert_eq!(default.reset_rate, 0.0);
        assert_eq!((default.latency_ms, default.jitter_ms), (5, 3));
        assert_eq!(default.retry_after, 2);
        assert_eq!(
            config.rate_limit,
            Some(emulator::RateLimit {
                requests: 3,
                window_secs: 2
            })
        );
        let bare = emulator_args(&["--rate-limit"]);
        assert_eq!(
            fault_config(&bare.faults).unwrap().rate_limit,
            Some(emulator::faults::DEFAULT_RATE_LIMIT)
        );
    }

    #[test]
    fn bad_fault_flags_are_refused_with_the_field() {
        let argv = ["flareops", "emulator", "--fault-5xx-rate", "1.5"];
        let error = Cli::try_parse_from(argv).unwrap_err().to_string();
        assert!(error.contains("between 0.0 and 1.0"), "{error}");
        let argv = ["flareops", "emulator", "--rate-limit", "fast"];
        let error = Cli::try_parse_from(argv).unwrap_err().to_string();
        assert!(error.contains("REQUESTS/WINDOW"), "{error}");
        let args = emulator_args(&["--fault-5xx-rate", "0.7", "--fault-429-rate", "0.7"]);
        let error = format!("{:#}", fault_config(&args.faults).unwrap_err());
        assert!(error.contains("must not exceed 1.0"), "{error}");
    }

    #[test]
    fn a_faults_file_is_the_base_and_flags_override_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("faults.json");
        std::fs::write(
            &file,
            r#"{"seed": 1, "default": {"5xx_rate": 0.5},
                "rules": [{"method": "GET", "path": "/accounts", "faults": {"reset_rate": 1}}]}"#,
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let config =
            fault_config(&emulator_args(&["--faults", path, "--fault-seed", "9"]).faults).unwrap();
        assert_eq!(config.seed, Some(9));
        assert_eq!(config.default.server_error_rate, 0.5);
        assert_eq!(config.rules.len(), 1);
        std::fs::write(&file, r#"{"default": {"typo_rate": 1}}"#).unwrap();
        let error = format!(
            "{:#}",
            fault_config(&emulator_args(&["--faults", path]).faults).unwrap_err()
        );
        assert!(error.contains("faults.json"), "{error}");
        assert!(error.contains("unknown field `typo_rate`"), "{error}");
    }

    #[test]
    fn debug_never_shows_the_token() {
        let args = emulator_args(&["--token", "token-canary-9f2e"]);
        let shown = format!("{args:?}");
        assert!(!shown.contains("token-canary-9f2e"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
