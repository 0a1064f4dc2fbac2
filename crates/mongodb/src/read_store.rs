//! `MongoReadStore`: the projections and the command log.
//!
//! - `cases`: one document per case, `_id` = `<tenant>:<case id>`, with the
//!   list's filter and sort fields at the top level (indexed to match the
//!   list filters), the summary and the detail as JSON text, and `words`,
//!   the normalised words of the searchable text. `q` matches word
//!   prefixes through anchored regexes on the multikey `words` index;
//!   MongoDB's `$text` matches whole stemmed words only, which would make
//!   `q=print` miss "printers" here while SQLite finds it. The SLA
//!   scheduler's fields (`sla*`, see `sla.rs`) live on the same
//!   document; the projector only gives a new one its `slaDue` default.
//! - `timeline`: one document per event, `_id` = tenant, case, revision.
//! - `definitions` and `calendars`: one document per version; `checkpoints`: one per consumer.
//! - `commands`: the command log with its status as a field, so claiming
//!   and cancelling are single `findOneAndUpdate` calls.
//!
//! Every write is a single-document operation and idempotent: a case is
//! replaced only by a newer revision (an upsert guarded by `revision`, whose
//! loser gets E11000), timeline entries and accepted commands are inserted
//! once.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use casewire_domain::calendar::BusinessCalendar;
use casewire_domain::types::{CaseKey, QueueName, Tag, TenantId};
use casewire_domain::{Case, CaseDefinition, TaskState};
use casewire_ports::definitions::Versioned;
use casewire_ports::projection::{searchable_text, sortable_time};
use casewire_ports::{
    CancelResult, CaseProjection, CaseQuery, CaseSummary, Checkpoints, ClaimResult, Clause, CommandLog, CommandRecord,
    CommandStatus, DefinitionStore, EventRecord, FileCatalog, FileRecord, FileState, Page, ReadStore, SortKey,
    StoreError, TASK_SCAN_CASES, TaskItem, TaskQuery,
};
use futures::TryStreamExt;
use mongodb::bson::{Bson, Document, Regex, doc};
use mongodb::options::ReturnDocument;
use mongodb::{Collection, Database};
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;

use crate::{Bounded as _, MongoSettings, corrupt, ensure_indexes, i64_of, index, is_duplicate_key, map_err, u64_of};

fn to_json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(corrupt)
}

fn from_json<T: for<'de> Deserialize<'de>>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(corrupt)
}

/// Lower-cased words without diacritics, the way both the stored text and
/// the query are cut, so "Müller" is found by "muller" and by "MÜL".
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            w.nfd()
                .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
                .flat_map(char::to_lowercase)
                .collect()
        })
}

fn search_words(case: &Case, with_internal: bool) -> Vec<String> {
    let mut out: Vec<String> = searchable_text(case, with_internal)
        .into_iter()
        .flat_map(words)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The policy's clauses as a filter: `$or` of the clauses, each an AND of
/// its fields; an empty clause admits all, no clause admits none.
fn visibility(clauses: &[Clause]) -> Document {
    if clauses.is_empty() {
        // `$or: []` is an error in MongoDB; an impossible id matches nothing.
        return doc! {"_id": {"$exists": false}};
    }
    let ors: Vec<Document> = clauses
        .iter()
        .map(|c| {
            let mut d = Document::new();
            if let Some(queues) = &c.queue {
                d.insert("queue", doc! {"$in": queues.clone()});
            }
            if let Some(definitions) = &c.definition {
                d.insert("definitionId", doc! {"$in": definitions.clone()});
            }
            if let Some(confidential) = c.confidential {
                // Cases projected before the field existed were not confidential.
                if confidential {
                    d.insert("confidential", true);
                } else {
                    d.insert("confidential", doc! {"$ne": true});
                }
            }
            for (field, value) in [
                ("assignee", &c.assignee),
                ("requesterEmail", &c.requester),
                ("createdBy", &c.created_by),
            ] {
                if let Some(v) = value {
                    d.insert(field, v.as_str());
                }
            }
            d
        })
        .collect();
    doc! {"$or": ors}
}

/// A file record as a document: the fields that updates touch are native
/// (state, cases, detachedAt), the rest plain values.
fn file_doc(f: &FileRecord) -> Result<Document, StoreError> {
    Ok(doc! {
        "_id": case_id(&f.tenant, f.id),
        "tenant": f.tenant.as_str(),
        "id": f.id.to_string(),
        "name": &f.name,
        "contentType": &f.content_type,
        "size": i64_of(f.size),
        "sha256": &f.sha256,
        "uploadedBy": &f.uploaded_by,
        "uploadedAt": sortable_time(f.uploaded_at),
        "cases": f.cases.iter().map(Uuid::to_string).collect::<Vec<_>>(),
        "state": f.state.as_str(),
        "detachedAt": f.detached_at.map_or(Bson::Null, |t| Bson::String(time_text(t))),
    })
}

fn file_of(d: &Document) -> Result<FileRecord, StoreError> {
    let text = |k: &str| d.get_str(k).map(str::to_owned).map_err(corrupt);
    let state = match d.get_str("state").map_err(corrupt)? {
        "pending" => FileState::Pending,
        "uploaded" => FileState::Uploaded,
        "pinned" => FileState::Pinned,
        "sweeping" => FileState::Sweeping,
        "purging" => FileState::Purging,
        "purged" => FileState::Purged,
        other => return Err(corrupt(format!("unknown file state {other}"))),
    };
    let cases = d
        .get_array("cases")
        .map_err(corrupt)?
        .iter()
        .map(|c| c.as_str().unwrap_or_default().parse::<Uuid>().map_err(corrupt))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(FileRecord {
        id: text("id")?.parse().map_err(corrupt)?,
        tenant: TenantId::parse(text("tenant")?).map_err(corrupt)?,
        name: text("name")?,
        content_type: text("contentType")?,
        size: u64_of(d.get_i64("size").map_err(corrupt)?)?,
        sha256: text("sha256")?,
        uploaded_by: text("uploadedBy")?,
        uploaded_at: parse_time(&text("uploadedAt")?)?,
        cases,
        state,
        detached_at: d.get_str("detachedAt").ok().map(parse_time).transpose()?,
    })
}

pub(crate) fn case_id(tenant: &TenantId, id: Uuid) -> String {
    format!("{tenant}:{id}")
}

fn status_str(s: CommandStatus) -> &'static str {
    match s {
        CommandStatus::Pending => "pending",
        CommandStatus::Processing => "processing",
        CommandStatus::Processed => "processed",
        CommandStatus::Rejected => "rejected",
        CommandStatus::Cancelled => "cancelled",
    }
}

