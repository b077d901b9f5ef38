"""Schemathesis hooks and checks for Sluice's conformance runs (test/conformance/schemathesis.test.ts).

Loaded with SCHEMATHESIS_HOOKS=hooks (this folder on PYTHONPATH). The run is described by:
  SLUICE_ST_API      sqlapi | admin   which document is under test
  SLUICE_ST_ROLE     none | agent | auditor   which token the run sends (none: no Authorization)
  SLUICE_ST_BASE     the gateway's base URL
  SLUICE_ST_AUDITOR  an auditor token, to read each SQL API round trip's recorded decision

Every change made here to Snowflake's published document is a documented deviation: each carries
the id of its entry in DEVIATIONS.md (the one list, with the reasons), and the test checks that
the ids here and there agree.
"""
import json
import os
import re
import threading
import urllib.parse
import urllib.request

import schemathesis
from hypothesis import strategies as st

API = os.environ.get('SLUICE_ST_API', 'sqlapi')
ROLE = os.environ.get('SLUICE_ST_ROLE', 'agent')
# The run's own token ('' for none): requests schemathesis sends without it (auth probes) or with
# one it made up are expected to get 401, whatever the run's role.
TOKEN = os.environ.get('SLUICE_ST_TOKEN', '')
BASE = os.environ.get('SLUICE_ST_BASE', '')
AUDITOR = os.environ.get('SLUICE_ST_AUDITOR', '')

# Deviation ids this file applies; DEVIATIONS.md must list exactly these (checked by the test).
APPLIED = ['relative-status-url', 'statement-required', 'timeout-maximum', 'null-rowtype-sizes', 'user-agent-optional', 'opaque-cursor', 'header-limit']

# A few requestIds shared by every generated submission, so keys are reused across statements
# all the time: the case the issue found (an allowed SELECT's key reused for a denied DROP).
REQUEST_IDS = [
    '0b8c6f7e-3f0e-4e55-8c1e-5b2a1d9e0a01',
    '0b8c6f7e-3f0e-4e55-8c1e-5b2a1d9e0a02',
    '0b8c6f7e-3f0e-4e55-8c1e-5b2a1d9e0a03',
]
ALLOWED = [
    'SELECT ID, EMAIL FROM CUSTOMERS ORDER BY ID',
    'SELECT COUNT(*) AS N FROM ORDERS',
    'SELECT 1 AS ONE',
]
# Refused by the shipped default policy (policies/default.yaml) for every role: DDL and DCL are
# denied, writes need an approval nobody gives. None of them may ever be answered as a success.
DENIED = [
    'DROP TABLE CUSTOMERS',
    'DELETE FROM CUSTOMERS',
    'UPDATE ORDERS SET AMOUNT = 0',
    'GRANT SELECT ON TABLE CUSTOMERS TO ROLE PUBLIC',
    'CREATE TABLE STOLEN AS SELECT * FROM CUSTOMERS',
    'SELECT 1; DROP TABLE ORDERS',
]
SUBMIT = ('POST', '/api/v2/statements')


def _walk(node, fn):
    if isinstance(node, dict):
        fn(node)
        for value in node.values():
            _walk(value, fn)
    elif isinstance(node, list):
        for value in node:
            _walk(value, fn)


@schemathesis.hook
def before_load_schema(context, raw_schema):
    if API != 'sqlapi':
        return

    def relative_status_url(node):
        # relative-status-url: statementStatusUrl is a path, as Snowflake itself answers.
        props = node.get('properties')
        if isinstance(props, dict) and isinstance(props.get('statementStatusUrl'), dict):
            props['statementStatusUrl'].pop('format', None)

    _walk(raw_schema, relative_status_url)
    # statement-required: a body without "statement" is refused (400), by Snowflake as by Sluice.
    body = raw_schema['paths']['/api/v2/statements']['post']['requestBody']['content']['application/json']['schema']
    body['required'] = ['statement']
    # timeout-maximum: the description's upper bound (604800 s, 7 days), which Sluice enforces.
    body['properties']['timeout']['maximum'] = 604800
    # null-rowtype-sizes: length, precision and scale are null where they do not apply.
    row_type = raw_schema['components']['schemas']['ResultSet']['properties']['resultSetMetaData']['properties']['rowType']['items']
    for name in ('length', 'precision', 'scale'):
        row_type['properties'][name]['nullable'] = True
    # user-agent-optional: Sluice serves requests without User-Agent.
    raw_schema['components']['parameters']['userAgent']['required'] = False


