//! E-mail to case: one raw message in, at most one change of one case out.
//! The mail is parsed (`casewire-email`); what can not be taken is refused
//! with its reason; a bounce marks its recipient on the case it bounced
//! from; anything else joins the case it threads into (`In-Reply-To`,
//! `References`, the subject's `[KEY]`, a plus address, in that order) or
//! opens one. Every id (case, commands, comment, files) derives from the
//! tenant, the Message-ID and the content fingerprint, so the same mail
//! delivered twice (two mailboxes, a restart, a webhook retry) changes
//! nothing the second time, and a different mail that reuses a Message-ID
//! is still a mail of its own.

use std::time::Duration;

use bytes::Bytes;
use casewire_domain::command::{AttachFile, LinkCase, LinkRelation, OpenCase, Requester};
use casewire_domain::email::{MailAddress, MailHeader, ReceiveEmail, RecordBounce, ThreadedBy};
use casewire_domain::types::{EmailAddress, QueueName, TenantId};
use casewire_domain::{Case, CaseCommand, CaseStatus, ErrorCode};
use casewire_email::{Inbound, Quarantine, thread};
use casewire_oidc::Principal;
use casewire_ports::{Action, Resource};
use casewire_runtime::config::{MailboxConfig, Strangers};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::authz;
use crate::error::ApiError;
use crate::quarantine::{self, Why};
use crate::routes::files::{blob_key, record_stored};
use crate::state::AppState;
use crate::submit::submit_once;

/// How long each step waits for the engine.
const STEP_WAIT: Duration = Duration::from_secs(20);
const MAX_TITLE: usize = 200;
const MAX_BODY: usize = 20_000;

/// What became of a mail.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ingested {
    /// `comment` (joined a case), `case` (opened one), `bounce` (marked a
    /// recipient undeliverable), `held` (a stranger's reply, kept in the
    /// quarantine for review) or `ignored` (a bounce of no known case, or
    /// mail from one of our own addresses).
    pub outcome: &'static str,
    pub case_id: Option<Uuid>,
    pub threaded_by: Option<ThreadedBy>,
    /// The case a reply was meant for, when it opened a new case instead
    /// (its sender is no participant, or the case is closed).
    pub linked_to: Option<Uuid>,
    /// Why nothing automatic may answer it, if so.
    pub no_auto_reply: Option<String>,
    /// The quarantine entry of a `held` mail.
    pub quarantine_id: Option<Uuid>,
}

/// What a mail is let in with: nothing waived for mail as it arrives; an
/// admin's release of a held mail vouches for what held it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Admit {
    /// Read with [`casewire_email::Limits::waived`].
    pub waive_limits: bool,
    /// A stranger's reply joins the case it threads into.
    pub vouch_sender: bool,
}

/// Where a mail goes.
enum Placed {
    /// Into this case (opened for it, or joined), and why; with the case it
    /// was meant for when a stranger's reply opened a new one.
    Case(Uuid, ThreadedBy, Option<Uuid>),
    /// Held for review: a stranger's reply to this case.
    Held(Uuid),
}

/// The ids of one mail: the same for every delivery of it.
struct Ids([u8; 32]);

impl Ids {
    fn new(tenant: &TenantId, mail: &Inbound) -> Ids {
        let mut h = Sha256::new();
        for part in [
            tenant.as_str(),
            mail.message_id.as_deref().unwrap_or_default(),
            &mail.fingerprint,
        ] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        Ids(h.finalize().into())
    }

    fn of(&self, what: &str) -> Uuid {
        let mut name = self.0.to_vec();
        name.extend_from_slice(what.as_bytes());
        Uuid::new_v5(&Uuid::NAMESPACE_OID, &name)
    }
}

