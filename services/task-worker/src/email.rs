//! `casewire.email`: one e-mail from a template. Variables: `to`
//! (`requester`, the default, or an address of a domain in
//! `task_worker.email_domains`), and either `template` (a built-in kind:
//! `assigned`, `queue`, `comment`, `resolved`, `watch`) or `subject` and
//! `text` (and optionally `html`), minijinja templates over `case` (as the
//! worker may read it) and `variables`. The `Message-ID` derives from the
//! task, so a repeat after a crash is recognisable; replies thread under
//! the case like its notifications.

use casewire_camunda::LockedTask;
use casewire_notify::mail::{MailError, Outgoing};
use casewire_notify::render::{render, render_template};
use serde_json::{Value, json};

use crate::{Outcome, Worker, case_of, text_var};

pub(crate) async fn handle(worker: &Worker, task: &LockedTask) -> Outcome {
    match send(worker, task).await {
        Ok(output) => Outcome::Done(output),
        Err(outcome) => outcome,
    }
}

async fn send(worker: &Worker, task: &LockedTask) -> Result<Value, Outcome> {
    let case = case_of(worker, task).await?;
    let to = recipient(worker, task, &case)?;
    let ctx = json!({"case": case, "variables": task.variables});
    let rendered = match task.variables["template"].as_str() {
        Some(kind) => render(kind, &ctx),
        None => render_template(
            text_var(task, "subject")?,
            text_var(task, "text")?,
            task.variables["html"].as_str(),
            &ctx,
        ),
    }
    .map_err(|e| Outcome::Incident(format!("the template does not render: {e}")))?;
    let Some(mailer) = &worker.mailer else {
        return Err(Outcome::Retry("no SMTP server is configured (notify.smtp_url)".into()));
    };
    let domain = &worker.mail.message_id_domain;
    let message_id = format!("<task-{}@{domain}>", task.id);
    let out = Outgoing {
        from: &worker.mail.from,
        to: &to,
        message: &rendered,
        message_id: message_id.clone(),
        references: format!("<case-{}@{domain}>", task.process_instance_id),
        in_reply_to: None,
        cc: Vec::new(),
        automatic: Some(casewire_notify::mail::Auto::Generated),
        files: Vec::new(),
    };
    mailer.send(out).await.map_err(|e| match e {
        MailError::Permanent(m) => Outcome::Incident(format!("the mail server refused it: {m}")),
        MailError::Transient(m) => Outcome::Retry(format!("sending failed: {m}")),
    })?;
    Ok(json!({"sentTo": to, "messageId": message_id}))
}

/// Who it goes to: the case's requester, or an address the operator
/// allowed by domain. Anyone who may create a task must not turn the
/// worker into an open relay.
fn recipient(worker: &Worker, task: &LockedTask, case: &Value) -> Result<String, Outcome> {
    let to = task.variables["to"].as_str().unwrap_or("requester").trim();
    let requester = case["requester"]["email"].as_str();
    if to == "requester" || requester.is_some_and(|r| r.eq_ignore_ascii_case(to)) {
        return requester
            .map(str::to_owned)
            .ok_or_else(|| Outcome::Incident("the case has no requester e-mail".into()));
    }
    let domain = to.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase());
    let allowed = domain.is_some_and(|d| worker.config.email_domains.iter().any(|a| a.eq_ignore_ascii_case(&d)));
    if allowed {
        Ok(to.to_owned())
    } else {
        Err(Outcome::Incident(format!(
            "'{to}' is neither the requester nor of a domain in task_worker.email_domains"
        )))
    }
}
