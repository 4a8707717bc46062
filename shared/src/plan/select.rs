//! Which source databases are protected, from the settings and the source region's listing.

use crate::model::Selection;
use crate::model::{DbKind, ProtectedDb, SourceDb};

/// Engines whose clusters live in the RDS API but are not RDS/Aurora databases.
const FOREIGN_CLUSTER_ENGINES: &[&str] = &["neptune", "docdb"];

/// The outcome of selection for one database: protected, or named but unusable (with why).
pub type Selected = Result<ProtectedDb, (ProtectedDb, String)>;

pub fn select(sel: &Selection, instances: &[SourceDb], clusters: &[SourceDb]) -> Vec<Selected> {
    let mut out: Vec<Selected> = Vec::new();
    let mut push = |s: Selected| {
        let key = match &s {
            Ok(db) | Err((db, _)) => db.clone(),
        };
        if !out.iter().any(|o| matches!(o, Ok(db) | Err((db, _)) if *db == key)) {
            out.push(s);
        }
    };
    let tag_matches = |db: &SourceDb| match &sel.tag {
        Some((key, want)) => db.tags.get(key).is_some_and(|v| want.as_ref().is_none_or(|w| w == v)),
        None => false,
    };

    for id in &sel.instances {
        let db = ProtectedDb {
            kind: DbKind::Instance,
            id: id.clone(),
        };
        match instances.iter().find(|i| i.id == *id) {
            None => push(Err((db, format!("DB instance {id} was not found in the source region")))),
            Some(SourceDb { cluster_id: Some(c), .. }) => push(Err((
                db,
                format!("DB instance {id} is a member of Aurora cluster {c}: protect the cluster instead (DRPILOT_DB_CLUSTERS)"),
            ))),
            Some(_) => push(Ok(db)),
        }
    }
    for id in &sel.clusters {
        let db = ProtectedDb {
            kind: DbKind::Cluster,
            id: id.clone(),
        };
        match clusters.iter().find(|c| c.id == *id) {
            None => push(Err((db, format!("DB cluster {id} was not found in the source region")))),
            Some(_) => push(Ok(db)),
        }
    }
    for i in instances.iter().filter(|i| i.cluster_id.is_none() && tag_matches(i)) {
        push(Ok(ProtectedDb {
            kind: DbKind::Instance,
            id: i.id.clone(),
        }));
    }
    for c in clusters
        .iter()
        .filter(|c| !FOREIGN_CLUSTER_ENGINES.contains(&c.engine.as_str()) && tag_matches(c))
    {
        push(Ok(ProtectedDb {
            kind: DbKind::Cluster,
            id: c.id.clone(),
        }));
    }
    out.sort_by(|a, b| {
        let key = |s: &Selected| match s {
            Ok(db) | Err((db, _)) => db.clone(),
        };
        key(a).cmp(&key(b))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn db(kind: DbKind, id: &str, tags: &[(&str, &str)], cluster: Option<&str>, engine: &str) -> SourceDb {
        SourceDb {
            kind,
            id: id.into(),
            arn: format!(
                "arn:aws:rds:us-east-1:1:{}:{id}",
                if kind == DbKind::Instance { "db" } else { "cluster" }
            ),
            engine: engine.into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            cluster_id: cluster.map(str::to_string),
        }
    }

    #[test]
    fn selects_by_id_and_by_tag_without_duplicates() {
        let instances = vec![
            db(
                DbKind::Instance,
                "orders",
                &[("drpilot:copy", "true")],
                None,
                "postgres",
            ),
            db(
                DbKind::Instance,
                "scratch",
                &[("drpilot:copy", "false")],
                None,
                "postgres",
            ),
            db(
                DbKind::Instance,
                "aurora-1",
                &[("drpilot:copy", "true")],
                Some("ledger"),
                "aurora-postgresql",
            ),
        ];
        let clusters = vec![
            db(
                DbKind::Cluster,
                "ledger",
                &[("drpilot:copy", "true")],
                None,
                "aurora-postgresql",
            ),
            db(DbKind::Cluster, "graph", &[("drpilot:copy", "true")], None, "neptune"),
        ];
        let sel = Selection {
            instances: vec!["orders".into(), "missing".into(), "aurora-1".into()],
            clusters: vec![],
            tag: Some(("drpilot:copy".into(), Some("true".into()))),
        };
        let got = select(&sel, &instances, &clusters);
        let ok: Vec<_> = got
            .iter()
            .filter_map(|s| s.as_ref().ok())
            .map(|d| d.id.as_str())
            .collect();
        assert_eq!(ok, vec!["orders", "ledger"]);
        let bad: Vec<_> = got.iter().filter_map(|s| s.as_ref().err()).collect();
        assert_eq!(bad.len(), 2);
        assert!(bad
            .iter()
            .any(|(d, why)| d.id == "missing" && why.contains("not found")));
        assert!(bad
            .iter()
            .any(|(d, why)| d.id == "aurora-1" && why.contains("member of Aurora cluster ledger")));
    }

    #[test]
    fn tag_without_value_matches_any_value() {
        let instances = vec![db(DbKind::Instance, "a", &[("backup", "nightly")], None, "mysql")];
        let sel = Selection {
            tag: Some(("backup".into(), None)),
            ..Default::default()
        };
        assert_eq!(select(&sel, &instances, &[]).len(), 1);
    }
}
