//! `casewire`: the single binary. Without arguments it is `casewire dev`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use casewire::embedded::{Embedded, Services};
use casewire_oidc::DevIssuer;
use casewire_runtime::{Config, Mode, Platform, telemetry};
use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(name = "casewire", version, about = "Event-sourced case management")]
struct Cli {
    /// A TOML config file (default: ./casewire.toml when present).
    #[arg(long, global = true, env = "CASEWIRE_CONFIG")]
    config: Option<PathBuf>,
    /// Where the embedded runtime keeps its data (overrides data_dir).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Where events and read models live: sqlite://<path> or
    /// mongodb://host:port[/database] (sets store.events and store.read).
    #[arg(long, global = true, value_name = "URL")]
    store: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole platform in one process with demo data (the default).
    Dev {
        /// API port; 0 picks free ports for the API and the management endpoint.
        #[arg(long)]
        port: Option<u16>,
        /// Do not create demo cases on the first start.
        #[arg(long)]
        no_demo: bool,
        /// The bus: kafka://host:port to run against Kafka (default: the embedded bus).
        #[arg(long)]
        bus: Option<String>,
    },
    /// Run one service on its own.
    Serve {
        #[arg(value_enum)]
        service: Service,
    },
    /// Print a dev-issuer token for a demo user.
    Token {
        /// alice, bob or carol.
        user: String,
    },
    /// Rebuild the read models from the event store. Stop the projector first.
    Replay {
        /// Which projection (only `cases` so far).
        #[arg(default_value = "cases")]
        projection: String,
    },
    /// Manage case definitions.
    Definitions {
        #[command(subcommand)]
        command: DefinitionsCommand,
    },
    /// Measure end-to-end throughput and latency against a raw store baseline.
    Bench(casewire::bench::BenchArgs),
    /// Rego policies: run their tests, measure their cost.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Whether the service on this host is ready: exit 0 when its
    /// management port answers /health/ready with 200, else 1. For
    /// container health checks (the image has no shell and no curl).
    Health {
        /// Default: http://<management.bind>/health/ready (0.0.0.0 as 127.0.0.1).
        #[arg(long)]
        url: Option<String>,
    },
    /// Operators' tasks.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create what the services need and may lack the rights to create: the
    /// Kafka topics, the MongoDB collections and indexes, the S3 buckets.
    /// Idempotent: what exists is left alone, a second run creates nothing.
    Init {
        /// A tenant whose bucket to create when storage.url has
        /// tenant_buckets=true (repeatable; the configured issuers'
        /// tenants, and in dev mode the demo tenants, are added).
        #[arg(long = "tenant", value_name = "TENANT")]
        tenants: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Run every test_* rule of the *.rego files below DIR; exit 1 if any fails.
    Test {
        #[arg(long, default_value = "policies")]
        dir: PathBuf,
    },
    /// Measure decisions and list filters per second on one thread.
    Bench {
        #[arg(long, default_value = "policies")]
        dir: PathBuf,
        #[arg(long, default_value_t = 20_000)]
        decisions: u32,
    },
}

#[derive(Debug, Subcommand)]
enum DefinitionsCommand {
    /// Import every *.yaml, *.yml and *.json file of a directory (each as a new version).
    Import { dir: PathBuf },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Service {
    CaseApi,
    /// The files API alone (`/api/v1/files`) and its sweeper.
    StorageApi,
    CaseEngine,
    Projector,
    /// The WebSocket publisher (`GET /api/v1/ws`).
    WsPublisher,
    /// Notifications: in-app, e-mail, webhooks.
    NotifyPublisher,
    /// The definitions' automation rules: events in, commands out.
    Automation,
    /// Records SLA warnings and breaches as the cases' clocks reach them.
    SlaScheduler,
    /// The built-in external-task worker (`casewire.email`, `casewire.http`,
    /// `casewire.command`), a client of the Case API.
    TaskWorker,
    /// The IMAP mailbox reader, a client of the inbound webhook.
    EmailIngest,
    /// The case portal alone, a client of the case API at portal.api_url
    /// (case-api serves it too unless portal.enabled = false).
    Portal,
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(dir) = &cli.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(url) = &cli.store {
        config.store.set_url(url);
    }
    Ok(config)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// A long-running process's startup banner. It must not die because
/// whoever read the banner closed the pipe (`casewire dev | head -1`, a
/// test that reads the first line): `println!` panics on a broken pipe,
/// so the banner's write errors are ignored.
macro_rules! banner {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

fn runtime_file(data_dir: &Path) -> PathBuf {
    data_dir.join("runtime.json")
}

async fn dev(mut config: Config, port: Option<u16>, no_demo: bool, bus: Option<String>) -> anyhow::Result<()> {
    if let Some(bus) = bus {
        config.bus.url = casewire_runtime::config::SecretUrl::new(bus);
    }
    if let Some(port) = port {
        config.api.bind.set_port(port);
        if port == 0 {
            config.management.bind.set_port(0);
            config.ws.bind.set_port(0);
        }
    }
    if no_demo {
        config.demo.enabled = false;
    }
    anyhow::ensure!(
        *config.mode.get_or_insert(Mode::Dev) == Mode::Dev,
        "casewire dev needs mode = \"dev\"; use casewire serve in production"
    );
    let demo = config.demo.clone();
    let portal = config.portal.enabled;
    let data_dir = config.data_dir.clone();
    let store = (!config.store.events.is_empty()).then(|| config.store.events.masked());
    let mut platform = Embedded::start(config, Services::default()).await?;
    let url = platform.url();
    let mgmt = platform.management_url();
    // Written before the banner, so `casewire token` run right after it
    // signs for this server's issuer URL.
    let info = runtime_info(&url, &mgmt, platform.api.dev_issuer.as_ref());
    std::fs::write(runtime_file(&data_dir), serde_json::to_vec_pretty(&info)?).context("writing runtime.json")?;
    banner!("API         {url}/api/v1");
    if portal {
        banner!("Portal      {url}/");
    }
    banner!("Management  {mgmt}/health/ready");
    if let Some(ws) = &platform.ws {
        banner!("WebSocket   {}", ws.url);
    }
    let logins: Vec<String> = casewire_oidc::dev::DEMO_USERS
        .iter()
        .map(|u| format!("{}/{} ({})", u.username, u.password, u.description))
        .collect();
    banner!("Logins      {}", logins.join(" · "));
    if let Some(dev) = &platform.api.dev_issuer {
        banner!(
            "Token       casewire token alice --data-dir {}   (or POST {}/protocol/openid-connect/token)",
            data_dir.display(),
            dev.issuer()
        );
    }
    banner!("OpenAPI     {url}/api/v1/openapi.json");
    banner!("Data        {}", data_dir.display());
    if let Some(store) = store {
        banner!("Store       {store}");
    }

    if demo.enabled {
        let issuer = platform.api.dev_issuer.clone();
        let url = url.clone();
        tokio::spawn(async move {
            let Some(issuer) = issuer else { return };
            tracing::info!(cases = demo.cases, "Loading demo data");
            match casewire::demo::seed(&url, |u| Ok(issuer.token_for(u, 600)?), demo.cases).await {
                Ok(0) => tracing::info!("Demo data already present"),
                Ok(n) => tracing::info!(cases = n, "Demo data loaded"),
                Err(e) => tracing::error!(error = %e, "Loading demo data failed"),
            }
        });
    }
    let result = tokio::select! {
        _ = shutdown_signal() => {
            tracing::info!("Shutting down");
            Ok(())
        }
        (name, result) = platform.any_stopped() => {
            tracing::error!(service = %name, "A service stopped; shutting down");
            result.and_then(|()| Err(anyhow::anyhow!("service {name} stopped unexpectedly")))
        }
    };
    platform.stop().await?;
    result
}

/// What `casewire token` and the tests read to reach a running server.
fn runtime_info(api: &str, management: &str, dev: Option<&DevIssuer>) -> serde_json::Value {
    serde_json::json!({
        "apiUrl": api,
        "managementUrl": management,
        "issuer": dev.map(DevIssuer::issuer),
        "realms": dev.map(DevIssuer::realms),
    })
}

async fn serve(config: Config, service: Service) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.mode.is_some(),
        "casewire serve needs an explicit mode: set mode = \"production\" in the config file (or \
         CASEWIRE__MODE=production); mode = \"dev\" runs the demo issuer and is for local trials only"
    );
    let data_dir = config.data_dir.clone();
    let shutdown = CancellationToken::new();
    let stopper = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        stopper.cancel();
    });
    if matches!(service, Service::TaskWorker | Service::EmailIngest) {
        // Clients of the API: they open no store.
        return serve_client(config, service, shutdown).await;
    }
    if matches!(service, Service::Portal) {
        let dev = if config.dev_issuer_enabled() {
            Some(dev_issuer(&config)?)
        } else {
            None
        };
        return casewire::portal::serve_alone(config, dev.as_ref(), shutdown).await;
    }
    let platform = Platform::open(config).await.context("opening the stores")?;
    match service {
        Service::CaseApi | Service::StorageApi => {
            let api = if matches!(service, Service::StorageApi) {
                casewire_case_api::start_storage(platform, shutdown).await?
            } else {
                casewire::portal::start_api(platform, shutdown).await?
            };
            let management = format!("http://{}", api.management_addr);
            let info = runtime_info(&api.public_url, &management, api.dev_issuer.as_ref());
            std::fs::create_dir_all(&data_dir).ok();
            std::fs::write(runtime_file(&data_dir), serde_json::to_vec_pretty(&info)?)
                .context("writing runtime.json")?;
            banner!("API         {}/api/v1", api.public_url);
            banner!("Management  http://{}/health/ready", api.management_addr);
            api.wait().await
        }
        Service::CaseEngine
        | Service::Projector
        | Service::WsPublisher
        | Service::NotifyPublisher
        | Service::Automation
        | Service::SlaScheduler
        | Service::TaskWorker
        | Service::EmailIngest
        | Service::Portal => {
            let (addr, management) = casewire_runtime::management::start(platform.clone(), shutdown.clone())?;
            banner!("Management  http://{addr}/health/ready");
            let result = match service {
                Service::CaseEngine => casewire_case_engine::run(platform, shutdown.clone()).await,
                Service::Automation => casewire_case_engine::automation::run(platform, shutdown.clone()).await,
                Service::SlaScheduler => casewire_case_engine::sla::run(platform, shutdown.clone()).await,
                Service::WsPublisher => casewire_ws_publisher::run(platform, shutdown.clone()).await,
                Service::NotifyPublisher => casewire_notify_publisher::run(platform, shutdown.clone()).await,
                Service::Projector
                | Service::CaseApi
                | Service::StorageApi
                | Service::TaskWorker
                | Service::EmailIngest
                | Service::Portal => casewire_projector::run(platform, shutdown.clone()).await,
            };
            shutdown.cancel();
            let _ = management.await;
            result
        }
    }
}