/// Holds what can not be taken, and answers why.
async fn refuse(
    state: &AppState,
    principal: &Principal,
    mailbox: &MailboxConfig,
    raw: &Bytes,
    q: &Quarantine,
) -> ApiError {
    let why = Why {
        code: q.code().to_owned(),
        message: q.to_string(),
        case_id: None,
    };
    match quarantine::hold(state, &principal.tenant, mailbox, raw, why).await {
        Ok(held) => ApiError::new(ErrorCode::MailQuarantined, q.to_string())
            .with_details(serde_json::json!({"reason": q.code(), "quarantineId": held.id})),
        // Not kept: the caller must deliver it again, so it is no 4xx.
        Err(e) => e,
    }
}

fn nothing(outcome: &'static str, no_auto_reply: Option<String>) -> Ingested {
    Ingested {
        outcome,
        case_id: None,
        threaded_by: None,
        linked_to: None,
        no_auto_reply,
        quarantine_id: None,
    }
}

/// Takes one raw message delivered to `mailbox` by `principal`.
pub async fn ingest(
    state: &AppState,
    principal: &Principal,
    mailbox: &MailboxConfig,
    raw: Bytes,
    admit: Admit,
) -> Result<Ingested, ApiError> {
    let cfg = &state.platform.config.email;
    let limits = if admit.waive_limits {
        cfg.limits().waived()
    } else {
        cfg.limits()
    };
    let mail = match casewire_email::parse(&raw, &limits) {
        Ok(mail) => mail,
        Err(q) => return Err(refuse(state, principal, mailbox, &raw, &q).await),
    };
    let ids = Ids::new(&principal.tenant, &mail);
    let no_auto_reply = casewire_email::guard::no_auto_reply(&mail, &cfg.own()).map(str::to_owned);
    if mail.bounce.is_some() {
        return bounce(state, principal, mailbox, &mail, &ids).await;
    }
    // Our own mail coming back (a forward, a misrouted reply) opens and
    // joins nothing: a case whose requester is our mailbox would mail itself.
    let sender = mail.from.as_ref().map(|f| f.email.clone()).unwrap_or_default();
    if cfg.is_own(&sender) {
        tracing::info!(sender, "Mail from one of our own addresses; ignored");
        return Ok(nothing("ignored", no_auto_reply));
    }
    let (case_id, threaded_by, linked_to) = match taken_before(state, principal, &ids).await? {
        Some(earlier) => earlier,
        None => match thread_or_open(state, principal, mailbox, &mail, &ids, &sender, admit).await? {
            Placed::Case(case, by, link) => (case, Some(by), link),
            Placed::Held(case) => return held_stranger(state, principal, mailbox, &raw, &sender, case).await,
        },
    };
    let files = store_files(state, principal, &mail, &raw, &ids).await?;
    for (i, file) in files.iter().enumerate() {
        let attach = CaseCommand::Attach(AttachFile {
            file_id: *file,
            file: None,
        });
        submit_once(
            state,
            principal,
            case_id,
            attach,
            ids.of(&format!("attach-{i}")),
            STEP_WAIT,
        )
        .await?;
    }
    // A repeat's receive command is known and not sent again, so the
    // threading it would carry does not matter there.
    let by = threaded_by.unwrap_or(ThreadedBy::New);
    let receive = receive_command(mailbox, &mail, by, &files, &ids, no_auto_reply.clone());
    submit_once(state, principal, case_id, receive, ids.of("receive"), STEP_WAIT).await?;
    if let Some(target) = linked_to {
        let link = CaseCommand::Link(LinkCase {
            target,
            relation: LinkRelation::RelatesTo,
        });
        submit_once(state, principal, case_id, link, ids.of("link"), STEP_WAIT).await?;
    }
    tracing::info!(case_id = %case_id, threaded_by = ?threaded_by, "Took a mail");
    Ok(Ingested {
        outcome: if case_id == ids.of("case") { "case" } else { "comment" },
        case_id: Some(case_id),
        threaded_by,
        linked_to,
        no_auto_reply,
        quarantine_id: None,
    })
}

