//! The last good user/info and user/stats answers of each installation, used only when a
//! live call fails, so the page shows stale data with a banner instead of an error.
//!
//! Kept in memory and in `ct/dat/tokenusage_last_good.json` (written atomically) so a
//! restart keeps them. Performs file I/O; writes only when an answer changed or the file
//! is older than [`REWRITE_AFTER`], not on every view.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::data::cache::{self, Cached};
use crate::data::license_api::Endpoint;

/// Rewrite an unchanged answer this often, so the file's timestamps stay roughly current.
pub const REWRITE_AFTER: i64 = 300;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Record {
    /// Whose answers these are (`Credentials::fingerprint`): another license's are not ours.
    #[serde(default)]
    owner: String,
    user_info: Option<Cached<Value>>,
    user_stats: Option<Cached<Value>>,
    /// When this process last wrote the file (0: not yet).
    #[serde(skip)]
    written_at: i64,
}

impl Record {
    fn slot(&mut self, endpoint: Endpoint) -> Option<&mut Option<Cached<Value>>> {
        match endpoint {
            Endpoint::UserInfo => Some(&mut self.user_info),
            Endpoint::UserStats => Some(&mut self.user_stats),
            Endpoint::Pricing | Endpoint::History => None,
        }
    }
}

/// Last good answers by file.
#[derive(Debug, Default)]
pub struct LastGood {
    records: Mutex<HashMap<PathBuf, Record>>,
}

impl LastGood {
    /// Remembers a good answer; writes the file when it changed or is getting old. A
    /// write failure only costs the copy on disk.
    pub fn remember(&self, file: &Path, owner: &str, endpoint: Endpoint, now: i64, data: &Value) {
        let mut records = self.lock();
        let record = records
            .entry(file.to_path_buf())
            .or_insert_with(|| load(file));
        if record.owner != owner {
            *record = Record {
                owner: owner.to_string(),
                ..Record::default()
            };
        }
        let Some(slot) = record.slot(endpoint) else {
            return;
        };
        let changed = slot.as_ref().is_none_or(|old| old.value != *data);
        // The time is always updated (it says how fresh the answer is); the file is
        // rewritten only when an answer changed or the copy on disk is getting old.
        *slot = Some(Cached {
            timestamp: now,
            value: data.clone(),
        });
        if changed || now - record.written_at >= REWRITE_AFTER {
            record.written_at = now;
            if let Ok(bytes) = serde_json::to_vec(&*record) {
                let _ = cache::write_atomically(file, &bytes, cache::Access::Private);
            }
        }
    }

    /// The last good answer, from memory or, after a restart, from the file.
    pub fn recall(&self, file: &Path, owner: &str, endpoint: Endpoint) -> Option<Cached<Value>> {
        let mut records = self.lock();
        let record = records
            .entry(file.to_path_buf())
            .or_insert_with(|| load(file));
        if record.owner != owner {
            return None;
        }
        record.slot(endpoint)?.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Record>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The file's record; a missing or broken file is an empty record.
fn load(file: &Path) -> Record {
    std::fs::read(file)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The file in a fresh folder, and the folder's guard: removed when it drops (also
    /// when the test fails).
    fn temp_file(name: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::Builder::new()
            .prefix(&format!("tokenusage-lastgood-{name}-"))
            .tempdir()
            .unwrap();
        let file = dir.path().join("tokenusage_last_good.json");
        (dir, file)
    }

    #[test]
    fn a_remembered_answer_survives_a_restart() {
        let (_dir, file) = temp_file("restart");
        LastGood::default().remember(
            &file,
            "me",
            Endpoint::UserStats,
            1000,
            &json!({"balance": 5}),
        );
        let after_restart = LastGood::default();
        assert_eq!(
            after_restart.recall(&file, "me", Endpoint::UserStats),
            Some(Cached {
                timestamp: 1000,
                value: json!({"balance": 5})
            })
        );
        assert_eq!(after_restart.recall(&file, "me", Endpoint::UserInfo), None);
        assert_eq!(
            after_restart.recall(&file, "another license", Endpoint::UserStats),
            None
        );
    }

    #[test]
    fn an_unchanged_answer_is_not_rewritten_every_view() {
        let (_dir, file) = temp_file("rewrite");
        let store = LastGood::default();
        store.remember(
            &file,
            "me",
            Endpoint::UserInfo,
            1000,
            &json!({"email": "a"}),
        );
        std::fs::remove_file(&file).unwrap();
        store.remember(
            &file,
            "me",
            Endpoint::UserInfo,
            1010,
            &json!({"email": "a"}),
        );
        assert!(!file.exists(), "unchanged and recent: no write");
        store.remember(
            &file,
            "me",
            Endpoint::UserInfo,
            1020,
            &json!({"email": "b"}),
        );
        assert!(file.exists(), "changed: written");
    }

    #[test]
    fn a_broken_file_is_an_empty_record() {
        let (_dir, file) = temp_file("broken");
        std::fs::write(&file, "{not json").unwrap();
        assert_eq!(
            LastGood::default().recall(&file, "me", Endpoint::UserInfo),
            None
        );
    }
}
