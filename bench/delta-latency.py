#!/usr/bin/env python3
"""Produce -> visible latency of rows in a Delta table, read back with the `deltalake` package.

    delta-latency.py CONTAINER [TABLE] [SKIP_SECONDS]

For each version of TABLE (default buffer_meta) the rows new in that version are visible from
the version's commit time (the log's commitInfo timestamp); a row's latency is that time minus
its Kafka timestamp (the producer's CreateTime, on this machine's clock). Rows produced in the
first SKIP_SECONDS (default 10) are left out (start-up). Prints p50, p90, p99, max in seconds.
"""
import json
import sys

from deltalake import DeltaTable

import importlib.util
import pathlib

# The storage options of scripts/delta-read.py (Azurite or Azure from the environment).
_spec = importlib.util.spec_from_file_location(
    "delta_read", pathlib.Path(__file__).resolve().parent.parent / "scripts" / "delta-read.py")
delta_read = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(delta_read)


def main():
    container = sys.argv[1]
    table = sys.argv[2] if len(sys.argv) > 2 else "buffer_meta"
    skip = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
    opts = delta_read.storage_options()
    uri = f"az://{container}/{table}"
    dt = DeltaTable(uri, storage_options=opts)
    commit_ms = {h["version"]: h["timestamp"] for h in dt.history()}
    seen = set()
    lat = []
    first_ts = None
    for v in sorted(commit_ms):
        t = DeltaTable(uri, storage_options=opts, version=v).to_pyarrow_table(columns=["msg_id", "timestamp"])
        ids = t.column("msg_id").to_pylist()
        ts = t.column("timestamp").to_pylist()
        for i, m in enumerate(ids):
            if m in seen or ts[i] is None:
                continue
            seen.add(m)
            produced = ts[i].timestamp()
            first_ts = produced if first_ts is None else min(first_ts, produced)
            lat.append((produced, commit_ms[v] / 1000.0 - produced))
    lat = sorted(l for p, l in lat if p >= first_ts + skip)
    if not lat:
        sys.exit("no rows")
    q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))]
    print(json.dumps({"table": table, "rows": len(lat), "versions": len(commit_ms),
                      "p50_s": round(q(0.5), 2), "p90_s": round(q(0.9), 2),
                      "p99_s": round(q(0.99), 2), "max_s": round(lat[-1], 2)}))
    sys.stdout.flush()
    __import__("os")._exit(0)  # see scripts/delta-read.py


if __name__ == "__main__":
    main()
