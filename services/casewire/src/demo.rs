//! Demo data: the three built-in definitions and about fifty cases with
//! varied histories, all created through the public API as the demo users,
//! exactly as a client would. Runs once: it does nothing when cases exist.

use anyhow::Context;
use serde_json::{Value, json};

use crate::client::Client;

/// A tiny deterministic generator, so every fresh demo looks the same.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const PEOPLE: &[(&str, &str)] = &[
    ("Mara Jensen", "mara.jensen@example.com"),
    ("Tomasz Nowak", "t.nowak@example.org"),
    ("Aiko Tanaka", "aiko@example.net"),
    ("Luis Ortega", "luis.ortega@example.com"),
    ("Fatima Haddad", "f.haddad@example.org"),
    ("Ole Berg", "ole.berg@example.com"),
    // The demo requester login `dave` sees the cases opened for this address.
    ("Dave Miller", "dave@example.com"),
];

fn complaint(rng: &mut Rng) -> (String, Value) {
    let products = [
        "Kettle K200",
        "Espresso Pro",
        "Washing machine W7",
        "Mobile plan Basic",
        "Laptop Air 13",
        "Vacuum V9",
    ];
    let problems = [
        "stopped working after a week",
        "arrived damaged",
        "was billed twice",
        "does not match the description",
        "delivery is three weeks late",
    ];
    let product = *rng.pick(&products);
    let title = format!("{product} {}", rng.pick(&problems));
    let mut data = json!({"channel": *rng.pick(&["email", "phone", "web", "store"]), "product": product});
    if rng.chance(60) {
        data["orderNumber"] = json!(format!("OR-{:06}", rng.below(999_999)));
    }
    if rng.chance(50) {
        data["amountClaimed"] = json!(rng.below(900) as f64 + 19.99);
    }
    (title, data)
}

fn claim(rng: &mut Rng) -> (String, Value) {
    let kinds = [
        ("motor", "Rear-end collision on the ring road"),
        ("water-damage", "Burst pipe flooded the kitchen"),
        ("fire", "Fire in the garage"),
        ("theft", "Bicycle stolen from the station"),
        ("storm", "Storm damage to the roof"),
        ("liability", "Guest slipped on the stairs"),
    ];
    let (kind, title) = *rng.pick(&kinds);
    let data = json!({
        "policyNumber": format!("POL-{:08}", rng.below(99_999_999)),
        "lossType": kind,
        "lossDate": format!("2026-{:02}-{:02}", 1 + rng.below(10), 1 + rng.below(28)),
        "estimatedAmount": (rng.below(40) * 250 + 300) as f64,
        "thirdPartyInvolved": rng.chance(30),
    });
    (title.to_owned(), data)
}

fn it_request(rng: &mut Rng) -> (String, Value) {
    let asks = [
        ("access", "Access to the finance share"),
        ("hardware", "New docking station"),
        ("software", "Install a PDF editor"),
        ("incident", "VPN drops every ten minutes"),
        ("incident", "Printer on floor 3 jams"),
        ("other", "Move desk phone to room 2.14"),
    ];
    let (category, title) = *rng.pick(&asks);
    let mut data = json!({"category": category});
    if category == "incident" {
        data["affectedUsers"] = json!(1 + rng.below(40));
    }
    if category == "access" {
        data["approvalNeeded"] = json!(true);
    }
    (title.to_owned(), data)
}

const COMMENTS: &[&str] = &[
    "Called the requester and confirmed the details.",
    "Asked for photos of the damage.",
    "Escalated to second level.",
    "Customer replied with the requested documents.",
    "Checked the order history; this matches.",
    "Waiting on the supplier's answer.",
];

/// Imports the demo calendars, for the definitions that name them.
pub async fn import_calendars(admin: &Client) -> anyhow::Result<()> {
    for (name, yaml) in crate::DEMO_CALENDARS {
        let r = admin.import_calendar(yaml).await?;
        anyhow::ensure!(
            r.status.as_u16() == 201,
            "importing {name} failed: {} {}",
            r.status,
            r.body
        );
    }
    Ok(())
}

