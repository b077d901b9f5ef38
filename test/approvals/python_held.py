"""google-cloud-bigquery waiting for a held statement, unchanged: the client's own calls run in a
thread while the main thread plays the approver through Sluice's admin API (plain HTTP), as a
person would from another machine. Run by bigquery-held-python.test.ts; prints one JSON object
(scenario name -> outcome) that the TypeScript test asserts on.
"""
import json
import os
import sys
import threading
import time
import traceback
import urllib.request

import google.oauth2.credentials
from google.cloud import bigquery

URL = os.environ["SLUICE_URL"]
PROJECT = os.environ["BQ_PROJECT"]
DATASET = os.environ["BQ_DATASET"]
AGENT = os.environ["AGENT_TOKEN"]
APPROVER = os.environ["APPROVER_TOKEN"]


def client():
    return bigquery.Client(
        project=PROJECT,
        client_options={"api_endpoint": URL},
        credentials=google.oauth2.credentials.Credentials(token=AGENT),
    )


def admin(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{URL}/admin/v1{path}", data=data, method=method)
    req.add_header("authorization", f"Bearer {APPROVER}")
    if data is not None:
        req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.loads(res.read())


def pending_for(sql):
    deadline = time.time() + 60
    while time.time() < deadline:
        for item in admin("GET", "/approvals?status=pending")["items"]:
            if item["sql"] == sql:
                return item["id"]
        time.sleep(0.1)
    raise RuntimeError(f"no pending approval for {sql}")


def in_thread(fn):
    out = {}

    def target():
        try:
            out["ok"] = fn()
        except Exception as exc:  # the scenario's outcome, asserted by the TypeScript test
            out["error"] = type(exc).__name__
            out["message"] = str(getattr(exc, "message", None) or exc)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, out


def rows_of(iterator):
    return [dict(row.items()) for row in iterator]


def approved(sql, call):
    thread, out = in_thread(call)
    approval = pending_for(sql)
    admin("POST", f"/approvals/{approval}/approve", {"reason": "checked"})
    thread.join(120)
    return {"approval": approval, **out, "status": admin("GET", f"/approvals/{approval}")["status"]}


def main():
    results = {}
    scenarios = {}

    def insert_approved():
        sql = f"SELECT id, email FROM {DATASET}.customers WHERE id = 1"
        # client.query() inserts a job; result() alternates jobs.get and getQueryResults.
        return approved(sql, lambda: rows_of(client().query(sql).result()))

    def query_and_wait_approved():
        sql = f"SELECT id, email FROM {DATASET}.customers WHERE id = 2"
        # jobs.query, then getQueryResults polling on the job it names.
        return approved(sql, lambda: rows_of(client().query_and_wait(sql)))

    def denied():
        sql = f"SELECT id, email FROM {DATASET}.customers WHERE id = 3"
        thread, out = in_thread(lambda: rows_of(client().query(sql).result()))
        approval = pending_for(sql)
        admin("POST", f"/approvals/{approval}/deny", {"reason": "wrong customer"})
        thread.join(120)
        return {"approval": approval, **out}

    def expired():
        sql = f"SELECT id, email FROM {DATASET}.customers WHERE id = 5"
        thread, out = in_thread(lambda: rows_of(client().query(sql).result()))
        approval = pending_for(sql)
        # Nobody decides: the TypeScript side ages the approval past its expiry in the store.
        print(f"expire {approval}", file=sys.stderr, flush=True)
        thread.join(120)
        return {"approval": approval, **out, "status": admin("GET", f"/approvals/{approval}")["status"]}

    def cancelled():
        sql = f"SELECT id, email FROM {DATASET}.customers WHERE id = 4"
        job = client().query(sql)
        state = job.state
        approval = pending_for(sql)
        job.cancel()
        try:
            job.result()
            outcome = {"ok": "ran"}
        except Exception as exc:
            outcome = {"error": type(exc).__name__, "message": str(getattr(exc, "message", None) or exc)}
        return {"approval": approval, "state": state, **outcome, "status": admin("GET", f"/approvals/{approval}")["status"]}

    scenarios.update(insert_approved=insert_approved, query_and_wait_approved=query_and_wait_approved, denied=denied, expired=expired, cancelled=cancelled)
    for name, fn in scenarios.items():
        try:
            results[name] = fn()
        except Exception:
            results[name] = {"harness_error": traceback.format_exc()}
    print(json.dumps(results, default=str))


main()
