"""snowflake-connector-python through Sluice: statement parameters on the allow-list run, others
are refused. test/snowflake/parameters.test.ts asserts on the JSON this prints."""
import json
import sys

import snowflake.connector

cfg = json.loads(sys.argv[1])
out = {}


def error(e):
    return {'type': type(e).__name__, 'errno': getattr(e, 'errno', None), 'sqlstate': getattr(e, 'sqlstate', None), 'msg': str(e)}


def scenario(name, fn):
    try:
        out[name] = fn()
    except Exception as e:  # noqa: BLE001 - the test asserts on the error itself
        out[name] = {'error': error(e)}


conn = snowflake.connector.connect(
    account='acme', user='agent', host='127.0.0.1', port=cfg['port'], protocol='http',
    authenticator='oauth', token=cfg['token'])
cur = conn.cursor()


def run(sql, **kwargs):
    cur.execute(sql, **kwargs)
    return {'rows': [[str(v) for v in r] for r in cur.fetchall()]}


scenario('plain', lambda: run('SELECT PY_PLAIN'))
scenario('allowed', lambda: run('SELECT PY_ALLOWED', _statement_params={'QUERY_TAG': 'py-agent', 'TIMEZONE': 'UTC', 'date_output_format': 'YYYY-MM-DD'}))
scenario('multi', lambda: run('SELECT PY_PLAIN; SELECT PY_PLAIN', num_statements=2))
scenario('refused', lambda: run('SELECT PY_REFUSED', _statement_params={'USE_CACHED_RESULT': False}))
scenario('searchPath', lambda: run('SELECT PY_REFUSED', _statement_params={'SEARCH_PATH': 'OTHER.PUBLIC'}))
conn.close()
print(json.dumps(out, default=str))
