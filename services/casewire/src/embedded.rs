//! The embedded runtime: api, case-engine, automation, the SLA scheduler, projector, ws-publisher, notify-publisher and the
//! task worker in one process over
//! the SQLite adapters and the in-process bus.

use anyhow::Context;
use casewire_case_api::ApiServer;
use casewire_runtime::{Config, Platform};
use casewire_ws_publisher::WsServer;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Which services to run (tests turn some off).
#[derive(Debug, Clone, Copy)]
pub struct Services {
    pub engine: bool,
    pub projector: bool,
    pub ws: bool,
    pub notify: bool,
    /// The built-in task worker (`casewire.email`, `.http`, `.command`).
    pub worker: bool,
}

impl Default for Services {
    fn default() -> Self {
        Services {
            engine: true,
            projector: true,
            ws: true,
            notify: true,
            worker: true,
        }
    }
}

/// A running embedded platform.
#[derive(Debug)]
pub struct Embedded {
    pub api: ApiServer,
    /// The WebSocket publisher, unless turned off.
    pub ws: Option<WsServer>,
    pub platform: Platform,
    pub shutdown: CancellationToken,
    /// The services besides the API; each task yields its name with its end.
    tasks: JoinSet<(&'static str, anyhow::Result<()>)>,
}

/// Runs a service in `tasks`, so that its end names it.
fn spawn<F>(tasks: &mut JoinSet<(&'static str, anyhow::Result<()>)>, name: &'static str, service: F)
where
    F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    tasks.spawn(async move { (name, service.await) });
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

/// Starts the built-in API clients against this process's API (the task
/// worker, and the mailbox reader when a mailbox has an `imap_url`), if
/// they have a way to get tokens (a service account, or the dev issuer).
fn start_worker(
    tasks: &mut JoinSet<(&'static str, anyhow::Result<()>)>,
    platform: &Platform,
    api: &ApiServer,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let config = &platform.config;
    let Some(tokens) = crate::worker::tokens(config, api.dev_issuer.as_ref())? else {
        tracing::info!(
            "No service_account.token_url and no dev issuer: the built-in task worker and mailbox reader are off"
        );
        return Ok(());
    };
    let url = crate::worker::api_url(config, Some(&api.public_url));
    if config.email.ingest && config.email.mailboxes.iter().any(|m| m.imap_url.is_some()) {
        let reader = crate::worker::reader(config, &url, tokens.clone());
        spawn(
            tasks,
            "email-ingest",
            casewire_email_ingest::run(reader, config.email.mailboxes.clone(), shutdown.child_token()),
        );
    }
    if config.task_worker.enabled {
        let worker = crate::worker::worker(config, &url, tokens)?;
        spawn(
            tasks,
            "task-worker",
            casewire_task_worker::run(worker, shutdown.child_token()),
        );
    }
    Ok(())
}

impl Embedded {
    /// Opens the stores and starts the services. The embedded runtime is
    /// the dev runtime unless the config says otherwise.
    pub async fn start(mut config: Config, services: Services) -> anyhow::Result<Embedded> {
        config.mode.get_or_insert(casewire_runtime::Mode::Dev);
        let platform = Platform::open(config).await.context("opening the stores")?;
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        if services.engine {
            spawn(
                &mut tasks,
                "case-engine",
                casewire_case_engine::run(platform.clone(), shutdown.child_token()),
            );
            spawn(
                &mut tasks,
                "automation",
                casewire_case_engine::automation::run(platform.clone(), shutdown.child_token()),
            );
            if platform.config.sla.enabled {
                spawn(
                    &mut tasks,
                    "sla-scheduler",
                    casewire_case_engine::sla::run(platform.clone(), shutdown.child_token()),
                );
            }
        }
        if services.projector {
            spawn(
                &mut tasks,
                "projector",
                casewire_projector::run(platform.clone(), shutdown.child_token()),
            );
        }
        spawn(
            &mut tasks,
            "bus-retention",
            retention(platform.clone(), shutdown.child_token()),
        );
        let api = crate::portal::start_api(platform.clone(), shutdown.child_token()).await?;
        if services.notify {
            // Links point at the API as bound (port 0 picks one).
            let links = casewire_notify_publisher::link_base(&platform, Some(&api.public_url));
            let clock = std::sync::Arc::new(casewire_notify_publisher::SystemClock);
            spawn(
                &mut tasks,
                "notify-publisher",
                casewire_notify_publisher::run_with(platform.clone(), clock, links, shutdown.child_token()),
            );
        }
        if services.worker {
            start_worker(&mut tasks, &platform, &api, &shutdown)?;
        }
        // The API's verifier: the dev issuer's realms are known to it.
        let ws = if services.ws {
            let verifier = api.state.verifier.clone();
            Some(casewire_ws_publisher::start(platform.clone(), verifier, shutdown.child_token()).await?)
        } else {
            None
        };
        Ok(Embedded {
            api,
            ws,
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
        match self.tasks.join_next().await {
            Some(Ok((name, result))) => (name.to_owned(), result),
            // A panic loses the name with the task; say what is known.
            Some(Err(e)) => ("a service".to_owned(), Err(anyhow::anyhow!("task panicked: {e}"))),
            None => std::future::pending().await,
        }
    }

    /// Stops everything and waits for it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        while let Some(ended) = self.tasks.join_next().await {
            match ended {
                Ok((_, Ok(()))) => {}
                Ok((name, Err(e))) => tracing::warn!(service = name, error = %e, "Service stopped with an error"),
                Err(e) => tracing::warn!(error = %e, "Service task failed"),
            }
        }
        if let Some(ws) = self.ws
            && let Err(e) = ws.wait().await
        {
            tracing::warn!(error = %e, "The WebSocket publisher stopped with an error");
        }
        self.api.wait().await
    }
}
