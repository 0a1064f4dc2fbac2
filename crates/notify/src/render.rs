//! The built-in templates: a subject, a plain-text and an HTML body per
//! kind (`assigned`, `queue`, `comment`, `received`, `resolved`, `watch`,
//! and a digest).
//! HTML is auto-escaped; a title or comment can not inject markup.

use minijinja::{Environment, context};
use serde::Serialize;
use serde_json::Value;

/// A message ready to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Set when the message answers mail of the case: it is then sent as
    /// a reply in that conversation rather than as a notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<ReplyHeaders>,
}

/// The headers of a reply to the mail of a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ReplyHeaders {
    /// The mailbox's address, so answers come back to it.
    pub from: String,
    /// `<case-<id>.<comment>@domain>`: names the case.
    pub message_id: String,
    /// The newest Message-ID the case received.
    pub in_reply_to: Option<String>,
    /// Other participants, copied.
    #[serde(default)]
    pub cc: Vec<String>,
    /// A machine's answer (the acknowledgement of a new case), marked
    /// `Auto-Submitted: auto-replied`; a person's reply is not marked.
    #[serde(default)]
    pub automatic: bool,
    /// Files of the case the reply carries (the comment's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<ReplyFile>,
    /// The comment it carries; none for an acknowledgement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment_id: Option<uuid::Uuid>,
}

/// A file of the case to attach to a reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ReplyFile {
    pub id: uuid::Uuid,
    pub name: String,
    pub content_type: String,
    pub size: u64,
}

const TEMPLATES: &[(&str, &str)] = &[
    ("assigned.subject", "[{{ case.key }}] assigned to you: {{ case.title }}"),
    (
        "assigned.txt",
        "{{ actor }} assigned {{ case.key }} \"{{ case.title }}\" to you.\n\nStage: {{ case.stage }} · Priority: {{ case.priority }} · Queue: {{ case.queue }}\n{{ link }}\n",
    ),
    (
        "assigned.html",
        "<p>{{ actor }} assigned <a href=\"{{ link }}\">{{ case.key }}</a> “{{ case.title }}” to you.</p><p>Stage: {{ case.stage }} · Priority: {{ case.priority }} · Queue: {{ case.queue }}</p>",
    ),
    (
        "queue.subject",
        "[{{ case.key }}] new in {{ case.queue }}: {{ case.title }}",
    ),
    (
        "queue.txt",
        "{{ case.key }} \"{{ case.title }}\" is now in your queue {{ case.queue }}.\n{{ link }}\n",
    ),
    (
        "queue.html",
        "<p><a href=\"{{ link }}\">{{ case.key }}</a> “{{ case.title }}” is now in your queue {{ case.queue }}.</p>",
    ),
    ("comment.subject", "Re: [{{ case.key }}] {{ case.title }}"),
    (
        "comment.txt",
        "{{ actor }} wrote:\n\n{{ body }}\n\n(reply to this e-mail to answer)\n",
    ),
    (
        "comment.html",
        "<p>{{ actor }} wrote:</p><blockquote>{{ body }}</blockquote>",
    ),
    ("received.subject", "Re: [{{ case.key }}] {{ case.title }}"),
    (
        "received.txt",
        "We received your message and opened case {{ case.key }}, \"{{ case.title }}\".\n\nTo add to it, reply to this e-mail and keep [{{ case.key }}] in the subject.\n\n(This is an automatic answer.)\n",
    ),
    (
        "received.html",
        "<p>We received your message and opened case {{ case.key }}, “{{ case.title }}”.</p><p>To add to it, reply to this e-mail and keep [{{ case.key }}] in the subject.</p><p>(This is an automatic answer.)</p>",
    ),
    ("resolved.subject", "[{{ case.key }}] resolved: {{ case.title }}"),
    (
        "resolved.txt",
        "Your case {{ case.key }} \"{{ case.title }}\" was resolved: {{ resolution }}.\n{% if note %}\n{{ note }}\n{% endif %}",
    ),
    (
        "resolved.html",
        "<p>Your case {{ case.key }} “{{ case.title }}” was resolved: {{ resolution }}.</p>{% if note %}<p>{{ note }}</p>{% endif %}",
    ),
    ("watch.subject", "[{{ case.key }}] {{ event }}: {{ case.title }}"),
    (
        "watch.txt",
        "{{ actor }}: {{ event }} on {{ case.key }} \"{{ case.title }}\".\n{{ link }}\n",
    ),
    (
        "watch.html",
        "<p>{{ actor }}: {{ event }} on <a href=\"{{ link }}\">{{ case.key }}</a> “{{ case.title }}”.</p>",
    ),
    (
        "sla.subject",
        "[{{ case.key }}] {% if event == \"sla-breached\" %}SLA breached{% else %}SLA at risk{% endif %}: {{ case.title }}",
    ),
    (
        "sla.txt",
        "{{ case.key }} \"{{ case.title }}\": {% if event == \"sla-breached\" %}an SLA goal was missed{% else %}an SLA goal is close{% endif %}.\n\nPriority: {{ case.priority }} · Queue: {{ case.queue }} · Assignee: {{ case.assignee or \"nobody\" }}\n{{ link }}\n",
    ),
    (
        "sla.html",
        "<p><a href=\"{{ link }}\">{{ case.key }}</a> “{{ case.title }}”: {% if event == \"sla-breached\" %}an SLA goal was missed{% else %}an SLA goal is close{% endif %}.</p><p>Priority: {{ case.priority }} · Queue: {{ case.queue }} · Assignee: {{ case.assignee or \"nobody\" }}</p>",
    ),
    ("digest.subject", "{{ items|length }} case updates"),
    ("digest.txt", "{% for i in items %}- {{ i.subject }}\n{% endfor %}"),
    (
        "digest.html",
        "<ul>{% for i in items %}<li>{{ i.subject }}</li>{% endfor %}</ul>",
    ),
];

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // Only `.html` templates escape: the names end in `.html`.
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            minijinja::AutoEscape::Html
        } else {
            minijinja::AutoEscape::None
        }
    });
    for (name, source) in TEMPLATES {
        // The templates are ours and tested; a broken one fails every test.
        let _ = env.add_template(name, source);
    }
    env
}

