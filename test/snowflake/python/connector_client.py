"""snowflake-connector-python through Sluice: the scenarios test/snowflake/connector-python.test.ts
asserts on. Prints one JSON object; each scenario records its outcome or the error it raised."""
import json
import sys

import snowflake.connector

cfg = json.loads(sys.argv[1])
out = {}


def connect(token, account=cfg['account']):
    # What an agent changes to go through Sluice: host/port/protocol, authenticator and token.
    return snowflake.connector.connect(
        account=account, user='agent', host='127.0.0.1', port=cfg['port'], protocol='http',
        authenticator='oauth', token=token, database='SLUICE_TEST', schema='PUBLIC')


def error(e):
    return {'type': type(e).__name__, 'errno': getattr(e, 'errno', None), 'sqlstate': getattr(e, 'sqlstate', None), 'msg': str(e)}


def scenario(name, fn):
    try:
        out[name] = fn()
    except Exception as e:  # noqa: BLE001 - the test asserts on the error itself
        out[name] = {'error': error(e)}


conn = connect(cfg['token'])
cur = conn.cursor()


def select():
    cur.execute('SELECT ID, EMAIL, SSN, BALANCE, SIGNED_UP, ACTIVE FROM CUSTOMERS ORDER BY ID')
    return {'rows': [[str(v) for v in r] for r in cur.fetchall()], 'sfqid': cur.sfqid}


def bind():
    cur.execute('SELECT EMAIL FROM CUSTOMERS WHERE ID = %s', (2,))
    return cur.fetchall()


def dml():
    cur.execute('UPDATE ORDERS SET AMOUNT = 4 WHERE ID = 2')
    return {'rowcount': cur.rowcount}


def multi():
    cur.execute('SELECT 1 AS A; SELECT EMAIL FROM CUSTOMERS WHERE ID = 3', num_statements=2)
    first = cur.fetchall()
    has_next = cur.nextset() is not None
    return {'first': first, 'has_next': has_next, 'second': cur.fetchall()}


def run_async():
    cur.execute_async('SELECT COUNT(*) FROM CUSTOMERS')
    qid = cur.sfqid
    cur.get_results_from_sfqid(qid)
    return {'qid': qid, 'rows': cur.fetchall()}


scenario('select', select)
scenario('bind', bind)
scenario('dml', dml)
scenario('error', lambda: cur.execute('SELECT * FROM NO_SUCH_TABLE'))
scenario('multi', multi)
scenario('async', run_async)
scenario('denied', lambda: cur.execute('DELETE FROM CUSTOMERS WHERE ID = 1'))
scenario('put', lambda: cur.execute("PUT file:///tmp/sluice-absent.csv @~/staged"))


def foreign():
    bob = connect(cfg['bobToken'])
    try:
        bcur = bob.cursor()
        bcur.get_results_from_sfqid(out['select']['sfqid'])
        return {'rows': bcur.fetchall()}
    finally:
        bob.close()


scenario('foreign', foreign)


def large():
    big = connect(cfg['token'], account='large')
    try:
        bcur = big.cursor()
        bcur.execute("SELECT SEQ4() AS N, 'row-' || SEQ4() AS S FROM TABLE(GENERATOR(ROWCOUNT => 3000)) ORDER BY N")
        rows = bcur.fetchall()
        return {'count': len(rows), 'last': list(rows[-1])}
    finally:
        big.close()


scenario('large', large)
scenario('badToken', lambda: connect('not-a-jwt').close())
conn.close()
print(json.dumps(out, default=str))
