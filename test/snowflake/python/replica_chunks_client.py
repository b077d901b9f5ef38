"""snowflake-connector-python reading one chunked result through the round-robin proxy in front
of gateway replicas (test/integration/replicas-chunks.test.ts), in the format cfg['format']
names: 'arrow' (the connector's default) or 'json' (asked for with the statement parameter).

Every row is checked here against the loopback upstream's generator (ID i, EMAIL masked to
'****', NOTE 'note i: <pad>'), streaming through the cursor, so neither this process nor the
test holds the result: a million rows cost a summary line. The first and last rows are printed
as read so the test can compare them with its own generator. Prints one JSON object."""
import json
import sys
import time

import snowflake.connector

cfg = json.loads(sys.argv[1])
params = {'PYTHON_CONNECTOR_QUERY_RESULT_FORMAT': 'JSON'} if cfg['format'] == 'json' else None
pad = cfg['pad']

conn = snowflake.connector.connect(
    account=cfg['account'], user='agent', host='127.0.0.1', port=cfg['port'], protocol='http',
    authenticator='oauth', token=cfg['token'])
started = time.monotonic()
cur = conn.cursor()
cur.execute(cfg['sql'], _statement_params=params)
out = {'format': cur._query_result_format, 'rowcount': cur.rowcount, 'rows': 0, 'mismatches': 0}
first = last = None
for row in cur:
    i = out['rows'] + 1
    out['rows'] = i
    # The connector hands NUMBER(38,0) back as int from either format.
    if not (type(row[0]) is int and row[0] == i and row[1] == '****' and row[2] == f'note {i}: {pad}'):
        out['mismatches'] += 1
        out.setdefault('firstMismatch', {'row': i, 'value': [repr(v) for v in row]})
    if first is None:
        first = list(row)
    last = list(row)
out['first'] = first
out['last'] = last
out['seconds'] = round(time.monotonic() - started, 1)
conn.close()
print(json.dumps(out))
