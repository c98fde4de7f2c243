//! Delta-mode helpers: transform options, reference blobs, and a table snapshot read through
//! delta-rs's log and our Parquet reader.

use std::collections::BTreeMap;

use super::*;
use transformer::delta::schema::Table;
use transformer::delta::{Lakehouse, StandardFormat};
use transformer::process::Stores;
use transformer::transform::TransformOptions;

pub fn delta() -> TransformOptions {
    TransformOptions {
        format: StandardFormat::Delta,
        ..TransformOptions::default()
    }
}

pub fn lobby() -> Vec<Rec> {
    vec![
        Rec::value(STARTING_MATCH),
        Rec::value("{broken"),
        Rec::value(CLEANING),
        Rec::null(),
        Rec::value(TIMED_OUT),
    ]
}

pub fn game() -> Vec<Rec> {
    vec![
        Rec::value(ATTACK_1),
        Rec::value(ATTACK_2),
        Rec::value(DEAD_ENEMY),
    ]
}

/// Rows per table and duplicate ids, read through delta-rs's snapshot and our Parquet reader.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub rows: BTreeMap<&'static str, usize>,
    pub duplicate_ids: usize,
    pub versions: BTreeMap<&'static str, Option<i64>>,
}

pub async fn snapshot(stores: &Stores, lh: &Lakehouse) -> Snapshot {
    let mut s = Snapshot::default();
    for table in Table::ALL {
        let files = lh.live_files(table).await.expect("table snapshot");
        let mut ids = Vec::new();
        let mut rows = 0;
        for f in &files.files {
            let b = read_parquet(&stores.standard, &f.path).await;
            if let Some(rows) = f.rows {
                assert_eq!(b.num_rows() as u64, rows, "{}: stats rows", f.path);
            }
            rows += b.num_rows();
            let id_col = if table == Table::from_name("etl_meta").expect("table") {
                "etl_id"
            } else if table == Table::DeadLetter {
                "line"
            } else {
                "msg_id"
            };
            if id_col == "line" {
                continue;
            }
            // A lobby row per participant: (msg_id, user_token) is the row's identity.
            let users = if table.name() == "lib_server_lobby" {
                str_col(&b, "user_token")
            } else {
                vec![String::new(); b.num_rows()]
            };
            ids.extend(
                str_col(&b, id_col)
                    .into_iter()
                    .zip(users)
                    .map(|(id, user)| format!("{id}/{user}")),
            );
        }
        let n = ids.len();
        ids.sort();
        ids.dedup();
        s.duplicate_ids += n - ids.len();
        s.rows.insert(table.name(), rows);
        s.versions.insert(table.name(), files.version);
    }
    s
}

pub fn expected_rows() -> BTreeMap<&'static str, usize> {
    BTreeMap::from([
        ("_deadletter", 2),
        ("buffer_meta", 8),
        ("etl_meta", 2),
        ("lib_server_game", 2),
        ("lib_server_lobby", 2),
        ("log_meta", 6),
    ])
}

pub async fn lake(std_url: &str, stores: &Stores) -> Lakehouse {
    Lakehouse::new(stores.standard.clone(), std_url)
}
