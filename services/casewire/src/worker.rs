//! Wiring of the built-in API clients (the task worker, the mailbox
//! reader): where their tokens come from (a service account, or in dev the
//! dev issuer) and which API they talk to.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use casewire_camunda::client::ClientCredentials;
use casewire_camunda::{ClientError, ExternalTaskClient, TokenSource};
use casewire_oidc::dev::DevIssuer;
use casewire_runtime::Config;
use casewire_task_worker::Worker;

/// How long the dev issuer's tokens for the worker live.
const DEV_TOKEN_SECS: i64 = 900;

/// Tokens the dev issuer signs for a demo user, renewed before they lapse.
#[derive(Debug)]
pub struct DevTokens {
    issuer: DevIssuer,
    user: String,
    cached: Mutex<Option<(String, Instant)>>,
}

impl DevTokens {
    pub fn new(issuer: DevIssuer, user: &str) -> Self {
        DevTokens {
            issuer,
            user: user.to_owned(),
            cached: Mutex::new(None),
        }
    }
}

#[async_trait::async_trait]
impl TokenSource for DevTokens {
    async fn token(&self) -> Result<String, ClientError> {
        let mut cached = self.cached.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let token = self
            .issuer
            .token_for(&self.user, DEV_TOKEN_SECS)
            .map_err(|e| ClientError::Token(e.to_string()))?;
        let renew = Duration::from_secs(u64::try_from(DEV_TOKEN_SECS / 2).unwrap_or(60));
        *cached = Some((token.clone(), Instant::now() + renew));
        Ok(token)
    }

    fn invalidate(&self) {
        *self.cached.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

/// The built-in clients' tokens: the service account of
/// `service_account.token_url`, else (dev) the dev issuer for
/// `service_account.dev_user`; `None` when neither is there.
pub fn tokens(config: &Config, dev: Option<&DevIssuer>) -> anyhow::Result<Option<Arc<dyn TokenSource>>> {
    let cfg = &config.service_account;
    if let Some(url) = &cfg.token_url {
        let secret = cfg
            .client_secret
            .as_ref()
            .context("service_account.token_url is set but service_account.client_secret is not")?;
        return Ok(Some(Arc::new(ClientCredentials::new(
            url,
            &cfg.client_id,
            secret.expose(),
        ))));
    }
    if let Some(dev) = dev {
        anyhow::ensure!(
            DevIssuer::user(&cfg.dev_user).is_some(),
            "service_account.dev_user '{}' is no demo user",
            cfg.dev_user
        );
        return Ok(Some(Arc::new(DevTokens::new(dev.clone(), &cfg.dev_user))));
    }
    Ok(None)
}

/// The API the built-in clients talk to: `service_account.api_url`, else `bound` (the
/// API of this process), else the API's public URL or bind address.
pub fn api_url(config: &Config, bound: Option<&str>) -> String {
    config
        .service_account
        .api_url
        .clone()
        .or_else(|| bound.map(str::to_owned))
        .or_else(|| config.api.public_url.clone())
        .unwrap_or_else(|| format!("http://{}", config.api.bind))
}

/// A worker for `api` with `tokens`.
pub fn worker(config: &Config, api: &str, tokens: Arc<dyn TokenSource>) -> anyhow::Result<Arc<Worker>> {
    let client = ExternalTaskClient::new(api, tokens);
    Ok(Arc::new(Worker::new(
        client,
        config.task_worker.clone(),
        config.notify.clone(),
    )?))
}

/// A mailbox reader for `api` with `tokens`.
pub fn reader(config: &Config, api: &str, tokens: Arc<dyn TokenSource>) -> Arc<casewire_email_ingest::Reader> {
    Arc::new(casewire_email_ingest::Reader {
        client: ExternalTaskClient::new(api, tokens),
        data_dir: config.data_dir.clone(),
        poll: Duration::from_secs(config.email.poll_secs.max(1)),
        idle: config.email.idle,
    })
}