/// Imports the demo definitions (when none exist) and creates `count`
/// cases (when none exist). Returns how many cases it created.
pub async fn seed(
    base: &str,
    token_for: impl Fn(&str) -> anyhow::Result<String>,
    count: usize,
) -> anyhow::Result<usize> {
    let admin = Client::new(base, &token_for("carol")?);
    let existing = admin.get("/api/v1/definitions").await?;
    if existing.body["items"].as_array().is_none_or(Vec::is_empty) {
        import_calendars(&admin).await?;
        for (name, yaml) in crate::DEMO_DEFINITIONS {
            let r = admin.import_definition(yaml).await?;
            anyhow::ensure!(
                r.status.as_u16() == 201,
                "importing {name} failed: {} {}",
                r.status,
                r.body
            );
        }
    }
    let cases = admin.get("/api/v1/cases?limit=1").await?;
    if cases.body["items"].as_array().is_some_and(|a| !a.is_empty()) {
        return Ok(0);
    }
    let definitions: Vec<Value> = admin.get("/api/v1/definitions").await?.body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let by_id = |id: &str| definitions.iter().find(|d| d["id"] == id).cloned();
    let alice = Client::new(base, &token_for("alice")?);
    let bob = Client::new(base, &token_for("bob")?);
    let mut rng = Rng(0x5eed_ca5e_d00d_f00d);
    let mut created = 0;
    for i in 0..count {
        let (def_id, (title, data)) = match i % 3 {
            0 => ("customer-complaint", complaint(&mut rng)),
            1 => ("insurance-claim", claim(&mut rng)),
            _ => ("it-service-request", it_request(&mut rng)),
        };
        let def = by_id(def_id).with_context(|| format!("definition {def_id} missing"))?;
        // alice works the complaints queue only; bob manages every queue.
        let worker = if def_id == "customer-complaint" && rng.chance(50) {
            &alice
        } else {
            &bob
        };
        // Some of bob's cases are confidential: hidden from alice, erin, dave.
        let confidential = std::ptr::eq(worker, &bob) && rng.chance(10);
        let (name, email) = *rng.pick(PEOPLE);
        let priorities: Vec<String> = def["priorities"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["id"].as_str().map(str::to_owned))
            .filter(|p| p != "p0")
            .collect();
        // The first three IT requests are outages (P0, goals in minutes),
        // left unassigned and open: the demo's cases at risk and breached.
        let outage = def_id == "it-service-request" && i < 9;
        let priority = if outage {
            "p0".to_owned()
        } else {
            rng.pick(&priorities).clone()
        };
        let open = json!({
            "definition": def_id, "title": if outage { format!("Outage: {title}") } else { title },
            "data": data, "priority": priority, "requester": {"name": name, "email": email},
            "tags": if rng.chance(30) { json!(["vip"]) } else { json!([]) },
            "confidential": confidential,
        });
        let r = worker.post_wait("/api/v1/cases", &open).await?;
        anyhow::ensure!(
            r.status.as_u16() == 201,
            "opening a demo case failed: {} {}",
            r.status,
            r.body
        );
        let id = r.body["id"].as_str().context("no case id")?.to_owned();
        created += 1;
        let path = |p: &str| format!("/api/v1/cases/{id}{p}");
        if outage {
            continue;
        }
        if rng.chance(70) {
            let assignee = *rng.pick(&["alice", "bob"]);
            worker
                .post_wait(&path("/assign"), &json!({"assignee": assignee}))
                .await?;
        }
        for _ in 0..rng.below(3) {
            let visibility = *rng.pick(&["internal", "public"]);
            worker
                .post_wait(
                    &path("/comments"),
                    &json!({"body": rng.pick(COMMENTS), "visibility": visibility}),
                )
                .await?;
        }
        if rng.chance(20) {
            worker
                .post_wait(
                    &path("/tags"),
                    &json!({"tag": *rng.pick(&["callback", "escalated", "legal", "repeat"])}),
                )
                .await?;
        }
        // Walk the stage graph a few steps.
        let mut stage = def["initialStage"].as_str().unwrap_or_default().to_owned();
        for _ in 0..rng.below(4) {
            let next: Vec<String> = def["transitions"][&stage]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect();
            if next.is_empty() {
                break;
            }
            let to = rng.pick(&next).clone();
            let r = worker.post_wait(&path("/stage"), &json!({"stage": to})).await?;
            if r.status.is_success() {
                stage = to;
            }
        }
        let terminal = def["terminalStages"]
            .as_array()
            .is_some_and(|t| t.iter().any(|s| s == stage.as_str()));
        if terminal || rng.chance(10) {
            let codes: Vec<String> = def["resolutionCodes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect();
            worker
                .post_wait(
                    &path("/resolve"),
                    &json!({"resolution": rng.pick(&codes), "note": "Demo resolution"}),
                )
                .await?;
            if rng.chance(50) {
                worker.post_wait(&path("/close"), &json!({})).await?;
            }
        }
    }
    created += seed_second_tenant(base, &token_for).await?;
    Ok(created)
}

/// A few cases in the second demo tenant, `globex` (login `gina`), so that
/// tenancy can be seen: nobody of `casewire` sees them, and their keys
/// count from 1 again.
async fn seed_second_tenant(base: &str, token_for: &impl Fn(&str) -> anyhow::Result<String>) -> anyhow::Result<usize> {
    let gina = Client::new(base, &token_for("gina")?);
    let existing = gina.get("/api/v1/definitions").await?;
    if existing.body["items"].as_array().is_none_or(Vec::is_empty) {
        import_calendars(&gina).await?;
        for (name, yaml) in crate::DEMO_DEFINITIONS {
            let r = gina.import_definition(yaml).await?;
            anyhow::ensure!(
                r.status.as_u16() == 201,
                "importing {name} for globex failed: {}",
                r.body
            );
        }
    }
    let cases = gina.get("/api/v1/cases?limit=1").await?;
    if cases.body["items"].as_array().is_some_and(|a| !a.is_empty()) {
        return Ok(0);
    }
    let mut rng = Rng(0x610b_e5ca_5e00_0001);
    for _ in 0..5 {
        let (title, data) = complaint(&mut rng);
        let r = gina
            .post_wait(
                "/api/v1/cases",
                &json!({"definition": "customer-complaint", "title": title, "data": data, "queue": "support"}),
            )
            .await?;
        anyhow::ensure!(
            r.status.as_u16() == 201,
            "opening a globex demo case failed: {}",
            r.body
        );
    }
    Ok(5)
}
