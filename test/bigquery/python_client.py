"""google-cloud-bigquery through Sluice: the README's Python example, scenario by scenario.

Run by python-client.test.ts with the gateway URL, tokens and project in the environment; prints
one JSON object (scenario name -> outcome) that the TypeScript test asserts on. Every scenario
catches its own exception so one failure does not hide the others.
"""
import json
import os
import sys
import tempfile
import traceback

import google.oauth2.credentials
from google.api_core import exceptions as gexc
from google.cloud import bigquery

URL = os.environ["SLUICE_URL"]
PROJECT = os.environ["BQ_PROJECT"]
DATASET = os.environ["BQ_DATASET"]
STUB_PROJECT = os.environ["BQ_STUB_PROJECT"]


def client(token, project=PROJECT):
    # The README's settings: Sluice's URL, the agent's OIDC token as the access token.
    return bigquery.Client(
        project=project,
        client_options={"api_endpoint": URL},
        credentials=google.oauth2.credentials.Credentials(token=token),
    )


def plain(value):
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def failure(exc):
    return {
        "error": type(exc).__name__,
        "code": getattr(exc, "code", None),
        "message": str(getattr(exc, "message", None) or exc),
    }


def run(results, name, fn):
    try:
        results[name] = {"ok": plain(fn())}
    except Exception as exc:  # noqa: BLE001 - reported to the TypeScript side
        results[name] = failure(exc)
        if os.environ.get("DEBUG_PY"):
            traceback.print_exc(file=sys.stderr)


def main():
    alice = client(os.environ["ALICE_TOKEN"])
    bob = client(os.environ["BOB_TOKEN"])
    results = {}
    table = f"{PROJECT}.{DATASET}.customers"

    run(results, "query", lambda: [dict(r) for r in alice.query(
        f"SELECT id, email, balance, last_seen, active FROM {DATASET}.customers ORDER BY id").result()])
    run(results, "nested", lambda: [dict(r) for r in alice.query(
        f"SELECT * FROM {DATASET}.profiles ORDER BY id").result()])
    run(results, "query_and_wait", lambda: [r["id"] for r in alice.query_and_wait(
        f"SELECT id FROM {DATASET}.customers ORDER BY id", page_size=2)])

    def paged():
        job = alice.query(f"SELECT id FROM {DATASET}.customers ORDER BY id")
        pages = list(job.result(page_size=2).pages)
        return {"pages": len(pages), "ids": [r["id"] for p in pages for r in p]}
    run(results, "paged", paged)

    run(results, "list_rows", lambda: sorted(r["id"] for r in alice.list_rows(
        table, selected_fields=[bigquery.SchemaField("id", "INTEGER"), bigquery.SchemaField("email", "STRING")])))
    run(results, "datasets", lambda: [d.dataset_id for d in alice.list_datasets()])
    run(results, "tables", lambda: sorted(t.table_id for t in alice.list_tables(DATASET)))
    run(results, "polling", lambda: [r["email"] for r in client(os.environ["ALICE_TOKEN"], STUB_PROJECT).query_and_wait(
        "SELECT slow", wait_timeout=1)])

    run(results, "denied", lambda: list(alice.query(f"DELETE FROM {DATASET}.customers WHERE true").result()))
    run(results, "bad_token", lambda: list(client("not-a-valid-token").query("SELECT 1").result()))

    def foreign():
        job = alice.query("SELECT 1 AS x")
        job.result()
        return bob.get_job(job.job_id).state
    run(results, "foreign_job", foreign)

    run(results, "extract", lambda: alice.extract_table(table, "gs://bucket/out.csv").result())
    run(results, "copy", lambda: alice.copy_table(table, f"{PROJECT}.{DATASET}.copied").result())
    run(results, "load_uri", lambda: alice.load_table_from_uri("gs://bucket/in.csv", table).result())

    def load_file():
        with tempfile.TemporaryFile() as f:
            f.write(b"id,email\n9,new@example.com\n")
            f.seek(0)
            return alice.load_table_from_file(f, table, job_config=bigquery.LoadJobConfig(source_format="CSV")).result()
    run(results, "load_file", load_file)
    run(results, "export_data", lambda: list(alice.query(
        "EXPORT DATA OPTIONS(uri='gs://b/*.csv', format='CSV') AS SELECT 1").result()))
    run(results, "destination", lambda: list(alice.query("SELECT 1", job_config=bigquery.QueryJobConfig(
        destination=f"{PROJECT}.{DATASET}.out")).result()))

    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
