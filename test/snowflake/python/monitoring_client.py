"""snowflake-connector-python asking for a query's status after Sluice forgot its session (a
restart, an expiry sweep): test/snowflake/monitoring-python.test.ts. Prints READY once it has a
query id, waits for the test to drop the session (a flag file), asks again, prints one JSON."""
import json
import os
import sys
import time

import snowflake.connector

cfg = json.loads(sys.argv[1])


def error(e):
    return {'type': type(e).__name__, 'errno': getattr(e, 'errno', None), 'msg': str(e)}


conn = snowflake.connector.connect(
    account=cfg['account'], user='agent', host='127.0.0.1', port=cfg['port'], protocol='http',
    authenticator='oauth', token=cfg['token'])
cur = conn.cursor()
cur.execute('SELECT 1')
qid = cur.sfqid
out = {'before': conn.get_query_status(qid).name}
print('READY', flush=True)
deadline = time.time() + 60
while not os.path.exists(cfg['flag']) and time.time() < deadline:
    time.sleep(0.05)
try:
    out['after'] = conn.get_query_status_throw_if_error(qid).name
except Exception as e:  # noqa: BLE001 - the test asserts on the error itself
    out['after'] = {'error': error(e)}
print(json.dumps(out), flush=True)