fn one(env: &Environment<'_>, name: &str, ctx: &Value) -> Result<String, minijinja::Error> {
    env.get_template(name)?.render(ctx)
}

/// Renders `kind` (unknown kinds render as `watch`) with `ctx`: `case`
/// (`key`, `title`, `stage`, `priority`, `queue`), `actor`, `event`,
/// `link`, and per kind `body`, `resolution`, `note`.
pub fn render(kind: &str, ctx: &Value) -> Result<Rendered, minijinja::Error> {
    let env = environment();
    let kind = if TEMPLATES.iter().any(|(n, _)| *n == format!("{kind}.subject")) {
        kind
    } else {
        "watch"
    };
    Ok(Rendered {
        subject: one(&env, &format!("{kind}.subject"), ctx)?,
        text: one(&env, &format!("{kind}.txt"), ctx)?,
        html: one(&env, &format!("{kind}.html"), ctx)?,
        reply: None,
    })
}

/// One e-mail for several notifications.
pub fn render_digest(items: &[Rendered]) -> Result<Rendered, minijinja::Error> {
    let env = environment();
    let ctx = serde_json::to_value(context! { items => items }).unwrap_or_default();
    Ok(Rendered {
        subject: one(&env, "digest.subject", &ctx)?,
        text: one(&env, "digest.txt", &ctx)?,
        html: one(&env, "digest.html", &ctx)?,
        reply: None,
    })
}

/// How much work one user-written template may do (minijinja's fuel): a
/// task's variables may carry templates, and a loop must not hang a worker.
const TEMPLATE_FUEL: u64 = 50_000;

