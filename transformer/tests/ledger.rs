//! Leases against Azurite: conditional puts really exclude a second claimer, a renewed lease stays
//! with its live owner, and a dead owner's lease is taken over one TTL after its last write.

mod common;

use std::time::{Duration, Instant};

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

/// A short TTL, so a dead owner's lease is taken over within the test, yet long next to a
/// renewal's round trip on a loaded machine (renewals go out every third of it).
const TTL: Duration = Duration::from_millis(2500);

#[tokio::test]
async fn a_stale_lease_whose_owner_is_gone_is_taken_over_after_the_ttl() {
    let (stores, _, _) = containers();
    let s = &stores.standard;
    let claimed = Instant::now();
    // The owner claims and is then killed: no renewal, no release.
    let dead = claim(s, "r.json.gz", "\"0x1\"", "dead", TTL)
        .await
        .expect("io")
        .expect("first claim wins");
    drop(dead);
    assert!(
        claim(s, "r.json.gz", "\"0x1\"", "next", TTL)
            .await
            .expect("io")
            .is_none(),
        "not taken over before the TTL"
    );
    let taken = testkit::wait_for("take-over", Duration::from_secs(20), || async move {
        claim(s, "r.json.gz", "\"0x1\"", "next", TTL)
            .await
            .expect("io")
    })
    .await
    .expect("taken over");
    let waited = claimed.elapsed();
    assert!(waited >= TTL, "taken over after {waited:?}, before the TTL");
    assert!(
        waited < TTL + Duration::from_secs(10),
        "taken over only after {waited:?}"
    );
    taken.release().await.expect("released");
}

#[tokio::test]
async fn a_renewed_lease_is_not_taken_over_while_its_owner_works() {
    let (stores, _, _) = containers();
    let s = &stores.standard;
    let mut owner = claim(s, "r.json.gz", "\"0x1\"", "owner", TTL)
        .await
        .expect("io")
        .expect("first claim wins");
    // A slow transform: 3 TTLs of work (longer, up to a minute, until 5 claims were answered)
    // while a second watcher keeps trying to claim.
    let slow_work = async {
        let until = Instant::now() + 3 * TTL;
        let give_up = Instant::now() + Duration::from_secs(60);
        let mut tries = 0u32;
        while (Instant::now() < until || tries < 5) && Instant::now() < give_up {
            // A claim that fails on the store (the emulator now and then answers a request
            // only after the client's 30 s timeout) is what a watcher retries later: not a
            // take-over, and not counted as a try.
            match claim(s, "r.json.gz", "\"0x1\"", "other", TTL).await {
                Ok(other) => {
                    assert!(other.is_none(), "taken over from a live owner");
                    tries += 1;
                }
                Err(e) => eprintln!("a contending claim failed on the store: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tries
    };
    let tries = owner.hold_while(slow_work).await;
    assert!(tries >= 5, "only {tries} claims answered");
    assert!(!owner.is_lost());

    // The owner now stops renewing (as if killed): the lease is taken over within a TTL.
    let stopped = Instant::now();
    let taker = testkit::wait_for("take-over", Duration::from_secs(20), || async move {
        claim(s, "r.json.gz", "\"0x1\"", "other", TTL)
            .await
            .expect("io")
    })
    .await
    .expect("taken over once renewals stop");
    assert!(stopped.elapsed() < TTL + Duration::from_secs(10));

    // The old owner's next renewal finds it lost, and its release leaves the taker's lease.
    assert!(!owner.renew().await.expect("io"), "renewal after take-over");
    assert!(owner.is_lost());
    let path = owner.path().to_string();
    owner.release().await.expect("release");
    let body = get(s, &path)
        .await
        .expect("the taker's lease is still there");
    let body: serde_json::Value = serde_json::from_slice(&body).expect("lease JSON");
    assert_eq!(body["owner"], "other");
    taker.release().await.expect("released");
}