/// The command log entry as stored: the record's fields, with the
/// status on top so that updates can match on it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommandDoc {
    #[serde(rename = "_id")]
    id: String,
    tenant: String,
    case_id: String,
    #[serde(rename = "type")]
    command_type: String,
    status: CommandStatus,
    actor: String,
    accepted_at: String,
    finished_at: Option<String>,
    revision: Option<i64>,
    /// The rejection as JSON text.
    error: Option<String>,
}

fn time_text(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

pub(crate) fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
    Ok(chrono::DateTime::parse_from_rfc3339(s)
        .map_err(corrupt)?
        .with_timezone(&chrono::Utc))
}

impl CommandDoc {
    fn of(r: &CommandRecord) -> Result<Self, StoreError> {
        Ok(CommandDoc {
            id: r.id.to_string(),
            tenant: r.tenant.to_string(),
            case_id: r.case_id.to_string(),
            command_type: r.command_type.clone(),
            status: r.status,
            actor: r.actor.clone(),
            accepted_at: time_text(r.accepted_at),
            finished_at: r.finished_at.map(time_text),
            revision: r.revision.map(i64_of),
            error: r.error.as_ref().map(to_json).transpose()?,
        })
    }

    fn record(self) -> Result<CommandRecord, StoreError> {
        Ok(CommandRecord {
            id: self.id.parse().map_err(corrupt)?,
            tenant: TenantId::parse(&self.tenant).map_err(corrupt)?,
            case_id: self.case_id.parse().map_err(corrupt)?,
            command_type: self.command_type,
            status: self.status,
            actor: self.actor,
            accepted_at: parse_time(&self.accepted_at)?,
            finished_at: self.finished_at.as_deref().map(parse_time).transpose()?,
            revision: self.revision.map(u64_of).transpose()?,
            error: self.error.as_deref().map(from_json).transpose()?,
        })
    }
}

/// Where the projections' layout version is kept (among the checkpoints).
const LAYOUT_ID: &str = "layout:projections";
/// Bump with every change of the projected documents' fields (3: `messageIds`;
/// 4: the SLA fields, so that every case document has the `slaDue` sort
/// value, which only an insert sets: a document without it would sort first).
const PROJECTION_VERSION: i64 = 4;

/// The indexes of `cases`: one per list filter and sort, the task and
/// reply look-ups, and the SLA scheduler's.
fn case_indexes() -> Vec<mongodb::IndexModel> {
    vec![
        index("key", doc! {"tenant": 1, "key": 1}, false),
        index("updated", doc! {"tenant": 1, "updatedAt": 1, "id": 1}, false),
        index("created", doc! {"tenant": 1, "createdAt": 1, "id": 1}, false),
        index("stage", doc! {"tenant": 1, "stage": 1, "updatedAt": 1}, false),
        index("queue", doc! {"tenant": 1, "queue": 1, "updatedAt": 1}, false),
        index("assignee", doc! {"tenant": 1, "assignee": 1, "updatedAt": 1}, false),
        index("priority", doc! {"tenant": 1, "priority": 1, "updatedAt": 1}, false),
        index("tags", doc! {"tenant": 1, "tags": 1, "updatedAt": 1}, false),
        index("words", doc! {"tenant": 1, "words": 1}, false),
        index("public-words", doc! {"tenant": 1, "publicWords": 1}, false),
        index(
            "requester",
            doc! {"tenant": 1, "requesterEmail": 1, "updatedAt": 1},
            false,
        ),
        index("creator", doc! {"tenant": 1, "createdBy": 1, "updatedAt": 1}, false),
        index(
            "task-topic",
            doc! {"tenant": 1, "tasks.topic": 1, "tasks.state": 1},
            false,
        ),
        index(
            "task-assignee",
            doc! {"tenant": 1, "tasks.assignee": 1, "tasks.state": 1},
            false,
        ),
        index("task-id", doc! {"tenant": 1, "tasks.id": 1}, false),
        index("message-id", doc! {"tenant": 1, "messageIds": 1}, false),
        // The scheduler's claims (earliest first), the list's due-time
        // sort, and the cases to recompute when a calendar changes.
        index("sla-next", doc! {"slaNextAt": 1}, false),
        index("sla-due", doc! {"tenant": 1, "slaDue": 1, "id": 1}, false),
        index("sla-calendar", doc! {"slaCalendar": 1}, false),
    ]
}

