//! The one place a URL becomes an adapter: its scheme names the adapter
//! (the way tansu picks its storage), parsed once, and every setting says
//! which adapters it accepts.

use std::path::PathBuf;

use crate::config::{ConfigError, SecretUrl};

/// An adapter and where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdapterUrl {
    /// `sqlite://<path>`: a store or the embedded bus in a SQLite file.
    Sqlite(PathBuf),
    /// `mongodb://...` or `mongodb+srv://...` (credentials inside).
    MongoDb(SecretUrl),
    /// `kafka://host:port[,host:port]`.
    Kafka(SecretUrl),
    /// `file:///path`: blobs in a directory.
    File(PathBuf),
    /// `s3://bucket?endpoint=...` (credentials inside).
    S3(SecretUrl),
}

/// The kinds of adapter, to say which a setting accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Sqlite,
    MongoDb,
    Kafka,
    File,
    S3,
}

impl Scheme {
    /// How a URL of this kind looks, for error messages.
    fn example(self) -> &'static str {
        match self {
            Scheme::Sqlite => "sqlite://<path>",
            Scheme::MongoDb => "mongodb://host[:port][/database]",
            Scheme::Kafka => "kafka://host:port",
            Scheme::File => "file:///path",
            Scheme::S3 => "s3://bucket?endpoint=...",
        }
    }
}

impl AdapterUrl {
    /// The kind of adapter.
    pub fn scheme(&self) -> Scheme {
        match self {
            AdapterUrl::Sqlite(_) => Scheme::Sqlite,
            AdapterUrl::MongoDb(_) => Scheme::MongoDb,
            AdapterUrl::Kafka(_) => Scheme::Kafka,
            AdapterUrl::File(_) => Scheme::File,
            AdapterUrl::S3(_) => Scheme::S3,
        }
    }

    /// Parses the URL of setting `name`, which accepts the `allowed` kinds.
    pub fn parse(name: &str, url: &SecretUrl, allowed: &[Scheme]) -> Result<AdapterUrl, ConfigError> {
        let raw = url.expose();
        let path = |prefix: &str| raw.strip_prefix(prefix).filter(|p| !p.is_empty()).map(PathBuf::from);
        let parsed = if let Some(p) = path("sqlite://") {
            Some(AdapterUrl::Sqlite(p))
        } else if raw.starts_with("mongodb://") || raw.starts_with("mongodb+srv://") {
            Some(AdapterUrl::MongoDb(url.clone()))
        } else if raw.starts_with("kafka://") {
            Some(AdapterUrl::Kafka(url.clone()))
        } else if let Some(p) = path("file://") {
            Some(AdapterUrl::File(p))
        } else if raw.starts_with("s3://") {
            Some(AdapterUrl::S3(url.clone()))
        } else {
            None
        };
        match parsed {
            Some(adapter) if allowed.contains(&adapter.scheme()) => Ok(adapter),
            _ => {
                let supported: Vec<&str> = allowed.iter().map(|s| s.example()).collect();
                Err(ConfigError::Invalid(format!(
                    "{name} = {}: unsupported scheme (supported: {})",
                    url.masked(),
                    supported.join(", ")
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_scheme_picks_the_adapter_and_the_setting_limits_it() {
        let url = |s: &str| SecretUrl::new(s);
        let stores = [Scheme::Sqlite, Scheme::MongoDb];
        assert_eq!(
            AdapterUrl::parse("store.events", &url("sqlite:///tmp/e.db"), &stores).unwrap(),
            AdapterUrl::Sqlite("/tmp/e.db".into())
        );
        assert_eq!(
            AdapterUrl::parse("store.read", &url("mongodb+srv://u:pw@h/db"), &stores)
                .unwrap()
                .scheme(),
            Scheme::MongoDb
        );
        let err = AdapterUrl::parse("store.events", &url("kafka://h:9092"), &stores)
            .unwrap_err()
            .to_string();
        assert!(err.contains("store.events") && err.contains("sqlite://<path>"), "{err}");
        let err = AdapterUrl::parse("store.events", &url("postgres://u:pw@h/db"), &stores)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("pw"), "the password stays masked: {err}");
        assert!(
            AdapterUrl::parse("bus.url", &url("sqlite://"), &[Scheme::Sqlite]).is_err(),
            "no path"
        );
        assert_eq!(
            AdapterUrl::parse("storage.url", &url("file:///srv/files"), &[Scheme::File, Scheme::S3]).unwrap(),
            AdapterUrl::File("/srv/files".into())
        );
    }
}
