//! Validated value types. Each has a private field and a `parse` that is the
//! only way in, so a value that exists is a valid one. Serde goes through
//! `parse` as well, which is how malformed request fields become 4xx errors.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::DomainError;

macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident, $field:literal, $check:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(try_from = "String", into = "String")]
        #[schema(value_type = String)]
        pub struct $name(String);

        impl $name {
            /// Parses and normalises the value, or says what is wrong with it.
            pub fn parse(raw: impl AsRef<str>) -> Result<Self, DomainError> {
                let check: fn(&str) -> Result<String, String> = $check;
                check(raw.as_ref().trim())
                    .map($name)
                    .map_err(|message| DomainError::invalid($field, message))
            }

            /// The value as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = DomainError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

fn slug(s: &str, max: usize) -> Result<String, String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' || c == '.')
    {
        return Err("may contain only a-z, 0-9, '-', '_' and '.'".into());
    }
    Ok(s.to_owned())
}

string_newtype!(
    /// A key prefix such as `CLM`: 2 to 6 upper-case ASCII letters.
    KeyPrefix,
    "keyPrefix",
    |s| {
        if (2..=6).contains(&s.len()) && s.chars().all(|c| c.is_ascii_uppercase()) {
            Ok(s.to_owned())
        } else {
            Err("must be 2 to 6 upper-case letters".into())
        }
    }
);

string_newtype!(
    /// A human case key such as `CLM-000123`.
    CaseKey,
    "key",
    |s| {
        let Some((prefix, number)) = s.split_once('-') else {
            return Err("must look like PREFIX-000123".into());
        };
        KeyPrefix::parse(prefix).map_err(|e| e.to_string())?;
        if number.len() >= 6 && number.chars().all(|c| c.is_ascii_digit()) {
            Ok(s.to_owned())
        } else {
            Err("must look like PREFIX-000123".into())
        }
    }
);

impl CaseKey {
    /// The key for the `n`-th case of a prefix: zero-padded to six digits.
    pub fn new(prefix: &KeyPrefix, n: u64) -> Self {
        CaseKey(format!("{}-{n:06}", prefix.as_str()))
    }
}

string_newtype!(
    /// A queue name such as `support` or `claims.motor`.
    QueueName,
    "queue",
    |s| slug(s, 64)
);

string_newtype!(
    /// A tag: lower-case slug, at most 40 characters.
    Tag,
    "tag",
    |s| slug(&s.to_lowercase(), 40)
);

string_newtype!(
    /// An e-mail address, lower-cased, checked for one `@` and a dotted domain.
    EmailAddress,
    "email",
    |s| {
        let s = s.to_lowercase();
        let Some((local, domain)) = s.split_once('@') else {
            return Err("must contain '@'".into());
        };
        let ok = !local.is_empty()
            && s.len() <= 254
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !s.chars().any(char::is_whitespace);
        if ok { Ok(s) } else { Err("is not a valid e-mail address".into()) }
    }
);

string_newtype!(
    /// A user reference (the token's `preferred_username` or `sub`).
    UserRef,
    "user",
    |s| {
        if s.is_empty() || s.len() > 128 || s.chars().any(char::is_control) {
            Err("must be 1 to 128 printable characters".into())
        } else {
            Ok(s.to_owned())
        }
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_zero_padded_and_parse_back() {
        let prefix = KeyPrefix::parse("CMP").unwrap();
        let key = CaseKey::new(&prefix, 42);
        assert_eq!(key.as_str(), "CMP-000042");
        assert_eq!(CaseKey::parse("CMP-000042").unwrap(), key);
        assert!(CaseKey::parse("cmp-1").is_err());
        assert!(KeyPrefix::parse("C").is_err());
        assert!(KeyPrefix::parse("CLAIMSX").is_err());
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            EmailAddress::parse(" Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
        for bad in ["", "ann", "ann@", "@x.org", "a@b", "a b@x.org", "a@@x.org", "a@x."] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn tags_and_queues_are_slugs() {
        assert_eq!(Tag::parse("VIP").unwrap().as_str(), "vip");
        assert!(Tag::parse("two words").is_err());
        assert!(QueueName::parse("support").is_ok());
        assert!(QueueName::parse("").is_err());
        let err = serde_json::from_str::<QueueName>("\"Bad Queue\"").unwrap_err();
        assert!(err.to_string().contains("queue"));
    }
}
