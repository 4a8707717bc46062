//! Port-level stand-ins for what moto cannot show, each wrapping the real AWS adapter so that
//! every AWS call still goes to the emulator.
//!
//! - moto's `PromoteReadReplica` leaves the instance linked to its source forever (AWS
//!   detaches it within minutes), so "promoted" would never be observed: `AwsLikePromotion`
//!   reports the standby as AWS would after the promotion was requested, optionally only
//!   after a few looks (AWS takes minutes).
//! - Both wrappers count calls, so tests can assert "exactly one promotion, one DNS change".

use drpilot::config::{DnsSpec, Standby};
use drpilot::ports::{Dns, StandbyControl, StandbyState};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

pub struct AwsLikePromotion<S> {
    pub inner: S,
    pub promotions: AtomicU32,
    /// How many looks after the promotion the standby still shows as "modifying".
    pub settle_after_looks: u32,
    looks_since_promotion: AtomicU32,
}

impl<S> AwsLikePromotion<S> {
    pub fn new(inner: S, settle_after_looks: u32) -> Self {
        AwsLikePromotion {
            inner,
            promotions: AtomicU32::new(0),
            settle_after_looks,
            looks_since_promotion: AtomicU32::new(0),
        }
    }

    pub fn promotions(&self) -> u32 {
        self.promotions.load(Ordering::SeqCst)
    }
}

impl<S: StandbyControl> StandbyControl for AwsLikePromotion<S> {
    async fn state(&self, standby: &Standby) -> drpilot::Result<StandbyState> {
        let mut state = self.inner.state(standby).await?;
        if self.promotions() > 0 {
            let looks = self.looks_since_promotion.fetch_add(1, Ordering::SeqCst);
            if looks < self.settle_after_looks {
                state.status = "modifying".into();
            } else {
                state.promoted = true;
            }
        }
        Ok(state)
    }

    async fn promote(&self, standby: &Standby, planned: bool) -> drpilot::Result<()> {
        self.inner.promote(standby, planned).await?;
        self.promotions.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

pub struct CountingDns<D> {
    pub inner: D,
    pub changes: AtomicU32,
    /// Fail this many `point` calls first (a crash mid-failover).
    pub fail_first: Mutex<u32>,
}

impl<D> CountingDns<D> {
    pub fn new(inner: D) -> Self {
        CountingDns {
            inner,
            changes: AtomicU32::new(0),
            fail_first: Mutex::new(0),
        }
    }

    pub fn changes(&self) -> u32 {
        self.changes.load(Ordering::SeqCst)
    }
}

impl<D: Dns> Dns for CountingDns<D> {
    async fn point(&self, dns: &DnsSpec, target: &str) -> drpilot::Result<String> {
        {
            let mut fail = self.fail_first.lock().unwrap();
            if *fail > 0 {
                *fail -= 1;
                return Err(drpilot::Error::Aws {
                    operation: "ChangeResourceRecordSets",
                    code: "Timeout".into(),
                    message: "the invocation was killed here (test)".into(),
                    retryable: true,
                });
            }
        }
        let id = self.inner.point(dns, target).await?;
        self.changes.fetch_add(1, Ordering::SeqCst);
        Ok(id)
    }

    async fn in_sync(&self, change_id: &str) -> drpilot::Result<bool> {
        self.inner.in_sync(change_id).await
    }

    async fn current(&self, dns: &DnsSpec) -> drpilot::Result<Option<String>> {
        self.inner.current(dns).await
    }
}
