//! Validated value types. Each has a private field and a `parse` that is the
//! only way in, so a value that exists is a valid one. Serde goes through
//! `parse` as well, which is how malformed request fields become 4xx errors.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// The `description` of a schema from the lines of a doc comment, trimmed
/// as utoipa trims the doc comments it reads itself.
fn doc_description(lines: &[&str]) -> String {
    lines.iter().map(|l| l.trim()).collect::<Vec<_>>().join("\n")
}

macro_rules! string_newtype {
    (
        $(#[doc = $doc:literal])*
        $name:ident,
        $field:literal,
        schema(pattern = $pattern:literal, min_length = $min:literal, max_length = $max:expr $(,)?),
        $check:expr
    ) => {
        $(#[doc = $doc])*
        ///
        /// Its schema (`pattern`, `minLength`, `maxLength`) admits only
        /// values that `parse` accepts, written without the surrounding
        /// whitespace that `parse` trims.
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The ECMA-262 pattern of the schema: every string it matches
            /// (within the length bounds) parses.
            pub const PATTERN: &'static str = $pattern;
            /// The schema's `minLength`.
            pub const MIN_LENGTH: usize = $min;
            /// The schema's `maxLength`, if any.
            pub const MAX_LENGTH: Option<usize> = $max;

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

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                use utoipa::openapi::schema::{ObjectBuilder, Type};
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some(doc_description(&[$($doc),*])))
                    .pattern(Some(Self::PATTERN))
                    .min_length(Some(Self::MIN_LENGTH))
                    .max_length(Self::MAX_LENGTH)
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

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

        // Compares with the text, so a check reads `case.queue == "support"`.
        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
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
    schema(pattern = r"^[A-Z]{2,6}$", min_length = 2, max_length = Some(6)),
    |s| {
        if (2..=6).contains(&s.len()) && s.chars().all(|c| c.is_ascii_uppercase()) {
            Ok(s.to_owned())
        } else {
            Err("must be 2 to 6 upper-case letters".into())
        }
    }
);

string_newtype!(
    /// A human case key such as `CLM-000123`: a key prefix, `-`, and at
    /// least six digits.
    CaseKey,
    "key",
    schema(pattern = r"^[A-Z]{2,6}-[0-9]{6,}$", min_length = 9, max_length = None),
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
    /// A queue name such as `support` or `claims.motor`: 1 to 64 of a-z,
    /// 0-9, `-`, `_` and `.`.
    QueueName,
    "queue",
    schema(pattern = r"^[a-z0-9._-]+$", min_length = 1, max_length = Some(64)),
    |s| slug(s, 64)
);

string_newtype!(
    /// A tenant such as `casewire` or `globex`: 1 to 63 of a-z, 0-9 and
    /// `-`, starting with a letter or digit. Tenants become parts of S3
    /// bucket names (`<bucket>-<tenant>`) and of realm URLs, which allow no
    /// more than this.
    TenantId,
    "tenant",
    schema(pattern = r"^[a-z0-9][a-z0-9-]*$", min_length = 1, max_length = Some(63)),
    |s| {
        let ok = (1..=63).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(s.to_owned())
        } else {
            Err("must be 1 to 63 of a-z, 0-9 and '-', starting with a letter or digit".into())
        }
    }
);

impl TenantId {
    /// `casewire`, the tenant of a fresh install, of demo data and of the
    /// dev issuer's main realm.
    pub fn default_tenant() -> Self {
        TenantId("casewire".to_owned())
    }
}

string_newtype!(
    /// A tag: 1 to 40 of a-z, 0-9, `-`, `_` and `.`. Upper-case letters are
    /// lower-cased (and so is the Kelvin sign `K`, U+212A, to `k`).
    Tag,
    "tag",
    schema(pattern = r"^[A-Za-z0-9._\u212A-]+$", min_length = 1, max_length = Some(40)),
    |s| slug(&s.to_lowercase(), 40)
);

string_newtype!(
    /// An e-mail address, lower-cased: a non-empty local part, one `@`, and
    /// a domain with a `.` that neither starts nor ends with `.`; no
    /// whitespace. At most 254 bytes of UTF-8: the pattern admits any
    /// ASCII address up to 254 characters and any other up to 63.
    EmailAddress,
    "email",
    schema(
        pattern = r"^(?=[\x00-\x7F]*$|[\s\S]{0,63}$)[^@\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+@[^@.\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^@\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*\.[^@\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^@.\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]$",
        min_length = 5,
        max_length = Some(254),
    ),
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
    /// A user reference (the token's `preferred_username` or `sub`): 1 to
    /// 128 bytes of UTF-8 without control characters. The pattern admits
    /// any printable ASCII reference up to 128 characters and any other up
    /// to 32.
    UserRef,
    "user",
    schema(
        pattern = r"^(?=[\x20-\x7E]*$|[\s\S]{0,32}$)[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?$",
        min_length = 1,
        max_length = Some(128),
    ),
    |s| {
        if s.is_empty() || s.len() > 128 || s.chars().any(char::is_control) {
            Err("must be 1 to 128 printable characters".into())
        } else {
            Ok(s.to_owned())
        }
    }
);

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::{Value, json};
    use utoipa::PartialSchema;

    /// A JSON Schema validator for a schema utoipa builds.
    pub(crate) fn validator(schema: impl serde::Serialize) -> jsonschema::Validator {
        jsonschema::validator_for(&serde_json::to_value(schema).unwrap()).unwrap()
    }

    /// Strings to hold a schema against its rule: every character of the
    /// first planes alone, and pseudo-random strings (a fixed xorshift, so
    /// runs agree) over alphabets that reach each rule's edges.
    pub(crate) fn samples() -> Vec<String> {
        let mut out: Vec<String> = (0..0x3400u32).filter_map(char::from_u32).map(String::from).collect();
        let alphabets: [&[char]; 7] = [
            &['A', 'B', 'Z', 'a', 'z', '0', '9', '-', '_', '.', '@', '/', '\\'],
            &[
                'a', 'b', '.', '@', ' ', '\t', '\u{85}', '\u{a0}', '\u{3000}', '\u{feff}', '\u{1c}',
            ],
            &['a', 'é', '中', '😀', '.', '@', '\u{212a}', '\u{130}', '\u{23a}', 'K'],
            &['\u{0}', '\u{1}', '\u{7f}', '\u{9f}', 'a', '@', '.', '-'],
            &['C', 'L', 'M', '-', '0', '1', '9', ' '],
            &['!', '~', ' ', 'q', '%', '{', '}', '@', '.'],
            &['a', 'é', '😀'],
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for len in [
            2, 3, 5, 6, 8, 9, 10, 31, 32, 33, 40, 41, 63, 64, 65, 66, 100, 127, 128, 129, 254, 255,
        ] {
            for alphabet in alphabets {
                for _ in 0..40 {
                    let s: String = (0..len)
                        .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                        .collect();
                    // The same with a `@` and a `.` in the middle, and as a key.
                    let mid = s.chars().count() / 2;
                    let at: String = s
                        .chars()
                        .enumerate()
                        .map(|(i, c)| match i {
                            i if i == mid / 2 => '@',
                            i if i == mid => '.',
                            _ => c,
                        })
                        .collect();
                    out.extend([s, at]);
                }
            }
        }
        out.extend(
            [
                "CLM-000123",
                "CLM-0001234",
                "CLMXYZ-000001",
                "CLMXYZW-000001",
                "C-000001",
                "CLM-00012",
                "CLM-000123-1",
                "ann@example.com",
                "Ann@Example.COM",
                "a@b.c",
                "a@b..c",
                "a@.b",
                "a@b.",
                "a@@b.c",
                "José Müller",
                "日本語ユーザー",
            ]
            .map(String::from),
        );
        out.push("a".repeat(128));
        out.push(format!("{}@example.org", "a".repeat(242)));
        out.push(format!("{}@example.org", "é".repeat(60)));
        out
    }

    /// Every sample the type's schema admits, `parse` accepts as it is.
    fn schema_admits_only_what_parse_accepts<T: PartialSchema>(
        samples: &[String],
        parse: impl Fn(&str) -> bool,
    ) -> usize {
        let validator = validator(T::schema());
        let mut admitted = 0;
        for s in samples {
            if validator.is_valid(&json!(s)) {
                assert!(parse(s), "the schema admits {s:?}, which parse refuses");
                admitted += 1;
            }
        }
        admitted
    }

    #[test]
    fn each_schema_admits_only_values_that_parse() {
        let s = samples();
        assert!(schema_admits_only_what_parse_accepts::<KeyPrefix>(&s, |s| KeyPrefix::parse(s).is_ok()) > 10);
        assert!(schema_admits_only_what_parse_accepts::<CaseKey>(&s, |s| CaseKey::parse(s).is_ok()) > 1);
        assert!(schema_admits_only_what_parse_accepts::<QueueName>(&s, |s| QueueName::parse(s).is_ok()) > 10);
        assert!(schema_admits_only_what_parse_accepts::<Tag>(&s, |s| Tag::parse(s).is_ok()) > 10);
        assert!(schema_admits_only_what_parse_accepts::<TenantId>(&s, |s| TenantId::parse(s).is_ok()) > 10);
        assert!(schema_admits_only_what_parse_accepts::<EmailAddress>(&s, |s| EmailAddress::parse(s).is_ok()) > 10);
        assert!(schema_admits_only_what_parse_accepts::<UserRef>(&s, |s| UserRef::parse(s).is_ok()) > 100);
    }

    #[test]
    fn each_schema_admits_what_parse_accepts_in_its_written_form() {
        let [prefix, key, queue, tag, tenant, user, email] = [
            KeyPrefix::schema(),
            CaseKey::schema(),
            QueueName::schema(),
            Tag::schema(),
            TenantId::schema(),
            UserRef::schema(),
            EmailAddress::schema(),
        ]
        .map(validator);
        let admits = |v: &jsonschema::Validator, s: &str| v.is_valid(&json!(s));
        // Parse trims; the schema asks for the value without the padding.
        // Apart from that, what the schema leaves out is what regex can not
        // say: the byte length of long non-ASCII values.
        for s in samples().iter().filter(|s| s.trim() == s.as_str()) {
            assert_eq!(admits(&prefix, s), KeyPrefix::parse(s).is_ok(), "{s:?}");
            assert_eq!(admits(&key, s), CaseKey::parse(s).is_ok(), "{s:?}");
            assert_eq!(admits(&queue, s), QueueName::parse(s).is_ok(), "{s:?}");
            assert_eq!(admits(&tag, s), Tag::parse(s).is_ok(), "{s:?}");
            assert_eq!(admits(&tenant, s), TenantId::parse(s).is_ok(), "{s:?}");
            if s.is_ascii() || s.chars().count() <= 32 {
                assert_eq!(admits(&user, s), UserRef::parse(s).is_ok(), "{s:?}");
            }
            if s.is_ascii() || s.chars().count() <= 63 {
                assert_eq!(admits(&email, s), EmailAddress::parse(s).is_ok(), "{s:?}");
            }
        }
        assert!(admits(&tag, "\u{212a}"), "the Kelvin sign lower-cases to k");
        assert_eq!(Tag::parse("\u{212a}").unwrap().as_str(), "k");
    }

    #[test]
    fn schemas_carry_their_bounds() {
        let tag = serde_json::to_value(Tag::schema()).unwrap();
        assert_eq!(
            (tag["minLength"].clone(), tag["maxLength"].clone()),
            (json!(1), json!(40))
        );
        assert_eq!(tag["pattern"], Tag::PATTERN);
        let key = serde_json::to_value(CaseKey::schema()).unwrap();
        assert_eq!(key.get("maxLength"), None::<&Value>);
        assert!(key["description"].as_str().unwrap().starts_with("A human case key"));
    }

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

    #[test]
    fn tenants_are_lower_case_slugs_that_fit_a_bucket_name() {
        for good in ["casewire", "globex", "t", "9lives", "acme-eu", &"a".repeat(63)] {
            assert_eq!(TenantId::parse(good).unwrap().as_str(), good);
        }
        assert_eq!(TenantId::parse(" acme ").unwrap().as_str(), "acme");
        let too_long = "a".repeat(64);
        for bad in ["", "-acme", "Acme", "ac_me", "ac.me", "ac/me", "a b", too_long.as_str()] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let err = serde_json::from_str::<TenantId>("\"Acme\"").unwrap_err();
        assert!(err.to_string().contains("tenant"));
        assert_eq!(
            serde_json::to_string(&TenantId::parse("acme").unwrap()).unwrap(),
            "\"acme\""
        );
        assert_eq!(TenantId::parse("casewire").unwrap(), TenantId::default_tenant());
    }
}
