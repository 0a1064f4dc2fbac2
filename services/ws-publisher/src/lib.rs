//! ws-publisher: pushes the events of the cases a caller may see over a
//! WebSocket (`GET /api/v1/ws`), judged by the same policy as the REST API
//! when each event is sent, resumable from a position with no gap and no
//! duplicate.
//!
//! # Layout
//! - [`protocol`]: the messages and close codes.
//! - [`hub`]: one reader of the event log per process, fanned out to every
//!   socket through a bounded queue each.
//! - [`socket`]: one connection — upgrade, authentication, subscriptions,
//!   resume, heartbeats, limits.

pub mod hub;
pub mod protocol;
pub mod socket;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use casewire_application::{AccessCache, CaseCache};
use casewire_oidc::JwksVerifier;
use casewire_runtime::Platform;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::hub::Hub;
use crate::socket::Shared;

/// A running publisher.
#[derive(Debug)]
pub struct WsServer {
    pub addr: SocketAddr,
    /// Where clients connect: `ws.public_url`, else `ws://<bound address>`,
    /// with the path.
    pub url: String,
    pub shared: Arc<Shared>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl WsServer {
    /// Waits until the server and its hub have stopped.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("WebSocket publisher task failed")?
    }
}

/// Binds `ws.bind` and serves sockets, verifying tokens with `verifier`
/// (the API's, in the embedded runtime, so the dev issuer's tokens pass).
pub async fn start(
    platform: Platform,
    verifier: JwksVerifier,
    shutdown: CancellationToken,
) -> anyhow::Result<WsServer> {
    let cfg = platform.config.clone();
    casewire_runtime::management::recorder();
    let listener = TcpListener::bind(cfg.ws.bind)
        .await
        .with_context(|| format!("binding the WebSocket publisher to {}", cfg.ws.bind))?;
    let addr = listener.local_addr()?;
    let base = cfg
        .ws
        .public_url
        .clone()
        .unwrap_or_else(|| format!("ws://{addr}"))
        .trim_end_matches('/')
        .to_owned();
    let position = platform.events.head().await.context("reading the event log's head")?;
    let shared = Arc::new(Shared {
        policy: platform.policy(&shutdown)?,
        verifier,
        access: AccessCache::default(),
        cases: Arc::new(CaseCache::default()),
        hub: Arc::new(Hub::new(position, cfg.ws.buffer)),
        config: cfg.ws.clone(),
        shutdown: shutdown.clone(),
        open: Default::default(),
        per_principal: Default::default(),
        platform: platform.clone(),
    });
    let tail = tokio::spawn(hub::tail(
        platform.clone(),
        shared.hub.clone(),
        shared.cases.clone(),
        Duration::from_millis(cfg.stream.poll_ms.max(1)),
        shutdown.clone(),
    ));
    tokio::spawn(hub::notifications(
        platform.clone(),
        shared.hub.clone(),
        shutdown.clone(),
    ));
    let task = tokio::spawn(accept(listener, shared.clone(), shutdown, tail));
    tracing::info!(ws = %addr, position, "WebSocket publisher listening");
    Ok(WsServer {
        addr,
        url: format!("{base}{}", socket::PATH),
        shared,
        task,
    })
}

async fn accept(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tail: JoinHandle<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let mut sockets = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    sockets.spawn(socket::serve(shared.clone(), stream));
                }
                // Out of descriptors and the like: wait, do not spin.
                Err(e) => {
                    tracing::warn!(error = %e, "Accepting a WebSocket connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = sockets.join_next(), if !sockets.is_empty() => {}
        }
    }
    // Sockets see the same token and close with 1001; give them a moment.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while sockets.join_next().await.is_some() {}
    })
    .await;
    tail.await.context("the WebSocket hub failed")?
}

/// `casewire serve ws-publisher` (the binary serves the management port):
/// the publisher until `shutdown`, trusting the configured issuers.
pub async fn run(platform: Platform, shutdown: CancellationToken) -> anyhow::Result<()> {
    let cfg = platform.config.clone();
    let api_url = cfg
        .api
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", cfg.api.bind));
    let (_, verifier) = casewire_runtime::identity::verifier(&cfg, &api_url)?;
    let server = start(platform, verifier, shutdown).await?;
    println!("WebSocket   {}", server.url);
    server.wait().await
}