/// The MongoDB read store.
#[derive(Debug, Clone)]
pub struct MongoReadStore {
    db: Database,
    pub(crate) cases: Collection<Document>,
    timeline: Collection<Document>,
    checkpoints: Collection<Document>,
    commands: Collection<CommandDoc>,
    files: Collection<Document>,
    /// The bound of every operation (`MongoSettings::operation_timeout`).
    pub(crate) timeout: Duration,
}

impl MongoReadStore {
    /// Opens the store and creates its indexes.
    pub async fn open(db: &Database, settings: &MongoSettings) -> Result<Self, StoreError> {
        let store = MongoReadStore {
            db: db.clone(),
            timeout: settings.operation_timeout,
            cases: db.collection("cases"),
            timeline: db.collection("timeline"),
            checkpoints: db.collection("checkpoints"),
            commands: db.collection("commands"),
            files: db.collection("files"),
        };
        ensure_indexes(&store.cases, case_indexes(), store.timeout).await?;
        ensure_indexes(
            &store.timeline,
            vec![index("case", doc! {"tenant": 1, "caseId": 1, "revision": 1}, false)],
            store.timeout,
        )
        .await?;
        for kind in ["definitions", "calendars"] {
            ensure_indexes(
                &store.db.collection::<Document>(kind),
                vec![index("definition", doc! {"tenant": 1, "id": 1, "version": -1}, true)],
                store.timeout,
            )
            .await?;
        }
        ensure_indexes(
            &store.db.collection("commands"),
            vec![index("unfinished", doc! {"caseId": 1, "tenant": 1, "status": 1}, false)],
            store.timeout,
        )
        .await?;
        ensure_indexes(
            &store.files,
            vec![index("sweep", doc! {"state": 1, "uploadedAt": 1}, false)],
            store.timeout,
        )
        .await?;
        store.upgrade_layout().await?;
        Ok(store)
    }

    /// Projections are derived from the log: when their layout changed (2
    /// added confidentiality, requester, creator and public search fields),
    /// they are dropped and the projector rebuilds them from position 0.
    async fn upgrade_layout(&self) -> Result<(), StoreError> {
        let marker = doc! {"_id": LAYOUT_ID};
        let stored = self
            .checkpoints
            .find_one(marker.clone())
            .bounded(self.timeout)
            .await?
            .and_then(|d| d.get_i64("version").ok())
            .unwrap_or(0);
        if stored >= PROJECTION_VERSION {
            return Ok(());
        }
        if self.cases.estimated_document_count().bounded(self.timeout).await? > 0 {
            tracing::warn!(
                from = stored,
                to = PROJECTION_VERSION,
                "The read model's layout changed; dropping the projections, which the projector rebuilds from the event log"
            );
        }
        self.reset_projections().await?;
        self.checkpoints
            .update_one(marker, doc! {"$set": {"version": PROJECTION_VERSION}})
            .upsert(true)
            .bounded(self.timeout)
            .await?;
        Ok(())
    }

    async fn one_case(&self, filter: Document) -> Result<Option<Case>, StoreError> {
        let found = self
            .cases
            .find_one(filter)
            .projection(doc! {"doc": 1})
            .bounded(self.timeout)
            .await?;
        found.map(|d| from_json(d.get_str("doc").map_err(corrupt)?)).transpose()
    }

