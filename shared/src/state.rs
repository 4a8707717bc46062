//! drpilot's state objects in the DR region's state bucket: small JSON records written by
//! compare-and-swap (the only lock drpilot has), and the lease that says which invocation
//! may advance the work a record describes. The promoter's failover records, the S3 backup's
//! run state and the lag checker's alert state are all written through this one type.

use crate::error::Result;
use crate::ports::{Saved, StateStore};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::info;

/// One record: its key on a [`StateStore`].
pub struct Record<'a, S> {
    store: &'a S,
    pub key: String,
}

/// What a read found.
#[derive(Debug)]
pub enum Loaded<T> {
    /// Nothing written yet: the first write must create it (`expected` = `None`).
    Absent,
    Found {
        value: T,
        etag: String,
    },
    /// Something is there that does not decode; each writer says what that means for it.
    Unreadable {
        error: String,
        etag: String,
    },
}

impl<T> Loaded<T> {
    /// The value, if there is a readable one (for readers such as the dashboard).
    pub fn value(self) -> Option<T> {
        match self {
            Loaded::Found { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The version a write must match to replace what is there.
    pub fn etag(&self) -> Option<&str> {
        match self {
            Loaded::Absent => None,
            Loaded::Found { etag, .. } | Loaded::Unreadable { etag, .. } => Some(etag),
        }
    }
}

impl<'a, S: StateStore> Record<'a, S> {
    pub fn new(store: &'a S, key: impl Into<String>) -> Self {
        Record { store, key: key.into() }
    }

    pub async fn read<T: DeserializeOwned>(&self) -> Result<Loaded<T>> {
        Ok(match self.store.load(&self.key).await? {
            None => Loaded::Absent,
            Some(v) => match serde_json::from_slice(&v.body) {
                Ok(value) => Loaded::Found { value, etag: v.etag },
                Err(e) => Loaded::Unreadable {
                    error: e.to_string(),
                    etag: v.etag,
                },
            },
        })
    }

    /// Compare-and-swap: writes `value` only if the record is still at `expected` (`None`: only
    /// if it does not exist). `Some(etag)` when written, `None` when someone else wrote first.
    pub async fn write<T: Serialize>(&self, value: &T, expected: Option<&str>) -> Result<Option<String>> {
        match self.store.save(&self.key, &self.encode(value)?, expected).await? {
            Saved::Written { etag } => Ok(Some(etag)),
            Saved::Conflict => Ok(None),
        }
    }

    /// [`write`](Self::write) for values another writer would not store byte for byte (a
    /// lease holder, a request id or a fresh timestamp in them). A conflict may then be this
    /// very write: S3 took it, the response was lost, and the SDK's retry found the object
    /// changed (412). Reading the record back tells, since no other writer stores these bytes.
    /// (Where two writers can store the same bytes, both would take the write for theirs.)
    pub async fn write_own<T: Serialize>(&self, value: &T, expected: Option<&str>) -> Result<Option<String>> {
        let body = self.encode(value)?;
        match self.store.save(&self.key, &body, expected).await? {
            Saved::Written { etag } => Ok(Some(etag)),
            Saved::Conflict => match self.store.load(&self.key).await? {
                Some(stored) if stored.body == body => {
                    info!(key = %self.key, "conditional write answered 412, but the record is ours: the first attempt landed");
                    Ok(Some(stored.etag))
                }
                _ => Ok(None),
            },
        }
    }

    fn encode<T: Serialize>(&self, value: &T) -> Result<Vec<u8>> {
        serde_json::to_vec_pretty(value)
            .map_err(|e| crate::Error::RunFailed(format!("cannot encode {}: {e}", self.key)))
    }
}

/// One invocation: who is running (the holder of a lease) and when Lambda will stop it.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub deadline: DateTime<Utc>,
}

/// Who may advance the work a record describes, until when (the holder's Lambda deadline:
/// a killed invocation's lease runs out by itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "LeaseOnDisk", try_from = "LeaseOnDisk")]
pub struct Lease {
    /// The holder's Lambda request id.
    pub holder: String,
    pub until: DateTime<Utc>,
}

/// A lease as stored: the holder under both names it has had (`owner` in failover records,
/// `holder` in backup state, before the two shared this type), so that a promoter or a backup
/// rolled back to an older release mid-run still reads the record it finds.
#[derive(Serialize, Deserialize)]
struct LeaseOnDisk {
    #[serde(default)]
    holder: Option<String>,
    #[serde(default)]
    owner: Option<String>,
    until: DateTime<Utc>,
}

impl From<Lease> for LeaseOnDisk {
    fn from(l: Lease) -> Self {
        LeaseOnDisk {
            owner: Some(l.holder.clone()),
            holder: Some(l.holder),
            until: l.until,
        }
    }
}

impl TryFrom<LeaseOnDisk> for Lease {
    type Error = &'static str;

    fn try_from(d: LeaseOnDisk) -> std::result::Result<Self, Self::Error> {
        let holder = d.holder.or(d.owner).ok_or("a lease names its holder")?;
        Ok(Lease { holder, until: d.until })
    }
}

impl Lease {
    pub fn to(invocation: &Invocation) -> Self {
        Lease {
            holder: invocation.request_id.clone(),
            until: invocation.deadline,
        }
    }

    /// Held by someone other than `me` whose lease has not run out at `now`.
    pub fn held_by_other(&self, me: &str, now: DateTime<Utc>) -> bool {
        self.holder != me && self.until > now
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::Versioned;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// A state store whose next write lands but answers 412, as S3 does when the response
    /// to a conditional write is lost and the SDK's retry finds the object changed.
    #[derive(Default)]
    struct Store {
        objects: Mutex<HashMap<String, (Vec<u8>, u32)>>,
        lose_next_response: Mutex<bool>,
    }

    impl StateStore for Store {
        async fn load(&self, key: &str) -> Result<Option<Versioned>> {
            Ok(self.objects.lock().unwrap().get(key).map(|(body, v)| Versioned {
                body: body.clone(),
                etag: v.to_string(),
            }))
        }

        async fn save(&self, key: &str, body: &[u8], expected: Option<&str>) -> Result<Saved> {
            let mut objects = self.objects.lock().unwrap();
            let current = objects.get(key).map(|(_, v)| v.to_string());
            if current.as_deref() != expected {
                return Ok(Saved::Conflict);
            }
            let version = objects.get(key).map_or(1, |(_, v)| v + 1);
            objects.insert(key.to_string(), (body.to_vec(), version));
            if std::mem::take(&mut *self.lose_next_response.lock().unwrap()) {
                return Ok(Saved::Conflict);
            }
            Ok(Saved::Written {
                etag: version.to_string(),
            })
        }
    }

    #[tokio::test]
    async fn create_then_update_by_compare_and_swap_and_a_stale_writer_loses() {
        let store = Store::default();
        let r = Record::new(&store, "k");
        assert!(matches!(r.read::<Vec<u32>>().await.unwrap(), Loaded::Absent));
        let first = r.write(&vec![1], None).await.unwrap().expect("created");
        assert_eq!(r.write(&vec![9], None).await.unwrap(), None, "create-if-absent only");
        let second = r.write(&vec![1, 2], Some(&first)).await.unwrap().expect("updated");
        assert_eq!(
            r.write(&vec![7], Some(&first)).await.unwrap(),
            None,
            "a stale writer loses"
        );
        match r.read::<Vec<u32>>().await.unwrap() {
            Loaded::Found { value, etag } => assert_eq!((value, etag), (vec![1, 2], second)),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn an_ambiguous_412_is_resolved_by_reading_back() {
        let store = Store::default();
        let r = Record::new(&store, "k");
        *store.lose_next_response.lock().unwrap() = true;
        let etag = r.write_own(&"ours", None).await.unwrap();
        assert_eq!(etag.as_deref(), Some("1"), "the write landed: it is ours");
        store
            .objects
            .lock()
            .unwrap()
            .insert("k".into(), (b"\"theirs\"".to_vec(), 2));
        assert_eq!(r.write_own(&"ours again", Some("1")).await.unwrap(), None);
        // A plain write never guesses: the same bytes from another writer are not taken for its own.
        *store.lose_next_response.lock().unwrap() = true;
        assert_eq!(r.write(&"theirs", Some("2")).await.unwrap(), None);
        store.objects.lock().unwrap().insert("k".into(), (b"{".to_vec(), 3));
        assert!(matches!(r.read::<String>().await.unwrap(), Loaded::Unreadable { etag, .. } if etag == "3"));
    }

    #[test]
    fn a_lease_is_held_until_its_deadline_and_never_against_its_holder() {
        let t = DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z").unwrap().to_utc();
        let lease = Lease {
            holder: "a".into(),
            until: t,
        };
        assert!(lease.held_by_other("b", t - chrono::Duration::seconds(1)));
        assert!(!lease.held_by_other("b", t), "expired at its deadline");
        assert!(
            !lease.held_by_other("a", t - chrono::Duration::seconds(1)),
            "one's own lease"
        );
        for older in [
            r#"{"owner": "a", "until": "2026-11-25T12:00:00Z"}"#,
            r#"{"holder": "a", "until": "2026-11-25T12:00:00Z"}"#,
        ] {
            assert_eq!(serde_json::from_str::<Lease>(older).unwrap(), lease, "{older}");
        }
        let stored = serde_json::to_value(&lease).unwrap();
        assert_eq!(
            (&stored["owner"], &stored["holder"]),
            (&"a".into(), &"a".into()),
            "an older release reads either"
        );
        assert!(serde_json::from_str::<Lease>(r#"{"until": "2026-11-25T12:00:00Z"}"#).is_err());
    }
}