/// Renders templates given at run time (a task's `subject`, `text` and
/// optional `html`) with `ctx`. Without `html`, the text is the HTML body,
/// escaped. Errors name the template that failed.
pub fn render_template(
    subject: &str,
    text: &str,
    html: Option<&str>,
    ctx: &Value,
) -> Result<Rendered, minijinja::Error> {
    let mut env = Environment::new();
    env.set_fuel(Some(TEMPLATE_FUEL));
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            minijinja::AutoEscape::Html
        } else {
            minijinja::AutoEscape::None
        }
    });
    env.add_template("subject", subject)?;
    env.add_template("text", text)?;
    env.add_template(
        "fallback.html",
        "<pre style=\"font-family:inherit;white-space:pre-wrap\">{{ text }}</pre>",
    )?;
    if let Some(html) = html {
        env.add_template("body.html", html)?;
    }
    // A subject is one line: a template must not add headers.
    let subject = one(&env, "subject", ctx)?.replace(['\r', '\n'], " ");
    let text = one(&env, "text", ctx)?;
    let html = match html {
        Some(_) => one(&env, "body.html", ctx)?,
        None => one(&env, "fallback.html", &serde_json::json!({"text": text}))?,
    };
    Ok(Rendered {
        subject,
        text,
        html,
        reply: None,
    })
}

/// Whether a definition's template renders: its syntax, filters and
/// work bound, tried on a sample of every kind's context.
pub fn check_template(subject: &str, text: &str, html: Option<&str>) -> Result<(), minijinja::Error> {
    let sample = serde_json::json!({
        "case": {"key": "CMP-000001", "title": "A title", "stage": "new", "priority": "normal", "queue": "support"},
        "actor": "carol", "event": "comment-added", "link": "https://casewire.example/cases/1",
        "body": "A comment", "resolution": "fixed", "note": "A note",
    });
    render_template(subject, text, html, &sample).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Value {
        json!({
            "case": {"key": "CC-000001", "title": "<b>Kettle</b> leaks", "stage": "new", "priority": "normal", "queue": "support"},
            "actor": "carol", "event": "assigned", "link": "http://x/cases/1", "body": "Hi <script>", "resolution": "fixed", "note": null,
        })
    }

    #[test]
    fn every_kind_renders_and_html_is_escaped_but_text_is_not() {
        for kind in [
            "assigned",
            "queue",
            "comment",
            "resolved",
            "watch",
            "sla",
            "something-new",
        ] {
            let r = render(kind, &ctx()).unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert!(r.subject.contains("CC-000001"), "{kind}: {}", r.subject);
            assert!(
                !r.html.contains("<b>Kettle") && !r.html.contains("<script>"),
                "{kind}: {}",
                r.html
            );
        }
        assert!(
            render("comment", &ctx())
                .unwrap_or_else(|e| panic!("{e}"))
                .text
                .contains("Hi <script>")
        );
    }

    #[test]
    fn a_digest_lists_its_items() {
        let items = vec![render("assigned", &ctx()).unwrap_or_else(|e| panic!("{e}")); 3];
        let d = render_digest(&items).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.subject, "3 case updates");
        assert_eq!(d.text.lines().count(), 3);
    }

    #[test]
    fn a_task_template_renders_with_escaped_html_and_a_one_line_subject() {
        let ctx = json!({"case": {"key": "CC-1", "title": "<b>x</b>"}, "variables": {"n": 2}});
        let r = render_template(
            "Re {{ case.key }}\nBcc: x",
            "Hello {{ case.title }} {{ variables.n }}",
            None,
            &ctx,
        );
        let r = r.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.subject, "Re CC-1 Bcc: x");
        assert_eq!(r.text, "Hello <b>x</b> 2");
        assert!(r.html.contains("&lt;b&gt;x") && !r.html.contains("<b>"), "{}", r.html);
        let own = render_template("s", "t", Some("<p>{{ case.title }}</p>"), &ctx).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            own.html.starts_with("<p>&lt;b&gt;x") && !own.html.contains("<b>"),
            "{}",
            own.html
        );
    }

    #[test]
    fn a_runaway_template_runs_out_of_fuel() {
        let r = render_template(
            "s",
            "{% for i in range(100000) %}{% for j in range(100) %}x{% endfor %}{% endfor %}",
            None,
            &json!({}),
        );
        assert!(r.is_err());
        assert!(render_template("{{ broken", "t", None, &json!({})).is_err());
    }
}