/// A stranger's reply, held for review as the mailbox says.
async fn held_stranger(
    state: &AppState,
    principal: &Principal,
    mailbox: &MailboxConfig,
    raw: &Bytes,
    sender: &str,
    case: Uuid,
) -> Result<Ingested, ApiError> {
    let why = Why {
        code: "unknown-sender".into(),
        message: format!("{sender} is no participant of the case it answers"),
        case_id: Some(case),
    };
    let held = quarantine::hold(state, &principal.tenant, mailbox, raw, why).await?;
    Ok(Ingested {
        linked_to: Some(case),
        quarantine_id: Some(held.id),
        ..nothing("held", Some("held for review".into()))
    })
}

/// Where a mail goes: the case it threads into, or a new one (linked to
/// that case when the sender is no participant of it, or it is closed),
/// or, for a stranger where the mailbox says so, the quarantine.
async fn thread_or_open(
    state: &AppState,
    principal: &Principal,
    mailbox: &MailboxConfig,
    mail: &Inbound,
    ids: &Ids,
    sender: &str,
    admit: Admit,
) -> Result<Placed, ApiError> {
    let found = find_case(state, principal, mailbox, mail).await?;
    let open = |link| async move {
        let case = open_case(state, principal, mailbox, mail, ids).await?;
        Ok::<_, ApiError>(Placed::Case(case, ThreadedBy::New, link))
    };
    match found {
        Some((case, by))
            if case.status != CaseStatus::Closed && (admit.vouch_sender || is_participant(&case, sender)) =>
        {
            Ok(Placed::Case(case.id, by, None))
        }
        Some((case, _)) if case.status != CaseStatus::Closed && mailbox.strangers == Strangers::Hold => {
            Ok(Placed::Held(case.id))
        }
        Some((case, _)) => open(Some(case.id)).await,
        None => open(None).await,
    }
}

/// Where an earlier delivery of the same mail went, once its mail event is
/// accepted: a repeat follows it rather than threading again, since the
/// cases may have moved since (closed, a new key) and the mail's ids belong
/// to the case it joined. `None` for a mail seen first.
async fn taken_before(
    state: &AppState,
    principal: &Principal,
    ids: &Ids,
) -> Result<Option<(Uuid, Option<ThreadedBy>, Option<Uuid>)>, ApiError> {
    let Some(known) = state.platform.reads.get_command(ids.of("receive")).await? else {
        return Ok(None);
    };
    if known.tenant != principal.tenant {
        return Ok(None);
    }
    let opened = known.case_id == ids.of("case");
    let threaded_by = if opened {
        Some(ThreadedBy::New)
    } else {
        earlier_threading(state, known.id).await?
    };
    // A case this mail opened holds at most the one link the mail gave it
    // (one the first delivery died before making is not made again).
    let linked_to = if opened {
        state
            .cases
            .current(&*state.platform.events, &principal.tenant, known.case_id)
            .await?
            .and_then(|c| c.links.first().map(|l| l.target))
    } else {
        None
    };
    Ok(Some((known.case_id, threaded_by, linked_to)))
}

/// How the earlier delivery threaded, from its event; `None` while it is
/// still pending.
async fn earlier_threading(state: &AppState, command: Uuid) -> Result<Option<ThreadedBy>, ApiError> {
    let events = state.platform.events.find_by_command(command).await?;
    Ok(events.iter().find_map(|e| match e.case_event() {
        Ok(casewire_domain::CaseEvent::EmailReceived(r)) => Some(r.threaded_by),
        _ => None,
    }))
}

/// The sender wrote to the case before, was copied, or is its requester.
fn is_participant(case: &Case, sender: &str) -> bool {
    case.mail.is_participant(sender)
        || case
            .requester
            .as_ref()
            .is_some_and(|r| r.email.as_str().eq_ignore_ascii_case(sender))
}

/// A case the caller may put mail into, by id; `None` when there is none.
async fn reachable(state: &AppState, principal: &Principal, id: Uuid) -> Result<Option<Case>, ApiError> {
    let Some(case) = state
        .cases
        .current(&*state.platform.events, &principal.tenant, id)
        .await?
    else {
        return Ok(None);
    };
    let decision = authz::decide(state, principal, Action::MailIngest, Some(&Resource::of(&case))).await?;
    Ok(decision.allow.then_some(case))
}

