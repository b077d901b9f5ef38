"""snowflake-connector-python through Sluice reading results that arrive in chunks: every query
is read with fetchall() (Arrow unless cfg['json'] asks for the JSON format). Prints one JSON object."""
import json
import sys

import snowflake.connector

cfg = json.loads(sys.argv[1])
params = {'PYTHON_CONNECTOR_QUERY_RESULT_FORMAT': 'JSON'} if cfg.get('json') else None

conn = snowflake.connector.connect(
    account='sluice', user='agent', host='127.0.0.1', port=cfg['port'], protocol='http',
    authenticator='oauth', token=cfg['token'])
cur = conn.cursor()
out = {}
for name, sql in cfg['queries'].items():
    cur.execute(sql, _statement_params=params)
    out[name] = {'format': cur._query_result_format, 'rows': [[None if v is None else str(v) for v in row] for row in cur.fetchall()]}
conn.close()
print(json.dumps(out))
