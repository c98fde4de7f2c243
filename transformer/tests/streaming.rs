//! The transform streams: rows are written in row groups of `row_group_rows`, every row still
//! lands once and in order, outputs are uploaded in parts and appear only when a blob succeeded.

mod common;

use std::io::Write;

use bytes::Bytes;
use common::*;
use object_store::path::Path;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use transformer::process::{Stores, process_blob};
use transformer::transform::{Sink, TransformOptions};
use transformer::upload::{UploadOptions, Uploads, upload_sink};

/// A lobby blob of `n` records: mostly good (a `Starting Match` adds two lobby rows), with a
/// dead record every 7th and a tombstone every 11th.
fn lobby_records(n: usize) -> Vec<Rec> {
    (0..n)
        .map(|i| match i % 11 {
            _ if i % 7 == 3 => Rec::value("{broken"),
            0 => Rec::null(),
            1 | 4 | 8 => Rec::value(CLEANING),
            5 => Rec::value(TIMED_OUT),
            _ => Rec::value(STARTING_MATCH),
        })
        .collect()
}

/// Row counts of each row group of a Parquet file.
fn row_groups(file: &Bytes) -> Vec<i64> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(file.clone()).expect("parquet");
    reader
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows())
        .collect()
}

#[tokio::test]
async fn rows_beyond_the_row_group_size_are_cut_into_row_groups_and_all_kept() {
    let (whole, _, _) = containers();
    let (_, std_streamed) = testkit::new_container("std").expect("container");
    let streamed = Stores {
        raw: whole.raw.clone(),
        standard: std_streamed,
    };
    let (name, gz) = raw_blob(model::TOPIC_LOBBY, 2, 500, &lobby_records(400));
    upload(&whole.raw, &name, gz).await;

    let one_group = TransformOptions::default();
    let small = TransformOptions {
        row_group_rows: 32,
        ..TransformOptions::default()
    };
    let a = process_blob(&whole, &name, one_group, "test")
        .await
        .expect("transformed in one row group");
    let b = process_blob(&streamed, &name, small, "test")
        .await
        .expect("transformed in row groups of 32");
    assert_eq!(a.counts, b.counts, "same records, rows and dead letters");
    assert_eq!(a.outputs, b.outputs, "same names");
    assert!(a.counts.dead > 0 && a.counts.rows["lib_server_lobby"] > 2 * 32);

    let dl = &a.outputs[a.outputs.len() - 1];
    assert!(dl.starts_with("_deadletter/"), "{dl}");
    assert_eq!(
        get(&whole.standard, dl).await,
        get(&streamed.standard, dl).await,
        "dead letters are written as they come, in line order"
    );
    for path in a.outputs.iter().filter(|p| p.ends_with(".parquet")) {
        let model = path.split('/').next().expect("model folder");
        let rows = a.counts.rows[model];
        let whole_file = get(&whole.standard, path).await.expect("file");
        let streamed_file = get(&streamed.standard, path).await.expect("file");
        let groups = row_groups(&streamed_file);
        assert_eq!(groups.iter().sum::<i64>() as u64, rows, "{model}");
        if rows > 32 {
            assert_eq!(row_groups(&whole_file), [rows as i64], "{model}");
            assert!(groups.len() > 1, "{model}: {groups:?}");
            // Every row group but the last has exactly 32 rows (lobby rows of one record too).
            let (last, full) = groups.split_last().expect("groups");
            assert!(full.iter().all(|g| *g == 32), "{model}: {groups:?}");
            assert!((1..=32).contains(last), "{model}: {groups:?}");
        }
        assert_eq!(
            read_parquet(&whole.standard, path).await,
            read_parquet(&streamed.standard, path).await,
            "{model}: the same rows in the same order"
        );
    }
}

#[tokio::test]
async fn a_blob_failing_after_row_groups_were_written_leaves_the_previous_outputs() {
    let (stores, _, _) = containers();
    let (name, gz) = raw_blob(model::TOPIC_LOBBY, 0, 0, &lobby_records(300));
    upload(&stores.raw, &name, gz.clone()).await;
    let opts = TransformOptions {
        row_group_rows: 16,
        ..TransformOptions::default()
    };
    process_blob(&stores, &name, opts, "test")
        .await
        .expect("the good version");
    let before = outputs(&stores.standard).await;

    // The same records, then bytes that are not gzip: the stream fails at its very end, after
    // every model has written row groups.
    let mut corrupt = gz;
    corrupt.extend_from_slice(b"not gzip at all");
    upload(&stores.raw, &name, corrupt).await;
    let err = process_blob(&stores, &name, opts, "test")
        .await
        .expect_err("not gzip");
    assert_eq!(err.kind(), "transform_failed", "{err}");
    assert_eq!(
        outputs(&stores.standard).await,
        before,
        "no output of the failed run is visible"
    );
}

#[tokio::test]
async fn outputs_larger_than_a_part_are_uploaded_in_parts_and_appear_when_finished() {
    let (stores, _, _) = containers();
    let opts = UploadOptions {
        part_bytes: 64 * 1024,
        concurrency: 2,
    };
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
    let (mut sink, queue) = upload_sink();
    let data = big.clone();
    let writing = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut file = sink.create("lib_server_game/big.parquet")?;
        for piece in data.chunks(10_000) {
            file.write_all(piece)?;
        }
        file.flush()
    });
    let (uploads, written) =
        tokio::join!(Uploads::run(stores.standard.clone(), queue, opts), writing);
    written.expect("joined").expect("written");
    let mut uploads = uploads.expect("parts uploaded");
    let path = Path::from("lib_server_game/big.parquet");
    assert!(
        stores.standard.head(&path).await.is_err(),
        "invisible until finished"
    );
    uploads
        .take("lib_server_game/big.parquet")
        .expect("opened")
        .finish()
        .await
        .expect("block list committed");
    let got = get(&stores.standard, "lib_server_game/big.parquet")
        .await
        .expect("visible");
    assert_eq!(got.as_ref(), big.as_slice());
}
