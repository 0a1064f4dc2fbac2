//! The built-in templates: a subject, a plain-text and an HTML body per
//! kind (`assigned`, `queue`, `comment`, `resolved`, `watch`, and a digest).
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
    })
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
        for kind in ["assigned", "queue", "comment", "resolved", "watch", "something-new"] {
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
}