/// `casewire serve task-worker|email-ingest`: tokens from
/// `service_account.token_url` (a service account), or in dev mode from the
/// dev issuer's key in the data dir, as `casewire token` signs them.
async fn serve_client(config: Config, service: Service, shutdown: CancellationToken) -> anyhow::Result<()> {
    let dev = if config.service_account.token_url.is_none() && config.dev_issuer_enabled() {
        Some(dev_issuer(&config)?)
    } else {
        None
    };
    let tokens = casewire::worker::tokens(&config, dev.as_ref())?.context(
        "the built-in clients need a service account: set service_account.token_url, service_account.client_id \
         and service_account.client_secret",
    )?;
    let api = casewire::worker::api_url(&config, None);
    let (management, _served) =
        casewire_runtime::management::start_client(config.management.bind, &api, shutdown.clone())?;
    banner!("Management   http://{management}/health/ready");
    if matches!(service, Service::EmailIngest) {
        let boxes: Vec<&str> = config
            .email
            .mailboxes
            .iter()
            .filter(|m| m.imap_url.is_some())
            .map(|m| m.name.as_str())
            .collect();
        banner!("Mailboxes    {} -> {api}/api/v1/inbound/email", boxes.join(", "));
        let reader = casewire::worker::reader(&config, &api, tokens);
        return casewire_email_ingest::run(reader, config.email.mailboxes.clone(), shutdown).await;
    }
    banner!(
        "Task worker  {api}/engine-rest (topics {})",
        casewire_task_worker::TOPICS.join(", ")
    );
    let worker = casewire::worker::worker(&config, &api, tokens)?;
    casewire_task_worker::run(worker, shutdown).await
}

