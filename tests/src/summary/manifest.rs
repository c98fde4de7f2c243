//! What a simulator manifest implies: the dead-letter reasons of its bad kinds, and one manifest
//! for several runs.

use simulator::Manifest;

/// The transformer reason codes a simulator bad-record kind may legitimately produce.
///
/// `binary` is random bytes after a NUL: not UTF-8 in almost every draw, but a draw that happens
/// to be UTF-8 is a JSON syntax error instead. `empty_value` is a zero-length text, which the
/// transformer calls `invalid_json`.
pub fn expected_reasons(kind: &str) -> &'static [&'static str] {
    match kind {
        "truncated_json" => &["invalid_json"],
        "wrong_type" => &["wrong_type"],
        "missing_field" => &["missing_field"],
        "invalid_utf8" => &["invalid_utf8"],
        "binary" => &["invalid_utf8", "invalid_json"],
        "oversized" => &["value_too_large"],
        "bad_timestamp" => &["bad_timestamp"],
        "empty_value" => &["invalid_json"],
        // Crafted outside the simulator (tests/tests/e2e_poison.rs): the JSON text `null` is a
        // present value that is not an object; a tombstone has no value at all.
        "json_null" => &["wrong_type"],
        "tombstone" => &["null_value"],
        _ => &[],
    }
}

/// One manifest for several simulator runs into the same topics, run one after another (so each
/// partition's offsets stay one contiguous range).
pub fn merge_manifests(runs: &[Manifest]) -> Manifest {
    let mut all = Manifest {
        mode: runs
            .iter()
            .map(|m| m.mode.as_str())
            .collect::<Vec<_>>()
            .join("+"),
        complete: runs.iter().all(|m| m.complete),
        ..Manifest::default()
    };
    for m in runs {
        for (t, parts) in &m.topics {
            for (p, st) in parts {
                match all.topics.entry(t.clone()).or_default().entry(*p) {
                    std::collections::btree_map::Entry::Vacant(v) => {
                        v.insert(*st);
                    }
                    std::collections::btree_map::Entry::Occupied(mut o) => {
                        let e = o.get_mut();
                        e.min_offset = e.min_offset.min(st.min_offset);
                        e.max_offset = e.max_offset.max(st.max_offset);
                        e.count += st.count;
                    }
                }
            }
        }
        for (k, n) in &m.log_messages {
            *all.log_messages.entry(k.clone()).or_default() += n;
        }
        all.participant_rows += m.participant_rows;
        all.attack_rows += m.attack_rows;
        all.good_records += m.good_records;
        all.bad_records += m.bad_records;
        all.bad.extend(m.bad.iter().cloned());
        all.games.completed += m.games.completed;
        all.games.timed_out += m.games.timed_out;
        all.game_tokens.extend(m.game_tokens.iter().cloned());
        all.failed_deliveries += m.failed_deliveries;
        all.delivery_errors
            .extend(m.delivery_errors.iter().cloned());
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_simulator_bad_kind_maps_to_a_transformer_reason() {
        for kind in simulator::bad::BadKind::ALL {
            assert!(
                !expected_reasons(kind.as_str()).is_empty(),
                "{kind:?} has no expected reason"
            );
        }
    }
}
