//! `casewire bench email`: mail through the inbound webhook on a fresh
//! embedded platform. `--mails` distinct messages (each with a PDF-sized
//! attachment; every fourth a reply that threads into an earlier case by
//! `In-Reply-To`) are posted by `--clients` clients at once; a mail counts
//! when the API answers, which it does once the mail's case event is
//! stored, and the run ends when every case shows its mail in the read
//! model. The baseline is parsing the same messages alone, in the same
//! process and run. Figures are printed, never asserted.

use std::time::{Duration, Instant};

use casewire_runtime::Config;
use casewire_runtime::config::MailboxConfig;
use serde_json::json;

use crate::embedded::{Embedded, Services};

/// Options of `casewire bench email`.
#[derive(Debug, Clone, clap::Args)]
pub struct EmailBenchArgs {
    /// Mails posted.
    #[arg(long, default_value_t = 500)]
    pub mails: usize,
    /// Clients posting at once.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

const ADDRESS: &str = "support@casewire.example";

/// Mail `n`: a new mail, or (every fourth) a reply to mail `n - 1`.
fn mail(n: usize) -> String {
    let attachment = "JVBERi0xLjQK".repeat(400);
    // A reply comes from the sender of the mail it answers.
    let sender = if n % 4 == 3 { n - 1 } else { n };
    let reply = if n % 4 == 3 {
        format!("In-Reply-To: <bench-{}@customer.example>\r\n", n - 1)
    } else {
        String::new()
    };
    format!(
        "From: Customer {n} <customer{}@customer.example>\r\nTo: {ADDRESS}\r\nSubject: Order {n} arrived broken\r\n\
         Message-ID: <bench-{n}@customer.example>\r\n{reply}Date: Tue, 1 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Hello, order {n} arrived broken. Photo and receipt attached.\r\n\r\n-- \r\nCustomer {n}\r\n\
         --b\r\nContent-Type: application/pdf; name=\"receipt-{n}.pdf\"\r\nContent-Disposition: attachment; \
         filename=\"receipt-{n}.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{attachment}\r\n--b--\r\n",
        sender,
    )
}

/// Parses every mail; mails/s.
fn parse_rate(mails: &[String]) -> anyhow::Result<f64> {
    let limits = casewire_email::Limits::default();
    let started = Instant::now();
    for m in mails {
        casewire_email::parse(m.as_bytes(), &limits).map_err(|q| anyhow::anyhow!("bench mail refused: {q}"))?;
    }
    Ok(mails.len() as f64 / started.elapsed().as_secs_f64())
}

/// Posts `mails` with `clients` at once; the time each took.
async fn post_all(base: &str, token: &str, mails: Vec<String>, clients: usize) -> anyhow::Result<Vec<Duration>> {
    let http = reqwest::Client::new();
    let queue = std::sync::Arc::new(tokio::sync::Mutex::new(mails.into_iter()));
    let mut running = Vec::new();
    for _ in 0..clients {
        let (http, queue, url, token) = (
            http.clone(),
            queue.clone(),
            format!("{base}/api/v1/inbound/email?mailbox=bench"),
            token.to_owned(),
        );
        running.push(tokio::spawn(async move {
            let mut took = Vec::new();
            loop {
                let Some(mail) = queue.lock().await.next() else {
                    return Ok::<_, anyhow::Error>(took);
                };
                let started = Instant::now();
                let res = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "message/rfc822")
                    .body(mail)
                    .send()
                    .await?;
                anyhow::ensure!(res.status().is_success(), "a mail was refused: {}", res.text().await?);
                took.push(started.elapsed());
            }
        }));
    }
    let mut all = Vec::new();
    for r in running {
        all.extend(r.await??);
    }
    all.sort();
    Ok(all)
}

/// Waits until the projector has read every event stored so far.
async fn all_visible(platform: &Embedded) -> anyhow::Result<()> {
    let head = platform.platform.events.head().await?;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let at = platform
            .platform
            .reads
            .checkpoint(casewire_projector::GROUP)
            .await?
            .unwrap_or(0);
        if at >= head {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the projection is at {at} of {head} after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs the benchmark.
pub async fn run(mut base: Config, args: EmailBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.mails > 0 && args.clients > 0,
        "need at least one mail and one client"
    );
    let _dir = crate::bench::fresh_platform_dir(&mut base)?;
    base.email.mailboxes = vec![MailboxConfig {
        data: json!({"channel": "email", "product": "unknown"}),
        ..MailboxConfig::new("bench", base.default_tenant.as_str(), ADDRESS, "customer-complaint")
    }];
    let mails: Vec<String> = (0..args.mails).map(mail).collect();
    let parsed = parse_rate(&mails)?;
    let platform = Embedded::start(base, Services::default()).await?;
    let admin = platform.client("carol")?;
    let r = admin.import_definition(crate::DEMO_DEFINITIONS[0].1).await?;
    anyhow::ensure!(r.status.as_u16() == 201, "definition import failed: {}", r.body);
    let token = platform.token("intake")?;
    let started = Instant::now();
    let took = post_all(&platform.url(), &token, mails, args.clients).await?;
    let stored = started.elapsed();
    let replies = args.mails / 4;
    all_visible(&platform).await?;
    let visible = started.elapsed();
    platform.stop().await?;
    let stored_rate = args.mails as f64 / stored.as_secs_f64();
    let visible_rate = args.mails as f64 / visible.as_secs_f64();
    let pct = |p: f64| crate::bench::ms(crate::bench::percentile(&took, p));
    if args.json {
        println!(
            "{}",
            json!({"mails": args.mails, "clients": args.clients, "storedPerSec": stored_rate,
                   "visiblePerSec": visible_rate, "latencyMs": {"p50": pct(0.5), "p99": pct(0.99)},
                   "baseline": {"what": "parse alone (mail-parser)", "perSec": parsed},
                   "ratioToBaseline": visible_rate / parsed})
        );
    } else {
        println!(
            "Casewire bench email: {} mails ({} replies), {} clients, through /api/v1/inbound/email",
            args.mails, replies, args.clients
        );
        println!("  raw MIME -> case event stored   {stored_rate:>9.1} mails/s");
        println!("  raw MIME -> visible on the case {visible_rate:>9.1} mails/s");
        println!(
            "  per mail (answer)               p50 {:.1} ms, p99 {:.1} ms",
            pct(0.5),
            pct(0.99)
        );
        println!("  baseline: parse alone           {parsed:>9.1} mails/s (same run)");
        println!("    ratio visible/parse           {:>9.4}", visible_rate / parsed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_mails_parse_and_replies_point_at_their_predecessor() {
        let limits = casewire_email::Limits::default();
        let m = casewire_email::parse(mail(3).as_bytes(), &limits).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.in_reply_to, ["bench-2@customer.example"]);
        assert_eq!(m.parts.len(), 1);
    }
}