/// The dev issuer of the server that shares this data dir: its key, and
/// the realms URL it wrote to `runtime.json`, so tokens carry its `iss`.
fn dev_issuer(config: &Config) -> anyhow::Result<DevIssuer> {
    let realms = std::fs::read(runtime_file(&config.data_dir))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["realms"].as_str().map(str::to_owned))
        .unwrap_or_else(|| {
            let base = config
                .api
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", config.api.bind));
            format!("{}/dev-auth/realms", base.trim_end_matches('/'))
        });
    Ok(DevIssuer::load_or_create(
        &config.data_dir,
        &realms,
        &config.auth.audience,
    )?)
}

fn token(mut config: Config, user: &str) -> anyhow::Result<()> {
    config.mode.get_or_insert(Mode::Dev);
    anyhow::ensure!(
        config.dev_issuer_enabled(),
        "the dev issuer is off; get tokens from your identity provider"
    );
    if DevIssuer::user(user).is_none() {
        let users: Vec<&str> = casewire_oidc::dev::DEMO_USERS.iter().map(|u| u.username).collect();
        anyhow::bail!("unknown user '{user}'; demo users are {}", users.join(", "));
    }
    let dev = dev_issuer(&config)?;
    println!("{}", dev.token_for(user, config.auth.dev_token_ttl_secs)?);
    Ok(())
}