/// The case a mail threads into, and why, trying the rules in order.
async fn find_case(
    state: &AppState,
    principal: &Principal,
    mailbox: &MailboxConfig,
    mail: &Inbound,
) -> Result<Option<(Case, ThreadedBy)>, ApiError> {
    let domain = &state.platform.config.notify.message_id_domain;
    for (ids, by) in [
        (&mail.in_reply_to, ThreadedBy::InReplyTo),
        (&mail.references, ThreadedBy::References),
    ] {
        // Our own Message-IDs name their case; others are looked up.
        for id in ids.iter().rev() {
            if let Some(case_id) = thread::case_of_message_id(id, domain)
                && let Some(case) = reachable(state, principal, case_id).await?
            {
                return Ok(Some((case, by)));
            }
        }
        if let Some(case_id) = state.platform.reads.case_by_message_id(&principal.tenant, ids).await?
            && let Some(case) = reachable(state, principal, case_id).await?
        {
            return Ok(Some((case, by)));
        }
    }
    let keys = thread::subject_key(&mail.subject)
        .map(|k| (k, ThreadedBy::SubjectTag))
        .into_iter()
        .chain(
            mail.to
                .iter()
                .chain(&mail.cc)
                .filter_map(|r| thread::plus_key(&r.email, &mailbox.address))
                .map(|k| (k, ThreadedBy::PlusAddress)),
        );
    for (key, by) in keys {
        let Ok(key) = casewire_domain::types::CaseKey::parse(&key) else {
            continue;
        };
        if let Some(found) = state.platform.reads.get_case_by_key(&principal.tenant, &key).await?
            && let Some(case) = reachable(state, principal, found.id).await?
        {
            return Ok(Some((case, by)));
        }
    }
    Ok(None)
}

/// Opens the case a mail starts; its id derives from the mail.
async fn open_case(
    state: &AppState,
    principal: &Principal,
    mailbox: &MailboxConfig,
    mail: &Inbound,
    ids: &Ids,
) -> Result<Uuid, ApiError> {
    let case_id = ids.of("case");
    let requester = mail.from.as_ref().and_then(|f| {
        Some(Requester {
            name: f.name.clone(),
            email: EmailAddress::parse(&f.email).ok()?,
        })
    });
    let title: String = match mail.subject.trim() {
        "" => "(no subject)".to_owned(),
        s => s.chars().take(MAX_TITLE).collect(),
    };
    let queue = match &mailbox.queue {
        Some(q) => {
            Some(QueueName::parse(q).map_err(|e| ApiError::new(ErrorCode::Internal, format!("mailbox queue: {e}")))?)
        }
        None => None,
    };
    let open = CaseCommand::Open(OpenCase {
        definition: mailbox.definition.clone(),
        title,
        description: None,
        data: mailbox.data.clone(),
        priority: None,
        queue,
        requester,
        tags: vec![],
        confidential: false,
    });
    submit_once(state, principal, case_id, open, ids.of("open"), STEP_WAIT).await?;
    Ok(case_id)
}

fn address(m: &casewire_email::Mailbox) -> MailAddress {
    MailAddress {
        name: m.name.clone(),
        email: m.email.clone(),
    }
}

fn receive_command(
    mailbox: &MailboxConfig,
    mail: &Inbound,
    threaded_by: ThreadedBy,
    files: &[Uuid],
    ids: &Ids,
    no_auto_reply: Option<String>,
) -> CaseCommand {
    let from = mail.from.as_ref().map(address).unwrap_or(MailAddress {
        name: None,
        email: "unknown@invalid".into(),
    });
    // A mail without a Message-ID gets one from its content, so it can be
    // threaded and told apart like any other.
    let message_id = mail
        .message_id
        .clone()
        .unwrap_or_else(|| format!("{}@casewire.invalid", ids.of("message-id")));
    CaseCommand::ReceiveEmail(ReceiveEmail {
        comment_id: ids.of("comment"),
        mailbox: mailbox.name.clone(),
        message_id,
        fingerprint: mail.fingerprint.clone(),
        from,
        to: mail.to.iter().map(address).take(25).collect(),
        cc: mail.cc.iter().map(address).take(25).collect(),
        subject: mail.subject.chars().take(998).collect(),
        body: mail.comment.chars().take(MAX_BODY).collect(),
        threaded_by,
        // The original is the last file; the others are the mail's parts.
        files: files.iter().take(files.len().saturating_sub(1)).copied().collect(),
        original_file_id: files.last().copied(),
        headers: mail
            .headers
            .iter()
            .take(50)
            .map(|(name, value)| MailHeader {
                name: name.clone(),
                value: value.chars().take(2000).collect(),
            })
            .collect(),
        no_auto_reply,
    })
}