# header-limit: Node refuses a request line and headers above listen.maxHeaderBytes with 431
# before Sluice reads the request, whatever the request's content or credentials.
HEADER_LIMIT = 431


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Drops failures that are the documented deviations above, and only those."""
    if response is not None and response.status_code == HEADER_LIMIT and failure.code != 'ST901':
        return False
    # opaque-cursor: a cursor Sluice did not issue is refused, however schema-valid it looks.
    if API == 'admin' and failure.code == 'ST202' and response is not None and response.status_code == 400:
        body = _body(response) or {}
        if 'cursor is not one this API issued' in str(body.get('message', '')) and 'cursor' in (case.query or {}):
            return False
    return True


def _positive(case):
    meta = getattr(case, 'meta', None)
    return meta is not None and not meta.generation.mode.is_negative


@schemathesis.hook
def flatmap_case(context, case):
    """Positive submissions draw their statement and requestId from the pools above, often."""
    if (case.operation.method.upper(), case.operation.path) != SUBMIT or not _positive(case) or not isinstance(case.body, dict):
        return st.just(case)

    def apply(choice):
        statement, request_id = choice
        if statement is not None:
            case.body = {**case.body, 'statement': statement}
            # The document's example context (TESTDB, TESTROLE…) is not this connection's.
            for key in ('database', 'schema', 'warehouse', 'role'):
                case.body.pop(key, None)
        if request_id is not None:
            case.query = {**(case.query or {}), 'requestId': request_id}
        return case

    statements = st.one_of(st.none(), st.sampled_from(ALLOWED + DENIED))
    request_ids = st.one_of(st.none(), st.sampled_from(REQUEST_IDS))
    return st.tuples(statements, request_ids).map(apply)


def _header(response, name):
    value = response.headers.get(name.lower())
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _body(response):
    try:
        return response.json()
    except Exception:  # noqa: BLE001 - not JSON is not this check's concern
        return None


@schemathesis.check
def sluice_auth_before_validation(ctx, response, case):
    """No token: 401; a token without the route's role: 403 — whatever else is wrong with the request."""
    if response.status_code == HEADER_LIMIT:
        return None
    sent = response.request.headers.get('Authorization')
    if sent != f'Bearer {TOKEN}' or ROLE == 'none':
        expected = 401
    elif API == 'admin' and ROLE != 'auditor':
        expected = 403
    else:
        return None
    if response.status_code != expected:
        raise AssertionError(f'expected {expected} before any validation, got {response.status_code}: {response.text[:300]}')
    body = _body(response) or {}
    code = str(body.get('code', ''))
    if not code.startswith('SLUICE_AUTH') and code != 'SLUICE_FORBIDDEN' and code != '390303':
        raise AssertionError(f'a {expected} that is not an authentication or role refusal: {response.text[:300]}')
    return None


_handles = {}
_lock = threading.Lock()


def _decision(request_id):
    url = f'{BASE}/admin/v1/events?' + urllib.parse.urlencode({'requestId': request_id, 'limit': 5})
    req = urllib.request.Request(url, headers={'Authorization': f'Bearer {AUDITOR}'})
    with urllib.request.urlopen(req, timeout=30) as res:
        items = json.loads(res.read().decode())['items']
    return items[0] if items else None


@schemathesis.check
def sluice_denied_never_success(ctx, response, case):
    """A denied statement is never answered 200/202; no handle answers for another statement."""
    if (case.operation.method.upper(), case.operation.path) != SUBMIT or response.status_code not in (200, 202):
        return None
    body = case.body if isinstance(case.body, dict) else {}
    statement = body.get('statement')
    if statement in DENIED:
        raise AssertionError(f'denied statement answered {response.status_code}: {statement!r} -> {response.text[:300]}')
    answer = _body(response) or {}
    handle = answer.get('statementHandle')
    if isinstance(handle, str) and isinstance(statement, str):
        with _lock:
            first = _handles.setdefault(handle, statement)
        if first != statement:
            raise AssertionError(f'handle {handle} of {first!r} answered for {statement!r}')
    request_id = _header(response, 'x-request-id')
    if AUDITOR and request_id:
        event = _decision(request_id)
        if event is None:
            raise AssertionError(f'no recorded event for the successful round trip {request_id}')
        if event.get('decision') in ('deny', 'require_approval') or event.get('outcome') == 'denied':
            raise AssertionError(f'recorded as {event.get("decision")}/{event.get("outcome")} but answered {response.status_code}')
        if event.get('sqlText') not in (None, statement):
            raise AssertionError(f'recorded SQL {event.get("sqlText")!r} differs from the request {statement!r}')
    return None


_VALIDATION = re.compile(r'querystring/|params/|body/|must NOT|must match|must be')


@schemathesis.check
def sluice_no_shape_to_strangers(ctx, response, case):
    """Refusals of authentication or role never carry validation detail."""
    if response.status_code in (401, 403) and _VALIDATION.search(response.text or ''):
        raise AssertionError(f'{response.status_code} carries validation detail: {response.text[:300]}')
    return None
