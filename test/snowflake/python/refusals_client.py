"""snowflake-connector-python through Sluice: runs each statement given and reports what the
connector raised for it. test/snowflake/refusals.test.ts asserts on the JSON this prints."""
import json
import sys

import snowflake.connector

cfg = json.loads(sys.argv[1])
conn = snowflake.connector.connect(
    account='acme', user='agent', host='127.0.0.1', port=cfg['port'], protocol='http',
    authenticator='oauth', token=cfg['token'], database=cfg['database'], schema=cfg['schema'])
cur = conn.cursor()
out = []
for sql in cfg['statements']:
    try:
        cur.execute(sql)
        out.append({'rows': [[str(v) for v in r] for r in cur.fetchall()]})
    except Exception as e:  # noqa: BLE001 - the test asserts on the error itself
        out.append({'type': type(e).__name__, 'errno': getattr(e, 'errno', None), 'sqlstate': getattr(e, 'sqlstate', None), 'msg': getattr(e, 'msg', str(e))})
conn.close()
print(json.dumps(out, default=str))
