//! `make demo`'s scenario, as a test: the dashboard's verdicts before and after a primary
//! failure, and the failover timeline's steps.

use drpilot::dashboard::Verdict;

#[test]
fn the_demo_scenario_protects_the_business_and_shows_it() {
    // The whole scenario is one deep future; unoptimised, its polls need more than a test
    // thread's 2 MiB of stack (`make demo` runs it on the main thread's 8 MiB).
    let outcome = std::thread::Builder::new()
        .stack_size(16 << 20)
        .spawn(|| {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(drpilot_tests::scenario::run())
        })
        .unwrap()
        .join()
        .unwrap()
        .expect("the scenario runs");
    assert!(outcome.passed, "every step of the demo did what it should");

    // Before: reports-db's replica is 7 minutes behind a 5-minute budget: at risk, and why.
    let before = &outcome.dashboard_before;
    assert_eq!(before.verdict, Verdict::AtRisk, "{}", before.render());
    assert!(
        before
            .reasons
            .contains(&"reports-db is over its RPO budget".to_string()),
        "{:?}",
        before.reasons
    );
    let status = |name: &str| {
        before
            .resources
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.status.clone())
    };
    assert_eq!(status("orders-db").as_deref(), Some("healthy"));
    assert_eq!(status("reports-db").as_deref(), Some("breached"));
    let copies = before.resources.iter().find(|r| r.name == "orders-db-copies").unwrap();
    assert!(
        copies
            .newest_dr_copy
            .as_deref()
            .is_some_and(|c| c.starts_with("drpilot-orders-db-before-migration-")),
        "{copies:?}"
    );
    assert_eq!(before.databases[0].failover, "none");
    // The restore verifier proved both databases' newest copies restorable.
    let verified: Vec<(&str, bool)> = before
        .verifications
        .iter()
        .map(|v| (v.db.as_str(), v.last.as_ref().is_some_and(|l| l.passed)))
        .collect();
    assert_eq!(verified, [("orders-db", true), ("ledger", true)], "{}", before.render());

    // After: what AWS would show. orders-db-dr is a primary now, so orders-db has no replica
    // (broken until a new one exists); the dark region breaks reports-db's replication too;
    // orders failed over and waits for a human to re-arm automatic failover.
    let after = &outcome.dashboard_after;
    assert_eq!(after.verdict, Verdict::NotProtected, "{}", after.render());
    let after_status = |name: &str| {
        after
            .resources
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.status.clone())
    };
    assert_eq!(after_status("orders-db").as_deref(), Some("broken"));
    assert_eq!(after_status("reports-db").as_deref(), Some("broken"));
    assert!(
        after
            .reasons
            .contains(&"orders-db: replication or backup is broken".to_string()),
        "{:?}",
        after.reasons
    );
    assert_eq!(after.databases[0].failover, "awaiting-acknowledgement");
    assert!(
        after
            .reasons
            .iter()
            .any(|r| r.contains("split-brain risk: failed over, the old primary is not fenced")),
        "the old primary's region is still dark: {:?}",
        after.reasons
    );
    assert!(
        after
            .reasons
            .iter()
            .any(|r| r.contains("automatic failover is disarmed until acknowledged")),
        "{:?}",
        after.reasons
    );

    // The timeline, in order.
    let f = outcome.failover.expect("a failover was recorded");
    let timeline = drpilot::promoter::notices::timeline(&f);
    let order = [
        "failure detected",
        "decided to promote",
        "promotion requested",
        "standby promoted",
        "DNS change submitted",
        "DNS change in sync",
        "completed",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|s| timeline.find(s).unwrap_or_else(|| panic!("{s} missing:\n{timeline}")))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{timeline}");
    // The status pages `make demo` writes say the same, in words: before, at risk with every
    // resource; after, not protected, with the failover's timeline, step by step in order.
    let (page_before, page_after) = (
        std::fs::read_to_string(&outcome.pages.0).unwrap(),
        std::fs::read_to_string(&outcome.pages.1).unwrap(),
    );
    assert!(page_before.contains("DR status: <span class=\"word\">AT RISK</span>"));
    assert!(page_after.contains("DR status: <span class=\"word\">NOT PROTECTED</span>"));
    for r in &before.resources {
        assert!(
            page_before.contains(&format!("id=\"resource-{}\"", r.name)),
            "{}",
            r.name
        );
    }
    assert!(page_after.contains("AWAITING-ACKNOWLEDGEMENT"));
    let on_page: Vec<usize> = drpilot::promoter::notices::timeline_entries(&f)
        .iter()
        .map(|(at, what)| {
            let line = format!("{}</time> {}", drpilot::model::stamp(*at), maud_escaped(what));
            page_after
                .find(&line)
                .unwrap_or_else(|| panic!("{line} is not on the page"))
        })
        .collect();
    assert!(on_page.len() >= order.len() && on_page.windows(2).all(|w| w[0] < w[1]));
    // estimated on the simulator's clock (20x): within the five-minute limit
    let estimate = f.estimated_rpo_seconds.expect("an estimated RPO");
    assert!(estimate > 0.0 && estimate <= 15.0, "{estimate}");
}

/// Text as the page escapes it.
fn maud_escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
