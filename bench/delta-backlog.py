#!/usr/bin/env python3
"""How fast a backlog becomes rows in a Delta table, read back with the `deltalake` package.

    delta-backlog.py CONTAINER T0_EPOCH_SECONDS EXPECTED_ROWS [TABLE]

For each version of TABLE (default buffer_meta), the rows of the files it added (their
`num_records` statistics) became visible at the version's commit time (commitInfo timestamp).
Prints, after T0 (when the worker and the watcher started on the backlog), the time by which
50 %, 90 %, 99 % and all EXPECTED_ROWS rows were visible, and the rate, as one JSON line.
"""
import json
import sys

import pyarrow
from deltalake import DeltaTable

import importlib.util
import pathlib

# The storage options of scripts/delta-read.py (Azurite or Azure from the environment).
_spec = importlib.util.spec_from_file_location(
    "delta_read", pathlib.Path(__file__).resolve().parent.parent / "scripts" / "delta-read.py")
delta_read = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(delta_read)


def main():
    container, t0, expected = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    table = sys.argv[4] if len(sys.argv) > 4 else "buffer_meta"
    opts = delta_read.storage_options()
    uri = f"az://{container}/{table}"
    dt = DeltaTable(uri, storage_options=opts)
    commit_ms = {h["version"]: h["timestamp"] for h in dt.history()}
    seen = set()
    visible = []  # (seconds after t0, rows added)
    for v in sorted(commit_ms):
        dt.load_as_version(v)
        adds = pyarrow.table(dt.get_add_actions(flatten=True)).to_pydict()
        added = 0
        for path, n in zip(adds["path"], adds["num_records"]):
            if path not in seen:
                seen.add(path)
                added += n or 0
        if added:
            visible.append((commit_ms[v] / 1000.0 - t0, added))
    total = sum(n for _, n in visible)
    out = {"table": table, "rows": total, "expected": expected, "versions": len(commit_ms)}
    done = 0
    marks = {0.5: "p50_s", 0.9: "p90_s", 0.99: "p99_s", 1.0: "all_s"}
    for t, n in visible:
        done += n
        for f, k in marks.items():
            if k not in out and done >= f * expected:
                out[k] = round(t, 1)
    if "all_s" in out and out["all_s"] > 0:
        out["rows_per_s"] = round(expected / out["all_s"])
    print(json.dumps(out))
    sys.stdout.flush()
    __import__("os")._exit(0)  # see scripts/delta-read.py


if __name__ == "__main__":
    main()
