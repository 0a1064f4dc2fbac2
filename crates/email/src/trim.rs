//! The comment of a mail: what the sender wrote, without the history their
//! client quoted below it or the signature. The full text stays with the
//! original message; this only decides what the case shows as the comment.

/// Lines that start the quoted history in the clients people use.
fn starts_history(line: &str, next: Option<&str>) -> bool {
    let l = line.trim();
    // Gmail, Apple Mail, Thunderbird: "On Tue, 1 Dec 2026, Dave <d@x> wrote:"
    // (sometimes wrapped over two lines), and the German and French forms.
    let joined = match next {
        Some(n) => format!("{l} {}", n.trim()),
        None => l.to_owned(),
    };
    let wrote = |s: &str| {
        (s.starts_with("On ") && s.ends_with("wrote:"))
            || (s.starts_with("Am ") && s.ends_with("schrieb:"))
            || (s.starts_with("Le ") && s.ends_with("a écrit :"))
    };
    if wrote(l) || wrote(&joined) {
        return true;
    }
    // Outlook: "-----Original Message-----", or a "From: ... " block with "Sent:".
    l.starts_with("-----Original Message-----")
        || l.starts_with("-----Ursprüngliche Nachricht-----")
        || (l.starts_with("From:")
            && next.is_some_and(|n| n.trim().starts_with("Sent:") || n.trim().starts_with("Date:")))
        || l.starts_with("________________________________")
}

/// The comment of `text`.
pub fn comment(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut end = lines.len();
    for (i, line) in lines.iter().enumerate() {
        if starts_history(line, lines.get(i + 1).copied()) {
            end = i;
            break;
        }
        // "-- " alone is the signature delimiter (RFC 3676).
        if line.trim_end_matches('\r') == "-- " || line.trim() == "--" {
            end = i;
            break;
        }
    }
    let mut kept: Vec<&str> = lines[..end].to_vec();
    // A trailing block of quoted lines ("> ...") is history too.
    while kept
        .last()
        .is_some_and(|l| l.trim().is_empty() || l.trim_start().starts_with('>'))
    {
        kept.pop();
    }
    let out = kept.join("\n").trim().to_owned();
    // Nothing left (a forward, a top-quoted reply): keep the whole text.
    if out.is_empty() { text.trim().to_owned() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmail_history_and_a_signature_are_trimmed() {
        let text = "Thanks, that works.\n\n-- \nDave\n\nOn Tue, 1 Dec 2026 at 10:00, Support <s@x> wrote:\n> old";
        assert_eq!(comment(text), "Thanks, that works.");
        let wrapped = "Yes.\n\nOn Tue, 1 Dec 2026 at 10:00, Casewire Support\n<support@x> wrote:\n> old";
        assert_eq!(comment(wrapped), "Yes.");
    }

    #[test]
    fn outlook_history_is_trimmed() {
        let text = "Please call me.\r\n\r\nFrom: Support <s@x>\r\nSent: Tuesday\r\nTo: Dave\r\n\r\nold text";
        assert_eq!(comment(&text.replace("\r\n", "\n")), "Please call me.");
        assert_eq!(comment("Ok\n-----Original Message-----\nold"), "Ok");
    }

    #[test]
    fn trailing_quotes_go_and_a_text_that_is_all_quote_stays() {
        assert_eq!(comment("Fine\n\n> earlier\n> more"), "Fine");
        assert_eq!(comment("> only a quote"), "> only a quote");
    }
}
