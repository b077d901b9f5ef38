"""snowflake-connector-python through Sluice on statements a rule holds for approval: the
scenarios test/approvals/snowflake-wait-python.test.ts decides (approve, deny, expire) or the script cancels
(execute_async, then abort_query) while
each execute() waits. Prints one JSON object; each scenario records its rows or the error."""
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
    account='fake', user='agent', host='127.0.0.1', port=cfg['port'], protocol='http',
    authenticator='oauth', token=cfg['token'], database='SLUICE_TEST', schema='PUBLIC', paramstyle='qmark')
cur = conn.cursor()


def run(sql, params=None):
    def go():
        cur.execute(sql, params)
        return {'rows': [[str(v) for v in r] for r in cur.fetchall()], 'sfqid': cur.sfqid}
    return go


def abort(sql):
    # Submitted without waiting (execute_async), then cancelled by its query id.
    def go():
        qid = cur.execute_async(sql)['queryId']
        status = conn.get_query_status(qid)
        return {'queryId': qid, 'status': status.name, 'stillRunning': conn.is_still_running(status), 'aborted': cur.abort_query(qid)}
    return go


for s in cfg['scenarios']:
    scenario(s['name'], abort(s['sql']) if s.get('abort') else run(s['sql'], s.get('params')))

conn.close()
print(json.dumps(out))