/// Stores the mail's parts and the whole original (`.eml`, last) as files
/// of the caller's tenant; a file already stored (a retry) is kept.
async fn store_files(
    state: &AppState,
    principal: &Principal,
    mail: &Inbound,
    raw: &Bytes,
    ids: &Ids,
) -> Result<Vec<Uuid>, ApiError> {
    let mut out = Vec::new();
    let parts = mail
        .parts
        .iter()
        .map(|p| (p.name.clone(), p.content_type.clone(), Bytes::from(p.bytes.clone())));
    let original = ("original.eml".to_owned(), "message/rfc822".to_owned(), raw.clone());
    for (i, (name, content_type, bytes)) in parts.chain(std::iter::once(original)).enumerate() {
        let id = ids.of(&format!("file-{i}"));
        store_file(state, principal, id, name, content_type, bytes).await?;
        out.push(id);
    }
    Ok(out)
}

async fn store_file(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
    name: String,
    content_type: String,
    bytes: Bytes,
) -> Result<(), ApiError> {
    let tenant = &principal.tenant;
    if state.platform.reads.get_file(tenant, id).await?.is_some() {
        return Ok(());
    }
    let key = blob_key(tenant, id);
    let sha = casewire_email::sha256_hex(&bytes);
    // A blob left by an attempt that died before its record is replaced:
    // the id derives from the mail, so the bytes are the same.
    let stream: casewire_ports::ByteStream = Box::pin(futures::stream::once(async move { Ok(bytes) }));
    let info = state.blobs.put(&key, &content_type, stream, Some(&sha)).await?;
    record_stored(state, principal, id, name, content_type, info).await?;
    Ok(())
}

/// A delivery failure: marks the recipients undeliverable on the case of
/// the mail that bounced; never a comment.
async fn bounce(
    state: &AppState,
    principal: &Principal,
    mailbox: &MailboxConfig,
    mail: &Inbound,
    ids: &Ids,
) -> Result<Ingested, ApiError> {
    let Some(report) = &mail.bounce else {
        return Err(ApiError::new(ErrorCode::Internal, "not a bounce"));
    };
    let mut probe = mail.clone();
    probe.in_reply_to.extend(report.original_message_id.iter().cloned());
    let Some((case, _)) = find_case(state, principal, mailbox, &probe).await? else {
        tracing::info!(recipients = ?report.recipients, "A bounce of no known case; ignored");
        return Ok(nothing("ignored", Some("a bounce".into())));
    };
    let command = CaseCommand::RecordBounce(RecordBounce {
        message_id: mail
            .message_id
            .clone()
            .unwrap_or_else(|| format!("{}@casewire.invalid", ids.of("message-id"))),
        recipients: report.recipients.clone(),
        status: report.status.clone(),
        diagnostic: report.diagnostic.as_ref().map(|d| d.chars().take(1000).collect()),
        original_message_id: report.original_message_id.clone(),
    });
    match submit_once(state, principal, case.id, command, ids.of("bounce"), STEP_WAIT).await {
        Ok(_) => {}
        // Already marked by an earlier bounce.
        Err(e) if e.code == ErrorCode::NoChange => {}
        Err(e) => return Err(e),
    }
    Ok(Ingested {
        case_id: Some(case.id),
        ..nothing("bounce", Some("a bounce".into()))
    })
}
