#!/usr/bin/env python3
"""Reads the Delta tables in a `standard` container with the `deltalake` package from PyPI (a
reader we did not write) and prints one JSON object: per table its version, protocol, partition
columns, schema, row count, duplicate msg_ids and files.

    delta-read.py CONTAINER [--version N] [TABLE ...]

--version N reads each table as of version N (time travel), where its data files must still be.

Storage: Azurite through AZURITE_BLOB_STORAGE_URL (env/local.env), or Azure through
AZURE_STORAGE_ACCOUNT_NAME plus AZURE_STORAGE_ACCOUNT_KEY.
"""
import json
import os
import sys
from urllib.parse import urlparse

from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

TABLES = ["etl_meta", "buffer_meta", "log_meta", "lib_server_lobby", "lib_server_game", "_deadletter"]


def storage_options():
    if os.environ.get("AZURE_STORAGE_USE_EMULATOR", "").lower() == "true":
        url = urlparse(os.environ.get("AZURITE_BLOB_STORAGE_URL", "http://127.0.0.1:10000"))
        return {
            "account_name": "devstoreaccount1",
            "use_emulator": "true",
            "allow_http": "true",
            "azure_storage_endpoint": f"{url.scheme}://{url.netloc}/devstoreaccount1",
        }
    opts = {"account_name": os.environ["AZURE_STORAGE_ACCOUNT_NAME"]}
    if os.environ.get("AZURE_STORAGE_ACCOUNT_KEY"):
        opts["account_key"] = os.environ["AZURE_STORAGE_ACCOUNT_KEY"]
    return opts


def read(container, table, opts, version=None):
    try:
        dt = DeltaTable(f"az://{container}/{table}", storage_options=opts, version=version)
    except TableNotFoundError:
        return None
    data = dt.to_pyarrow_table()
    proto = dt.protocol()
    out = {
        "version": dt.version(),
        "protocol": [proto.min_reader_version, proto.min_writer_version],
        "reader_features": proto.reader_features,
        "writer_features": proto.writer_features,
        "partition_columns": dt.metadata().partition_columns,
        "schema": {f.name: str(f.type) for f in data.schema},
        "rows": data.num_rows,
        "files": len(dt.file_uris()),
    }
    if "msg_id" in data.column_names and table != "_deadletter":
        ids = data.column("msg_id").to_pylist()
        if table == "lib_server_lobby":  # one row per participant
            ids = list(zip(ids, data.column("user_token").to_pylist()))
        out["msg_ids"] = len(ids)
        out["duplicate_msg_ids"] = len(ids) - len(set(ids))
    if "etl_id" in data.column_names and table == "etl_meta":
        ids = data.column("etl_id").to_pylist()
        out["duplicate_etl_ids"] = len(ids) - len(set(ids))
    if "date" in data.column_names:
        out["dates"] = sorted({str(d) for d in data.column("date").to_pylist()})
    return out


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    container, rest = sys.argv[1], sys.argv[2:]
    version = None
    if rest[:1] == ["--version"]:
        version, rest = int(rest[1]), rest[2:]
    tables = rest or TABLES
    opts = storage_options()
    print(json.dumps({t: read(container, t, opts, version) for t in tables}, indent=1, sort_keys=True))
    sys.stdout.flush()
    # Skip interpreter teardown: native thread pools of pyarrow/deltalake have aborted it
    # ("terminate called without an active exception") after the output was complete.
    os._exit(0)


if __name__ == "__main__":
    main()