    /// Stores a case's state if its revision is newer than the stored
    /// one; returns whether it did.
    async fn put_case(&self, case: &Case) -> Result<bool, StoreError> {
        let summary = CaseSummary::of(case);
        let fields = doc! {
            "tenant": case.tenant.as_str(),
            "id": case.id.to_string(),
            "key": case.key.as_str(),
            "definitionId": &case.definition_id,
            "title": &case.title,
            "stage": &case.stage,
            "status": case.status.as_str(),
            "priority": &case.priority,
            "queue": case.queue.as_str(),
            "assignee": case.assignee.as_deref().map_or(Bson::Null, |a| Bson::String(a.to_owned())),
            "tags": case.tags.iter().map(Tag::as_str).collect::<Vec<_>>(),
            "createdAt": sortable_time(summary.created_at),
            "updatedAt": sortable_time(summary.updated_at),
            "revision": i64_of(case.revision),
            "words": search_words(case, true),
            "publicWords": search_words(case, false),
            "confidential": case.confidential,
            "requesterEmail": case.requester.as_ref().map_or(Bson::Null, |r| Bson::String(r.email.as_str().to_owned())),
            "createdBy": &case.created_by,
            // What a task query narrows the cases by; the tasks themselves
            // are read from `doc`.
            "tasks": case.tasks.iter().map(|t| doc! {
                "id": t.id.to_string(),
                "kind": serde_json::to_value(t.kind).ok().and_then(|v| v.as_str().map(str::to_owned)),
                "state": t.state.as_str(),
                "topic": t.topic.as_deref().map_or(Bson::Null, |x| Bson::String(x.to_owned())),
                "assignee": t.assignee.as_deref().map_or(Bson::Null, |x| Bson::String(x.to_owned())),
            }).collect::<Vec<_>>(),
            // How a reply finds its case.
            "messageIds": &case.mail.message_ids,
            "summary": to_json(&summary)?,
            "doc": to_json(case)?,
        };
        // Matches only an older revision; when a newer or equal one is
        // stored, the upsert tries to insert the same _id and fails E11000.
        // `$set` names only the projector's fields, so the scheduler's SLA
        // fields survive a new state; a new document gets their defaults.
        let result = self
            .cases
            .update_one(
                doc! {"_id": case_id(&case.tenant, case.id), "revision": {"$lt": i64_of(case.revision)}},
                doc! {"$set": fields, "$setOnInsert": crate::sla::on_insert()},
            )
            .upsert(true)
            .within(self.timeout)
            .await?;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate_key(&e) => Ok(false),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn find_command(&self, id: Uuid) -> Result<Option<CommandRecord>, StoreError> {
        self.commands
            .find_one(doc! {"_id": id.to_string()})
            .bounded(self.timeout)
            .await?
            .map(CommandDoc::record)
            .transpose()
    }
}

/// Timeline entries per `insert_many`: well under the 16 MiB message.
const INSERT_CHUNK: usize = 1_000;

/// A timeline document: `_id` = tenant, case and zero-padded revision.
fn timeline_entry(event: &EventRecord) -> Result<Document, StoreError> {
    Ok(doc! {
        "_id": format!("{}:{}:{:020}", event.tenant, event.case_id, event.revision),
        "tenant": event.tenant.as_str(),
        "caseId": event.case_id.to_string(),
        "revision": i64_of(event.revision),
        "record": to_json(event)?,
    })
}

/// An unordered `insert_many` whose only failures are entries already
/// stored: everything else went in.
fn only_duplicates(e: &mongodb::error::Error) -> bool {
    const DUPLICATE_KEY: i32 = 11000;
    match e.kind.as_ref() {
        mongodb::error::ErrorKind::InsertMany(m) => {
            m.write_concern_error.is_none()
                && m.write_errors
                    .as_ref()
                    .is_some_and(|errors| errors.iter().all(|w| w.code == DUPLICATE_KEY))
        }
        _ => is_duplicate_key(e),
    }
}

/// The document field the list sorts by under `key`: its values are
/// [`CaseSummary::sort_value`]'s, so a cursor compares with it directly.
fn sort_field(key: SortKey) -> &'static str {
    match key {
        SortKey::UpdatedAt => "updatedAt",
        SortKey::CreatedAt => "createdAt",
        SortKey::Key => "key",
        SortKey::SlaDue => crate::sla::DUE,
    }
}

/// The case list's filter: the tenant, the query's fields, visibility,
/// words, SLA state and the cursor; `None` when nothing can match.
fn list_filter(tenant: &TenantId, query: &CaseQuery) -> Option<Document> {
    let mut filter = doc! {"tenant": tenant.as_str()};
    for (field, value) in [
        ("stage", query.stage.as_deref()),
        ("queue", query.queue.as_ref().map(QueueName::as_str)),
        ("assignee", query.assignee.as_deref()),
        ("priority", query.priority.as_deref()),
        ("status", query.status.as_deref()),
        ("definitionId", query.definition.as_deref()),
        ("tags", query.tag.as_ref().map(Tag::as_str)),
    ] {
        if let Some(v) = value {
            filter.insert(field, v);
        }
    }
    if query.unassigned {
        // Null matches a missing field too.
        filter.insert("assignee", Bson::Null);
    }
    let mut and = Vec::new();
    if let Some(clauses) = &query.visible {
        and.push(visibility(clauses));
    }
    if let Some(text) = &query.text {
        let terms: Vec<String> = words(text).collect();
        if terms.is_empty() {
            // Only punctuation: nothing can match.
            return None;
        }
        // Words are alphanumeric only, so they hold no regex syntax.
        for term in terms {
            let field = if query.public_text_only { "publicWords" } else { "words" };
            and.push(doc! {field: Regex { pattern: format!("^{term}"), options: String::new() }});
        }
    }
    if let Some((state, now)) = query.sla {
        and.push(crate::sla::state_filter(state, now));
    }
    if let Some(after) = &query.after {
        let field = sort_field(query.sort);
        let cmp = if query.descending { "$lt" } else { "$gt" };
        and.push(doc! {"$or": [
            {field: {cmp: &after.value}},
            {field: &after.value, "id": {cmp: after.id.to_string()}},
        ]});
    }
    if !and.is_empty() {
        filter.insert("$and", and);
    }
    Some(filter)
}

#[async_trait]
impl CaseProjection for MongoReadStore {
    async fn apply_case(&self, case: &Case, event: &EventRecord) -> Result<bool, StoreError> {
        // The timeline entry first: if we crash before the case is written,
        // redelivery finds the entry there (ignored) and writes the case.
        match self
            .timeline
            .insert_one(timeline_entry(event)?)
            .within(self.timeout)
            .await?
        {
            Ok(_) => {}
            Err(e) if is_duplicate_key(&e) => {}
            Err(e) => return Err(map_err(e)),
        }
        self.put_case(case).await
    }

