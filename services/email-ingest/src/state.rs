//! How far a mailbox was read: its UIDVALIDITY and the last UID handled,
//! in a small JSON file per mailbox under the data dir, replaced whole
//! (write, fsync, rename) so a crash leaves the old or the new one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The read position of one mailbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Position {
    pub uid_validity: u32,
    /// The last UID handled (delivered, or quarantined).
    pub last_uid: u32,
}

/// Where a mailbox's position is kept.
pub fn file(dir: &Path, mailbox: &str) -> PathBuf {
    dir.join("email-ingest").join(format!("{mailbox}.json"))
}

/// The position saved, or none.
pub fn load(path: &Path) -> anyhow::Result<Option<Position>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Saves `position`, durably.
pub fn save(path: &Path, position: Position) -> anyhow::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(&position)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Where to start in a mailbox of `uid_validity`: after the saved UID, or
/// from the start when the mailbox was renumbered (a new UIDVALIDITY).
pub fn start(saved: Option<Position>, uid_validity: u32) -> Position {
    match saved {
        Some(p) if p.uid_validity == uid_validity => p,
        _ => Position {
            uid_validity,
            last_uid: 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_survives_a_save_and_a_new_uidvalidity_starts_over() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = file(dir.path(), "support");
        assert_eq!(load(&path).ok().flatten(), None);
        let p = Position {
            uid_validity: 7,
            last_uid: 42,
        };
        save(&path, p).unwrap_or_else(|e| panic!("{e}"));
        let back = load(&path).ok().flatten();
        assert_eq!(back, Some(p));
        assert_eq!(start(back, 7).last_uid, 42);
        assert_eq!(
            start(back, 8),
            Position {
                uid_validity: 8,
                last_uid: 0
            }
        );
    }
}
