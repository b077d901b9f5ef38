"""Snowpark (with snowflake-connector-python 3.x) through Sluice: what Snowpark-based agent tools
do — session.sql(...).to_pandas(), session.table(...).collect() — and Session.close(), which
sends select system$cancel_all_queries(<session id>). Prints one JSON object."""
import json
import sys

from snowflake.snowpark import Session

cfg = json.loads(sys.argv[1])
out = {}


def value(v):
    if hasattr(v, 'dtype') and hasattr(v, 'item'):
        return [str(v.dtype), str(v.item())]
    return [type(v).__name__, str(v)]


def attempt(name, fn):
    try:
        out[name] = fn()
    except Exception as e:  # noqa: BLE001 - the test asserts on the error itself
        out[name] = {'error': {'type': type(e).__name__, 'msg': str(e)}}


session = Session.builder.configs({
    'account': cfg['account'], 'user': 'agent', 'host': '127.0.0.1', 'port': cfg['port'], 'protocol': 'http',
    'authenticator': 'oauth', 'token': cfg['token'], 'database': 'SLUICE_TEST', 'schema': 'PUBLIC'}).create()
out['sessionId'] = session.session_id


def to_pandas():
    df = session.sql('SELECT ID, NAME, EMAIL, BALANCE, SIGNED_UP FROM CUSTOMERS ORDER BY ID').to_pandas()
    return {'dtypes': [str(t) for t in df.dtypes], 'rows': [[value(v) for v in row] for row in df.itertuples(index=False)]}


def collect():
    rows = session.table('CUSTOMERS').sort('ID').collect()
    return [{k: value(v) for k, v in row.as_dict().items()} for row in rows]


attempt('to_pandas', to_pandas)
attempt('collect', collect)
attempt('date', lambda: [[value(v) for v in row] for row in session.sql("SELECT '2024-01-02'::DATE AS D").to_pandas().itertuples(index=False)])
attempt('close', lambda: session.close() or 'closed')
print(json.dumps(out, default=str))
