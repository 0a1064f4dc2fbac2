//! The embedded runtime: api, case-engine and projector in one process over
//! the SQLite adapters and the in-process bus.

use anyhow::Context;
use casewire_case_api::ApiServer;
use casewire_runtime::{Config, Platform};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Which services to run (tests turn some off).
#[derive(Debug, Clone, Copy)]
pub struct Services {
    pub engine: bool,
    pub projector: bool,
}

impl Default for Services {
    fn default() -> Self {
        Services {
            engine: true,
            projector: true,
        }
    }
}

/// A running embedded platform.
#[derive(Debug)]
pub struct Embedded {
    pub api: ApiServer,
    pub platform: Platform,
    pub shutdown: CancellationToken,
    tasks: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)>,
}

fn spawn<F>(name: &'static str, fut: F) -> (&'static str, JoinHandle<anyhow::Result<()>>)
where
    F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    (name, tokio::spawn(fut))
}

/// Prunes handled bus messages every minute, so the embedded bus file
/// does not grow without bound.
async fn retention(platform: Platform, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tick.tick() => match platform.bus.prune().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(messages = n, "Pruned handled bus messages"),
                Err(e) => tracing::warn!(error = %e, "Pruning the bus failed; will retry"),
            },
        }
    }
}

impl Embedded {
    /// Opens the stores and starts the services. The embedded runtime is
    /// the dev runtime unless the config says otherwise.
    pub async fn start(mut config: Config, services: Services) -> anyhow::Result<Embedded> {
        config.mode.get_or_insert(casewire_runtime::Mode::Dev);
        let platform = Platform::open(config).await.context("opening the stores")?;
        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();
        if services.engine {
            tasks.push(spawn(
                "case-engine",
                casewire_case_engine::run(platform.clone(), shutdown.child_token()),
            ));
        }
        if services.projector {
            tasks.push(spawn(
                "projector",
                casewire_projector::run(platform.clone(), shutdown.child_token()),
            ));
        }
        tasks.push(spawn(
            "bus-retention",
            retention(platform.clone(), shutdown.child_token()),
        ));
        let api = casewire_case_api::start(platform.clone(), shutdown.child_token()).await?;
        Ok(Embedded {
            api,
            platform,
            shutdown,
            tasks,
        })
    }

    /// The API's base URL.
    pub fn url(&self) -> String {
        self.api.public_url.clone()
    }

    /// The management base URL.
    pub fn management_url(&self) -> String {
        format!("http://{}", self.api.management_addr)
    }

    /// A dev token for a demo user.
    pub fn token(&self, user: &str) -> anyhow::Result<String> {
        let issuer = self.api.dev_issuer.as_ref().context("the dev issuer is off")?;
        Ok(issuer.token_for(user, 3600)?)
    }

    /// A client logged in as a demo user.
    pub fn client(&self, user: &str) -> anyhow::Result<crate::client::Client> {
        Ok(crate::client::Client::new(&self.url(), &self.token(user)?))
    }

    /// Resolves when any service stops; says which and why.
    pub async fn any_stopped(&mut self) -> (String, anyhow::Result<()>) {
        if self.tasks.is_empty() {
            std::future::pending::<()>().await;
        }
        let (i, result) = {
            let futures = self.tasks.iter_mut().map(|(_, h)| Box::pin(h));
            let (result, i, _) = futures::future::select_all(futures).await;
            (i, result)
        };
        let (name, _) = self.tasks.remove(i);
        (
            name.to_owned(),
            result.unwrap_or_else(|e| Err(anyhow::anyhow!("task panicked: {e}"))),
        )
    }

    /// Stops everything and waits for it.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        for (name, task) in self.tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(service = name, error = %e, "Service stopped with an error"),
                Err(e) => tracing::warn!(service = name, error = %e, "Service task failed"),
            }
        }
        self.api.wait().await
    }
}