    /// Every timeline entry in one `insert_many`, then each case's last
    /// state: the same result as one by one, in far fewer round trips.
    async fn apply_cases(&self, batch: &[(Case, EventRecord)]) -> Result<Vec<bool>, StoreError> {
        let events: Vec<EventRecord> = batch.iter().map(|(_, e)| e.clone()).collect();
        self.add_timeline(&events).await?;
        let mut last = HashMap::new();
        for (n, (case, _)) in batch.iter().enumerate() {
            last.insert((case.tenant.clone(), case.id), n);
        }
        let mut applied = HashMap::new();
        for (key, n) in &last {
            applied.insert(key.clone(), self.put_case(&batch[*n].0).await?);
        }
        Ok(batch
            .iter()
            .map(|(case, _)| applied.get(&(case.tenant.clone(), case.id)).copied().unwrap_or(false))
            .collect())
    }

    /// Unordered `insert_many`s; entries already there are duplicates,
    /// which is fine.
    async fn add_timeline(&self, events: &[EventRecord]) -> Result<(), StoreError> {
        for chunk in events.chunks(INSERT_CHUNK) {
            let docs = chunk.iter().map(timeline_entry).collect::<Result<Vec<_>, _>>()?;
            match self
                .timeline
                .insert_many(docs)
                .ordered(false)
                .within(self.timeout)
                .await?
            {
                Ok(_) => {}
                Err(e) if only_duplicates(&e) => {}
                Err(e) => return Err(map_err(e)),
            }
        }
        Ok(())
    }

    async fn put_cases(&self, cases: &[Case]) -> Result<(), StoreError> {
        for case in cases {
            self.put_case(case).await?;
        }
        Ok(())
    }

    async fn get_case(&self, tenant: &TenantId, id: Uuid) -> Result<Option<Case>, StoreError> {
        self.one_case(doc! {"_id": case_id(tenant, id)}).await
    }

    async fn get_case_by_key(&self, tenant: &TenantId, key: &CaseKey) -> Result<Option<Case>, StoreError> {
        self.one_case(doc! {"tenant": tenant.as_str(), "key": key.as_str()})
            .await
    }

    async fn list_cases(&self, tenant: &TenantId, query: &CaseQuery) -> Result<Page<CaseSummary>, StoreError> {
        let Some(filter) = list_filter(tenant, query) else {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        };
        let field = sort_field(query.sort);
        let dir = if query.descending { -1 } else { 1 };
        let limit = query.limit.clamp(1, 500);
        let mut cursor = self
            .cases
            .find(filter)
            .sort(doc! {field: dir, "id": dir})
            .limit(i64_of(limit as u64 + 1))
            .projection(doc! {"summary": 1, crate::sla::DUE_AT: 1})
            .bounded(self.timeout)
            .await?;
        let mut items = Vec::new();
        while let Some(d) = cursor.try_next().bounded(self.timeout).await? {
            let mut summary = from_json::<CaseSummary>(d.get_str("summary").map_err(corrupt)?)?;
            // The stored summary is the projector's, which has no due time.
            summary.sla_due_at = crate::sla::due_at(&d)?;
            items.push(summary);
        }
        Ok(Page::of_overfetch(items, limit, query.sort))
    }

    async fn timeline(&self, tenant: &TenantId, id: Uuid) -> Result<Vec<EventRecord>, StoreError> {
        let docs: Vec<Document> = self
            .timeline
            .find(doc! {"tenant": tenant.as_str(), "caseId": id.to_string()})
            .sort(doc! {"revision": 1})
            .bounded(self.timeout)
            .await?
            .try_collect()
            .bounded(self.timeout)
            .await?;
        docs.iter()
            .map(|d| from_json(d.get_str("record").map_err(corrupt)?))
            .collect()
    }

    async fn case_by_message_id(&self, tenant: &TenantId, message_ids: &[String]) -> Result<Option<Uuid>, StoreError> {
        if message_ids.is_empty() {
            return Ok(None);
        }
        let found = self
            .cases
            .find_one(doc! {"tenant": tenant.as_str(), "messageIds": {"$in": message_ids.to_vec()}})
            .sort(doc! {"updatedAt": -1})
            .projection(doc! {"id": 1})
            .bounded(self.timeout)
            .await?;
        found
            .map(|d| {
                let id = d.get_str("id").map_err(corrupt)?;
                id.parse().map_err(|_| StoreError::Corrupt(format!("case id {id}")))
            })
            .transpose()
    }

