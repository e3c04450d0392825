"""``bench/sync_ingest.py`` with records the audit trail sees (ORM inserts, one entry each).

    .venv/bin/python bench/audit_ingest.py                 # SQLite
    .venv/bin/python bench/audit_ingest.py --postgres URL  # PostgreSQL

Same devices, batches and clients as ``sync_ingest.py``; the mutations are
``bench.audited_note`` (``tests/audit_bench_types.py``), stored through the ORM like a domain
record, so each one also costs an audit entry. Compare with a tree without the audit trail to
see what it costs.
"""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "sync_ingest", Path(__file__).resolve().parent / "sync_ingest.py"
)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

_server_env, _mutations = bench.server_env, bench.mutations


def server_env(instance, url):
    return {
        **_server_env(instance, url),
        "FIELDAPP_EXTRA_MODULES": "tests.sync_types,tests.audit_bench_types",
    }


def mutations(seq_start, count):
    batch = _mutations(seq_start, count)
    for m in batch:
        m["type"] = "bench.audited_note"
    return batch


bench.server_env, bench.mutations = server_env, mutations

if __name__ == "__main__":
    bench.main()
