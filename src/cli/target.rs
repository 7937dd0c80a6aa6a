//! Resolves where an environment's requests go: the embedded local account
//! (an in-process emulator on an ephemeral loopback port) or a real account
//! through `CLOUDFLARE_API_TOKEN`, `CLOUDFLARE_ACCOUNT_ID` and
//! `CLOUDFLARE_API_BASE_URL`.

use std::path::Path;

use anyhow::{Context, bail};

use crate::cloudflare::{
    Client, ClientConfig, DEFAULT_BASE_URL, Deadline, RateLimiter, Settings, Token,
};
use crate::emulator;
use crate::model::{AccountTarget, DesiredState};

/// What every environment of one run shares: the `FLAREOPS_*` settings,
/// one rate limit and one overall deadline (several environments of one
/// `plan`, drift's reads, do not each get a fresh quota or timeout).
/// Made once per process by `cli::run` and handed to every command.
#[derive(Debug, Clone)]
pub struct Session {
    settings: Settings,
    rate: RateLimiter,
    deadline: Option<Deadline>,
}

impl Session {
    /// Reads the settings from the process environment; the deadline
    /// starts now.
    pub fn from_env() -> anyhow::Result<Session> {
        let settings = Settings::from_vars(|name| std::env::var(name).ok())?;
        // The real account's defaults, with the settings applied.
        let config =
            ClientConfig::new(DEFAULT_BASE_URL, Token::new(""), "").with_settings(&settings);
        Ok(Session {
            rate: RateLimiter::new(config.rate_limit),
            deadline: config.deadline,
            settings,
        })
    }

    /// Connects to the account `desired` names (or the local one).
    /// The pace every client of this session keeps (`None`: off).
    pub fn rate_limit(&self) -> Option<crate::cloudflare::RateLimit> {
        self.rate.limit()
    }

    pub async fn connect(
        &self,
        root: &Path,
        desired: &DesiredState,
        local: bool,
    ) -> anyhow::Result<Target> {
        if local || desired.account == AccountTarget::Local {
            return self.local(root, desired).await;
        }
        let token = std::env::var("CLOUDFLARE_API_TOKEN")
            .ok()
            .filter(|t| !t.is_empty());
        let Some(token) = token else {
            bail!(
                "CLOUDFLARE_API_TOKEN is not set\nhint: export a token for the account of environment `{}`, or pass --local to use the embedded local account",
                desired.environment
            );
        };
        let account_id = match &desired.account {
            AccountTarget::Id(id) => id.clone(),
            _ => match std::env::var("CLOUDFLARE_ACCOUNT_ID")
                .ok()
                .filter(|a| !a.is_empty())
            {
                Some(id) => id,
                None => bail!(
                    "no account for environment `{}`\nhint: set `account_id:` in environments/{}.yaml or export CLOUDFLARE_ACCOUNT_ID",
                    desired.environment,
                    desired.environment
                ),
            },
        };
        let from_env = std::env::var("CLOUDFLARE_API_BASE_URL")
            .ok()
            .filter(|u| !u.is_empty());
        let set_by_env = from_env.is_some();
        let base_url = from_env.unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
        let mut config = ClientConfig::new(base_url, Token::new(token), account_id)
            .with_settings(&self.settings);
        config.deadline = self.deadline;
        let client = match Client::new(config) {
            Ok(client) => client,
            Err(error @ crate::cloudflare::ClientError::InvalidBaseUrl { .. }) if set_by_env => {
                return Err(anyhow::Error::new(error)
                    .context("CLOUDFLARE_API_BASE_URL is set to a URL flareops will not use"));
            }
            Err(error) => return Err(error.into()),
        }
        .with_rate_limiter(self.rate.clone());
        Ok(Target {
            client,
            local: None,
        })
    }

    async fn local(&self, root: &Path, desired: &DesiredState) -> anyhow::Result<Target> {
        let state_dir = root.join(".flareops").join("local");
        let token = uuid::Uuid::new_v4().simple().to_string();
        let config = emulator::Config {
            listen: ([127, 0, 0, 1], 0).into(),
            state_dir: state_dir.clone(),
            token: token.clone(),
            account_id: emulator::DEFAULT_ACCOUNT_ID.to_string(),
            // The local account has the environment's zone, so routes and
            // custom domains work without a real one.
            zones: desired.zone.iter().map(|z| z.name.clone()).collect(),
        };
        let server = emulator::start(config)
            .await
            .with_context(|| format!("starting the local account in {}", state_dir.display()))?;
        let mut config = ClientConfig::new(
            server.base_url(),
            Token::new(token),
            emulator::DEFAULT_ACCOUNT_ID,
        );
        // The local account has no API quota: no rate limit unless
        // FLAREOPS_RATE_LIMIT asks for one.
        config.rate_limit = None;
        let mut config = config.with_settings(&self.settings);
        config.deadline = self.deadline;
        let client = Client::new(config)?;
        Ok(Target {
            client,
            local: Some(server),
        })
    }
}

/// A client plus the local emulator it talks to, if any (kept alive here).
pub struct Target {
    pub client: Client,
    local: Option<emulator::Emulator>,
}

impl Target {
    /// Stops the local emulator, if one was started.
    pub async fn close(self) {
        if let Some(server) = self.local {
            server.shutdown().await;
        }
    }
}