    async fn list_tasks(&self, tenant: &TenantId, query: &TaskQuery) -> Result<Vec<TaskItem>, StoreError> {
        let mut task = Document::new();
        if let Some(id) = query.task_id {
            task.insert("id", id.to_string());
        }
        if let Some(kind) = query.kind {
            let kind = serde_json::to_value(kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned));
            task.insert("kind", kind);
        }
        if let Some(states) = &query.states {
            task.insert(
                "state",
                doc! {"$in": states.iter().map(|s| s.as_str()).collect::<Vec<_>>()},
            );
        }
        if query.lockable_at.is_some() {
            task.insert("state", TaskState::Created.as_str());
        }
        if let Some(topics) = &query.topics {
            task.insert("topic", doc! {"$in": topics.clone()});
        }
        if let Some(assignee) = &query.assignee {
            task.insert("assignee", assignee.as_str());
        }
        let mut filter = doc! {"tenant": tenant.as_str(), "tasks": {"$elemMatch": task}};
        if let Some(id) = query.case_id {
            filter.insert("id", id.to_string());
        }
        if let Some(clauses) = &query.visible {
            filter.insert("$and", vec![visibility(clauses)]);
        }
        let docs: Vec<Document> = self
            .cases
            .find(filter)
            .limit(i64_of(TASK_SCAN_CASES as u64))
            .projection(doc! {"doc": 1})
            .bounded(self.timeout)
            .await?
            .try_collect()
            .bounded(self.timeout)
            .await?;
        let cases = docs
            .iter()
            .map(|d| from_json::<Case>(d.get_str("doc").map_err(corrupt)?))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(query.select(cases))
    }

    async fn reset_projections(&self) -> Result<(), StoreError> {
        self.cases.delete_many(doc! {}).bounded(self.timeout).await?;
        self.timeline.delete_many(doc! {}).bounded(self.timeout).await?;
        self.checkpoints
            .delete_many(doc! {"_id": Regex { pattern: "^projector".into(), options: String::new() }})
            .bounded(self.timeout)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl CommandLog for MongoReadStore {
    async fn insert_command(&self, record: &CommandRecord) -> Result<(), StoreError> {
        match self
            .commands
            .insert_one(CommandDoc::of(record)?)
            .within(self.timeout)
            .await?
        {
            Ok(_) => Ok(()),
            // Accepted before (a client retry): the first record stands.
            Err(e) if is_duplicate_key(&e) => Ok(()),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn get_command(&self, id: Uuid) -> Result<Option<CommandRecord>, StoreError> {
        self.find_command(id).await
    }

    async fn claim_command(&self, id: Uuid) -> Result<ClaimResult, StoreError> {
        let claimed = self
            .commands
            .find_one_and_update(
                doc! {"_id": id.to_string(), "status": {"$in": ["pending", "processing"]}},
                doc! {"$set": {"status": "processing"}},
            )
            .bounded(self.timeout)
            .await?;
        if claimed.is_some() {
            return Ok(ClaimResult::Claimed);
        }
        Ok(match self.find_command(id).await? {
            None => ClaimResult::Unknown,
            Some(rec) if rec.status == CommandStatus::Cancelled => ClaimResult::Cancelled,
            Some(rec) if rec.status.is_final() => ClaimResult::Finished(rec),
            // Moved back to pending between the two reads: nothing does that.
            Some(_) => ClaimResult::Claimed,
        })
    }

    async fn cancel_command(&self, id: Uuid) -> Result<CancelResult, StoreError> {
        let cancelled = self
            .commands
            .find_one_and_update(
                doc! {"_id": id.to_string(), "status": "pending"},
                doc! {"$set": {"status": "cancelled", "finishedAt": time_text(chrono::Utc::now())}},
            )
            .return_document(ReturnDocument::After)
            .bounded(self.timeout)
            .await?;
        if let Some(doc) = cancelled {
            return Ok(CancelResult::Cancelled(doc.record()?));
        }
        Ok(match self.find_command(id).await? {
            Some(rec) => CancelResult::NotPending(rec),
            None => CancelResult::NotFound,
        })
    }

    async fn has_unfinished_commands(&self, tenant: &TenantId, case_id: Uuid) -> Result<bool, StoreError> {
        let found = self
            .db
            .collection::<Document>("commands")
            .find_one(doc! {
                "caseId": case_id.to_string(),
                "tenant": tenant.as_str(),
                "status": {"$in": [status_str(CommandStatus::Pending), status_str(CommandStatus::Processing)]},
            })
            .projection(doc! {"_id": 1})
            .bounded(self.timeout)
            .await?;
        Ok(found.is_some())
    }

    async fn finish_command(&self, record: &CommandRecord) -> Result<(), StoreError> {
        self.commands
            .replace_one(doc! {"_id": record.id.to_string()}, CommandDoc::of(record)?)
            .upsert(true)
            .bounded(self.timeout)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl FileCatalog for MongoReadStore {
    async fn insert_file(&self, file: &FileRecord) -> Result<(), StoreError> {
        self.files.insert_one(file_doc(file)?).bounded(self.timeout).await?;
        Ok(())
    }

    async fn complete_file(&self, file: &FileRecord) -> Result<bool, StoreError> {
        let r = self
            .files
            .replace_one(
                doc! {"_id": case_id(&file.tenant, file.id), "state": "pending"},
                file_doc(file)?,
            )
            .bounded(self.timeout)
            .await?;
        Ok(r.matched_count == 1)
    }

    async fn get_file(&self, tenant: &TenantId, id: Uuid) -> Result<Option<FileRecord>, StoreError> {
        self.files
            .find_one(doc! {"_id": case_id(tenant, id)})
            .bounded(self.timeout)
            .await?
            .map(|d| file_of(&d))
            .transpose()
    }

    async fn pin_file(&self, tenant: &TenantId, id: Uuid) -> Result<bool, StoreError> {
        let r = self
            .files
            .update_one(
                doc! {"_id": case_id(tenant, id), "state": {"$in": ["uploaded", "pinned"]}},
                doc! {"$set": {"state": "pinned"}},
            )
            .bounded(self.timeout)
            .await?;
        Ok(r.matched_count == 1)
    }

    async fn unpin_file(
        &self,
        tenant: &TenantId,
        id: Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError> {
        let r = self
            .files
            .update_one(
                doc! {"_id": case_id(tenant, id), "state": "pinned", "cases": {"$size": 0}, "detachedAt": Bson::Null},
                doc! {"$set": {"state": "uploaded", "uploadedAt": sortable_time(now)}},
            )
            .bounded(self.timeout)
            .await?;
        Ok(r.matched_count == 1)
    }

    async fn link_file(
        &self,
        tenant: &TenantId,
        id: Uuid,
        case: Uuid,
        attached: bool,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        let key = case_id(tenant, id);
        if attached {
            self.files
                .update_one(
                    doc! {"_id": &key},
                    doc! {"$addToSet": {"cases": case.to_string()}, "$set": {"detachedAt": Bson::Null}},
                )
                .bounded(self.timeout)
                .await?;
            // An attachment is a pin, even if the API's pin was lost.
            self.files
                .update_one(
                    doc! {"_id": &key, "state": "uploaded"},
                    doc! {"$set": {"state": "pinned"}},
                )
                .bounded(self.timeout)
                .await?;
        } else {
            let r = self
                .files
                .update_one(
                    doc! {"_id": &key, "cases": case.to_string()},
                    doc! {"$pull": {"cases": case.to_string()}},
                )
                .bounded(self.timeout)
                .await?;
            // Only the removal that emptied the list stamps the time, so a
            // redelivered removal keeps the first one.
            if r.modified_count == 1 {
                self.files
                    .update_one(
                        doc! {"_id": &key, "cases": {"$size": 0}},
                        doc! {"$set": {"detachedAt": time_text(at)}},
                    )
                    .bounded(self.timeout)
                    .await?;
            }
        }
        Ok(())
    }

    async fn claim_unattached_files(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<Vec<FileRecord>, StoreError> {
        let candidates: Vec<Document> = self
            .files
            .find(doc! {"$or": [
                {"state": {"$in": ["uploaded", "pending"]}, "uploadedAt": {"$lt": sortable_time(cutoff)}},
                {"state": "sweeping"},
            ]})
            .sort(doc! {"uploadedAt": 1})
            .limit(i64_of(limit as u64))
            .bounded(self.timeout)
            .await?
            .try_collect()
            .bounded(self.timeout)
            .await?;
        let mut claimed = Vec::new();
        for d in candidates {
            // Conditional, so a pin that won the race keeps its file.
            let r = self
                .files
                .update_one(
                    doc! {"_id": d.get("_id").cloned().unwrap_or(Bson::Null), "state": {"$in": ["uploaded", "pending", "sweeping"]}},
                    doc! {"$set": {"state": "sweeping"}},
                )
                .bounded(self.timeout)
                .await?;
            if r.matched_count == 1 {
                let mut f = file_of(&d)?;
                f.state = FileState::Sweeping;
                claimed.push(f);
            }
        }
        Ok(claimed)
    }

    async fn claim_detached_files(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<Vec<FileRecord>, StoreError> {
        let candidates: Vec<Document> = self
            .files
            .find(doc! {"$or": [
                {"state": "pinned", "cases": {"$size": 0}, "detachedAt": {"$lt": time_text(cutoff)}},
                {"state": "purging"},
            ]})
            .limit(i64_of(limit as u64))
            .bounded(self.timeout)
            .await?
            .try_collect()
            .bounded(self.timeout)
            .await?;
        let mut claimed = Vec::new();
        for d in candidates {
            // Conditional, so an attach that pinned it again keeps its bytes.
            let r = self
                .files
                .update_one(
                    doc! {"$or": [
                        {"_id": d.get("_id").cloned().unwrap_or(Bson::Null), "state": "pinned", "cases": {"$size": 0}},
                        {"_id": d.get("_id").cloned().unwrap_or(Bson::Null), "state": "purging"},
                    ]},
                    doc! {"$set": {"state": "purging"}},
                )
                .bounded(self.timeout)
                .await?;
            if r.matched_count == 1 {
                let mut f = file_of(&d)?;
                f.state = FileState::Purging;
                claimed.push(f);
            }
        }
        Ok(claimed)
    }

    async fn mark_purged(&self, tenant: &TenantId, id: Uuid) -> Result<(), StoreError> {
        self.files
            .update_one(doc! {"_id": case_id(tenant, id)}, doc! {"$set": {"state": "purged"}})
            .bounded(self.timeout)
            .await?;
        Ok(())
    }

    async fn delete_file(&self, tenant: &TenantId, id: Uuid) -> Result<(), StoreError> {
        self.files
            .delete_one(doc! {"_id": case_id(tenant, id)})
            .bounded(self.timeout)
            .await?;
        Ok(())
    }
}

impl MongoReadStore {
    /// Stores `value` as the next version of its id in its collection.
    async fn put_versioned<T: Versioned>(&self, tenant: &TenantId, value: &T) -> Result<T, StoreError> {
        let collection = self.db.collection::<Document>(T::KIND);
        // Two imports of the same id race for the next version; the unique
        // index lets one win and the other takes the version after it.
        for _ in 0..5 {
            let newest = collection
                .find_one(doc! {"tenant": tenant.as_str(), "id": value.id()})
                .sort(doc! {"version": -1})
                .projection(doc! {"version": 1})
                .bounded(self.timeout)
                .await?;
            let last = match newest {
                Some(d) => d.get_i64("version").map_err(corrupt)?,
                None => 0,
            };
            let version = u32::try_from(last + 1).map_err(corrupt)?;
            let mut stored = value.clone();
            stored.set_version(version);
            let entry = doc! {
                "_id": format!("{tenant}:{}:{version}", value.id()),
                "tenant": tenant.as_str(),
                "id": value.id(),
                "version": i64::from(version),
                "doc": to_json(&stored)?,
            };
            match collection.insert_one(entry).within(self.timeout).await? {
                Ok(_) => return Ok(stored),
                Err(e) if is_duplicate_key(&e) => continue,
                Err(e) => return Err(map_err(e)),
            }
        }
        Err(StoreError::Backend(format!(
            "{} {} is being imported concurrently; try again",
            T::KIND,
            value.id()
        )))
    }

    /// A given version of `id`, or its newest.
    async fn get_versioned<T: Versioned>(
        &self,
        tenant: &TenantId,
        id: &str,
        version: Option<u32>,
    ) -> Result<Option<T>, StoreError> {
        let mut filter = doc! {"tenant": tenant.as_str(), "id": id};
        if let Some(v) = version {
            filter.insert("version", i64::from(v));
        }
        let found = self
            .db
            .collection::<Document>(T::KIND)
            .find_one(filter)
            .sort(doc! {"version": -1})
            .bounded(self.timeout)
            .await?;
        found.map(|d| from_json(d.get_str("doc").map_err(corrupt)?)).transpose()
    }

    /// The newest version of every id, by id.
    async fn list_versioned<T: Versioned>(&self, tenant: &TenantId) -> Result<Vec<T>, StoreError> {
        let docs: Vec<Document> = self
            .db
            .collection::<Document>(T::KIND)
            .find(doc! {"tenant": tenant.as_str()})
            .sort(doc! {"id": 1, "version": -1})
            .bounded(self.timeout)
            .await?
            .try_collect()
            .bounded(self.timeout)
            .await?;
        let mut out: Vec<T> = Vec::new();
        for d in docs {
            let value: T = from_json(d.get_str("doc").map_err(corrupt)?)?;
            // Sorted by id, newest version first: keep the first of each id.
            if out.last().is_none_or(|prev| prev.id() != value.id()) {
                out.push(value);
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl DefinitionStore for MongoReadStore {
    async fn put_definition(
        &self,
        tenant: &TenantId,
        definition: &CaseDefinition,
    ) -> Result<CaseDefinition, StoreError> {
        self.put_versioned(tenant, definition).await
    }

    async fn get_definition(
        &self,
        tenant: &TenantId,
        id: &str,
        version: Option<u32>,
    ) -> Result<Option<CaseDefinition>, StoreError> {
        self.get_versioned(tenant, id, version).await
    }

    async fn list_definitions(&self, tenant: &TenantId) -> Result<Vec<CaseDefinition>, StoreError> {
        self.list_versioned(tenant).await
    }

    async fn put_calendar(
        &self,
        tenant: &TenantId,
        calendar: &BusinessCalendar,
    ) -> Result<BusinessCalendar, StoreError> {
        self.put_versioned(tenant, calendar).await
    }

    async fn get_calendar(
        &self,
        tenant: &TenantId,
        id: &str,
        version: Option<u32>,
    ) -> Result<Option<BusinessCalendar>, StoreError> {
        self.get_versioned(tenant, id, version).await
    }

    async fn list_calendars(&self, tenant: &TenantId) -> Result<Vec<BusinessCalendar>, StoreError> {
        self.list_versioned(tenant).await
    }
}

#[async_trait]
impl Checkpoints for MongoReadStore {
    async fn checkpoint(&self, consumer: &str) -> Result<Option<u64>, StoreError> {
        let found = self
            .checkpoints
            .find_one(doc! {"_id": consumer})
            .bounded(self.timeout)
            .await?;
        found
            .map(|d| u64_of(d.get_i64("position").map_err(corrupt)?))
            .transpose()
    }

    async fn save_checkpoint(&self, consumer: &str, position: u64) -> Result<(), StoreError> {
        self.checkpoints
            .update_one(doc! {"_id": consumer}, doc! {"$set": {"position": i64_of(position)}})
            .upsert(true)
            .bounded(self.timeout)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl ReadStore for MongoReadStore {
    async fn ping(&self) -> Result<(), StoreError> {
        crate::ping(self.db.client(), self.timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_fold_case_and_diacritics_and_drop_punctuation() {
        assert_eq!(
            words("Müller's KETTLE, leaks!").collect::<Vec<_>>(),
            vec!["muller", "s", "kettle", "leaks"]
        );
        assert_eq!(words("\"a\" OR (b").collect::<Vec<_>>(), vec!["a", "or", "b"]);
        assert_eq!(words("--- ()").count(), 0);
    }
}
