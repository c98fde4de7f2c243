//! Leases against Azurite: conditional puts really exclude a second claimer.

mod common;

use std::time::Duration;

use common::*;
use transformer::ledger::claim;

#[tokio::test]
async fn a_live_lease_excludes_a_second_claimer_and_an_expired_one_is_taken_over() {
    let (stores, _, _) = containers();
    let s = &stores.standard;
    let a = claim(s, "r.json.gz", "\"0x1\"", "a", Duration::from_secs(60))
        .await
        .expect("io");
    assert!(a.is_some(), "first claim wins");
    let b = claim(s, "r.json.gz", "\"0x1\"", "b", Duration::from_secs(60))
        .await
        .expect("io");
    assert!(b.is_none(), "second claim loses while the first is live");
    let c = claim(s, "r.json.gz", "\"0x2\"", "c", Duration::ZERO)
        .await
        .expect("io");
    assert!(c.is_some());
    let d = claim(s, "r.json.gz", "\"0x2\"", "d", Duration::from_secs(60))
        .await
        .expect("io");
    assert!(d.is_some(), "an expired lease is taken over");
    let e = claim(s, "r.json.gz", "\"0x2\"", "e", Duration::from_secs(60))
        .await
        .expect("io");
    assert!(e.is_none(), "the taker now holds it");
}