async fn replay(config: Config, projection: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        projection == "cases",
        "unknown projection '{projection}' (known: cases)"
    );
    let platform = Platform::open(config).await?;
    let head = platform.events.head().await?;
    eprintln!("Replaying {head} events into the '{projection}' projection...");
    let progress = ReplayProgress::new(head);
    let report = casewire_projector::replay(&platform, 5_000, |done, total| progress.show(done, total)).await?;
    progress.finish();
    // The rebuild dropped the SLA schedule with the rows.
    eprintln!("Computing the SLA clocks of {} cases again...", report.case_ids.len());
    casewire_case_engine::sla::resync(&platform, &report.case_ids).await?;
    let rate = report.events as f64 / report.elapsed.as_secs_f64().max(1e-9);
    println!(
        "Replayed {} events of {} cases in {:.2} s ({rate:.0} events/s)",
        report.events,
        report.cases,
        report.elapsed.as_secs_f64()
    );
    Ok(())
}

/// A replay's progress: a bar with rate and ETA on a terminal, otherwise a
/// line every few seconds (logs and CI keep a readable record).
struct ReplayProgress {
    bar: indicatif::ProgressBar,
    started: std::time::Instant,
    last_line: std::cell::Cell<std::time::Instant>,
}

impl ReplayProgress {
    fn new(total: u64) -> Self {
        use std::io::IsTerminal as _;
        let bar = if std::io::stderr().is_terminal() {
            indicatif::ProgressBar::new(total).with_style(
                indicatif::ProgressStyle::with_template(
                    "  {bar:40} {human_pos}/{human_len} events, {per_sec}, ETA {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            )
        } else {
            indicatif::ProgressBar::hidden()
        };
        let now = std::time::Instant::now();
        ReplayProgress {
            bar,
            started: now,
            last_line: std::cell::Cell::new(now),
        }
    }

    fn show(&self, done: u64, total: u64) {
        if !self.bar.is_hidden() {
            self.bar.set_length(total.max(done));
            self.bar.set_position(done);
            return;
        }
        if self.last_line.get().elapsed() < std::time::Duration::from_secs(2) {
            return;
        }
        self.last_line.set(std::time::Instant::now());
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let rate = done as f64 / secs;
        let eta = total.saturating_sub(done) as f64 / rate.max(1e-9);
        eprintln!("  {done}/{total} events, {rate:.0} events/s, ETA {eta:.0} s");
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

async fn import_definitions(config: Config, dir: &Path) -> anyhow::Result<()> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json"))
        .collect();
    files.sort();
    anyhow::ensure!(
        !files.is_empty(),
        "no *.yaml, *.yml or *.json files in {}",
        dir.display()
    );
    // Validate all first, so a bad file imports nothing.
    let mut parsed = Vec::new();
    for f in &files {
        let source = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        let def = casewire_domain::CaseDefinition::parse_yaml(&source).with_context(|| format!("{}", f.display()))?;
        parsed.push(def);
    }
    let tenant = config.default_tenant.clone();
    let platform = Platform::open(config).await?;
    for def in parsed {
        let stored = platform.reads.put_definition(&tenant, &def).await?;
        println!("Imported {} version {}", stored.id, stored.version);
    }
    Ok(())
}

fn policy_test(dir: &Path) -> anyhow::Result<()> {
    let results = casewire_policy::run_tests(dir).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(!results.is_empty(), "no test_* rules in {}", dir.display());
    for r in &results {
        match &r.failure {
            None => println!("PASS  {}", r.name),
            Some(why) => println!("FAIL  {}: {why}", r.name),
        }
    }
    let failed = results.iter().filter(|r| r.failure.is_some()).count();
    println!("policy tests: {} passed, {failed} failed", results.len() - failed);
    anyhow::ensure!(failed == 0, "{failed} policy tests failed");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = load_config(&cli)?;
    // `casewire` alone is `casewire dev`: a person watching a terminal.
    let interactive = matches!(cli.command, None | Some(Command::Dev { .. }));
    // Each service's spans under its own name: casewire-case-api, ...
    let service = match &cli.command {
        Some(Command::Serve { service }) => service
            .to_possible_value()
            .map_or_else(|| "casewire".to_owned(), |v| format!("casewire-{}", v.get_name())),
        _ => "casewire".to_owned(),
    };
    telemetry::init_with(&config.log, interactive, &config.telemetry, &service);
    let outcome = run(cli.command, config).await;
    telemetry::shutdown();
    outcome
}

async fn run(command: Option<Command>, config: Config) -> anyhow::Result<()> {
    match command.unwrap_or(Command::Dev {
        port: None,
        no_demo: false,
        bus: None,
    }) {
        Command::Dev { port, no_demo, bus } => dev(config, port, no_demo, bus).await,
        Command::Serve { service } => serve(config, service).await,
        Command::Token { user } => token(config, &user),
        Command::Replay { projection } => replay(config, &projection).await,
        Command::Definitions {
            command: DefinitionsCommand::Import { dir },
        } => import_definitions(config, &dir).await,
        Command::Bench(casewire::bench::BenchArgs {
            what: Some(casewire::bench::BenchWhat::Files(files)),
            ..
        }) => casewire::bench::files(config, files).await,
        Command::Bench(casewire::bench::BenchArgs {
            what: Some(casewire::bench::BenchWhat::Ws(args)),
            ..
        }) => casewire::bench_ws::run(config, args).await,
        Command::Bench(casewire::bench::BenchArgs {
            what: Some(casewire::bench::BenchWhat::WsClients(args)),
            ..
        }) => casewire::bench_ws::clients(args).await,
        Command::Bench(casewire::bench::BenchArgs {
            what: Some(casewire::bench::BenchWhat::Replay(args)),
            ..
        }) => casewire::bench_replay::run(config, args).await,
        Command::Bench(casewire::bench::BenchArgs {
            what: Some(casewire::bench::BenchWhat::Tasks(args)),
            ..
        }) => casewire::bench_tasks::run(config, args).await,
        Command::Bench(casewire::bench::BenchArgs {
            what: Some(casewire::bench::BenchWhat::Email(args)),
            ..
        }) => casewire::bench_email::run(config, args).await,
        Command::Bench(casewire::bench::BenchArgs {
            what: Some(casewire::bench::BenchWhat::Sla(args)),
            ..
        }) => casewire::bench_sla::run(config, args).await,
        Command::Bench(args) => casewire::bench::run(config, args).await,
        Command::Policy {
            command: PolicyCommand::Test { dir },
        } => policy_test(&dir),
        Command::Policy {
            command: PolicyCommand::Bench { dir, decisions },
        } => casewire::bench::policy(&dir, decisions).await,
        Command::Admin {
            command: AdminCommand::Init { tenants },
        } => admin_init(config, tenants).await,
        Command::Health { url } => health(&config, url).await,
    }
}

/// `casewire health`: the readiness of the local service, as an exit code.
async fn health(config: &Config, url: Option<String>) -> anyhow::Result<()> {
    let url = url.unwrap_or_else(|| {
        let mut addr = config.management.bind;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{addr}/health/ready")
    });
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()?;
    let r = http.get(&url).send().await.with_context(|| format!("asking {url}"))?;
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    println!("{status} {body}");
    anyhow::ensure!(status.is_success(), "{url} is not ready ({status})");
    Ok(())
}

/// `casewire admin init`: a line per topic, index set and bucket, then the
/// totals.
async fn admin_init(config: Config, mut tenants: Vec<String>) -> anyhow::Result<()> {
    use casewire_runtime::admin::Outcome;
    tenants.extend(config.auth.issuers.iter().filter_map(|i| i.tenant.clone()));
    if config.mode == Some(Mode::Dev) {
        tenants.extend(DevIssuer::tenants().into_iter().map(str::to_owned));
    }
    tenants.sort();
    tenants.dedup();
    let report = casewire_runtime::admin::init(&config, &tenants).await?;
    let mut created = 0;
    for p in &report {
        match p.outcome {
            Outcome::Created(n) => {
                created += 1;
                if n > 1 {
                    println!("created  {} ({n})", p.what);
                } else {
                    println!("created  {}", p.what);
                }
            }
            Outcome::Exists => println!("exists   {}", p.what),
        }
    }
    println!(
        "admin init: {created} created, {} already there",
        report.len() - created
    );
    Ok(())
}
