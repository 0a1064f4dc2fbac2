//! Which case a message belongs to, by the keys it carries: Message-IDs
//! Casewire wrote (they name the case), a case key tag in the subject
//! (`[CMP-000123]`) and plus-addressing (`support+CMP-000123@...`).

use uuid::Uuid;

/// The Message-ID Casewire gives a mail it sends about case `case` (and
/// `item`, e.g. a comment), so that a reply's `In-Reply-To` or
/// `References` names the case even without any index.
pub fn message_id(case: Uuid, item: &str, domain: &str) -> String {
    format!("case-{case}.{item}@{domain}")
}

/// The case a Message-ID of ours names: `case-<uuid>@domain` (the thread
/// root notifications use) or `case-<uuid>.<item>@domain`.
pub fn case_of_message_id(id: &str, domain: &str) -> Option<Uuid> {
    let (local, host) = id.rsplit_once('@')?;
    if !host.eq_ignore_ascii_case(domain) {
        return None;
    }
    let rest = local.strip_prefix("case-")?;
    let uuid = rest.get(..36)?;
    let tail = &rest[36..];
    if !(tail.is_empty() || tail.starts_with('.')) {
        return None;
    }
    uuid.parse().ok()
}

/// A case key such as `CMP-000123`: 2 to 10 capital letters or digits
/// starting with a letter, a dash, 6 or more digits.
pub fn is_case_key(s: &str) -> bool {
    let Some((prefix, number)) = s.split_once('-') else {
        return false;
    };
    (2..=10).contains(&prefix.len())
        && prefix.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && prefix.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && number.len() >= 6
        && number.chars().all(|c| c.is_ascii_digit())
}

/// The case key in a subject's `[KEY]` tag, wherever it stands
/// (`Re: AW: [CMP-000123] Kettle`).
pub fn subject_key(subject: &str) -> Option<String> {
    let mut rest = subject;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let close = after.find(']')?;
        let inside = after[..close].trim();
        if is_case_key(inside) {
            return Some(inside.to_owned());
        }
        rest = &after[close + 1..];
    }
    None
}

/// The case key of a plus address (`support+CMP-000123@example.com`), for
/// the mailbox address `support@example.com`.
pub fn plus_key(recipient: &str, mailbox: &str) -> Option<String> {
    let (local, host) = recipient.rsplit_once('@')?;
    let (box_local, box_host) = mailbox.rsplit_once('@')?;
    if !host.eq_ignore_ascii_case(box_host) {
        return None;
    }
    let (base, tag) = local.split_once('+')?;
    let tag = tag.to_ascii_uppercase();
    (base.eq_ignore_ascii_case(box_local) && is_case_key(&tag)).then_some(tag)
}

/// The subject of a reply: the case tag added once, `Re:` once.
pub fn reply_subject(subject: &str, key: &str) -> String {
    let tagged = if subject_key(subject).as_deref() == Some(key) {
        subject.to_owned()
    } else {
        format!("[{key}] {subject}")
    };
    if tagged.to_ascii_lowercase().starts_with("re:") {
        tagged
    } else {
        format!("Re: {tagged}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_message_ids_name_their_case() {
        let case = Uuid::now_v7();
        let id = message_id(case, "c1", "mail.example");
        assert_eq!(case_of_message_id(&id, "mail.example"), Some(case));
        assert_eq!(
            case_of_message_id(&format!("case-{case}@mail.example"), "MAIL.example"),
            Some(case)
        );
        assert_eq!(case_of_message_id(&id, "other.example"), None);
        assert_eq!(
            case_of_message_id(&format!("case-{case}x@mail.example"), "mail.example"),
            None
        );
        assert_eq!(case_of_message_id("case-nope@mail.example", "mail.example"), None);
    }

    #[test]
    fn subject_tags_are_found_wherever_they_stand() {
        assert_eq!(
            subject_key("Re: AW: [CMP-000123] Kettle").as_deref(),
            Some("CMP-000123")
        );
        assert_eq!(subject_key("[ext] [CLM-000042]").as_deref(), Some("CLM-000042"));
        assert_eq!(subject_key("[cmp-000123] lower case"), None);
        assert_eq!(subject_key("[CMP-12] too short"), None);
        assert_eq!(subject_key("no tag ["), None);
    }

    #[test]
    fn plus_addresses_carry_a_key_for_their_mailbox_only() {
        let mbox = "support@example.com";
        assert_eq!(
            plus_key("support+cmp-000123@example.com", mbox).as_deref(),
            Some("CMP-000123")
        );
        assert_eq!(plus_key("support+CMP-000123@other.com", mbox), None);
        assert_eq!(plus_key("sales+CMP-000123@example.com", mbox), None);
        assert_eq!(plus_key("support@example.com", mbox), None);
    }

    #[test]
    fn reply_subjects_are_tagged_and_prefixed_once() {
        assert_eq!(reply_subject("Kettle", "CMP-000001"), "Re: [CMP-000001] Kettle");
        assert_eq!(
            reply_subject("Re: [CMP-000001] Kettle", "CMP-000001"),
            "Re: [CMP-000001] Kettle"
        );
    }
}
