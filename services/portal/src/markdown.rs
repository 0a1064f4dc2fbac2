//! Comments are Markdown (CommonMark with tables and strikethrough),
//! rendered safely: raw HTML in a comment is shown as text, link targets
//! other than http(s), mailto and the portal's own paths are dropped, and
//! images become links (the CSP would block a foreign image anyway, and a
//! tracking pixel in a comment should not load when a case is opened).

use pulldown_cmark::{CowStr, Event, LinkType, Options, Parser, Tag, TagEnd, html};

/// Whether a link target is safe to put in an `href`.
fn safe_target(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("http://")
        || lower.starts_with("https://")
        || lower.starts_with("mailto:")
        || (lower.starts_with('/') && !lower.starts_with("//"))
        || lower.starts_with('#')
}

/// A link to `dest_url` if it is safe, to `#` otherwise.
fn link<'a>(link_type: LinkType, dest_url: CowStr<'a>, title: CowStr<'a>, id: CowStr<'a>) -> Event<'a> {
    let dest_url = if safe_target(&dest_url) {
        dest_url
    } else {
        CowStr::from("#")
    };
    Event::Start(Tag::Link {
        link_type,
        dest_url,
        title,
        id,
    })
}

/// `text` as Markdown, to HTML that can go into the page as it is.
pub fn render(text: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let events = Parser::new_ext(text, options).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => link(link_type, dest_url, title, id),
        Event::Start(Tag::Image {
            dest_url, title, id, ..
        }) => link(LinkType::Inline, dest_url, title, id),
        Event::End(TagEnd::Image) => Event::End(TagEnd::Link),
        other => other,
    });
    let mut out = String::new();
    html::push_html(&mut out, events);
    out
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn markdown_is_rendered() {
        assert_eq!(
            render("**bold** and `code`"),
            "<p><strong>bold</strong> and <code>code</code></p>\n"
        );
        assert!(render("- a\n- b").contains("<li>a</li>"));
    }

    #[test]
    fn raw_html_is_shown_as_text() {
        let out = render("<script>alert(1)</script> <img src=x onerror=alert(1)>");
        assert!(!out.contains("<script") && !out.contains("<img"), "{out}");
        assert!(out.contains("&lt;script&gt;"), "{out}");
    }

    #[test]
    fn unsafe_link_targets_are_dropped() {
        let out = render("[click](javascript:alert(1)) [data](data:text/html,x) [ok](https://example.com/a)");
        assert!(!out.contains("javascript:") && !out.contains("data:"), "{out}");
        assert!(out.contains("href=\"https://example.com/a\""), "{out}");
    }

    #[test]
    fn images_become_links() {
        let out = render("![pixel](https://tracker.example/p.gif)");
        assert!(
            !out.contains("<img") && out.contains("<a href=\"https://tracker.example/p.gif\">pixel</a>"),
            "{out}"
        );
    }
}
