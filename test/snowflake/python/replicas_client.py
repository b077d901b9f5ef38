"""snowflake-connector-python through the round-robin proxy in front of two gateway replicas
(test/integration/connector-replicas.test.ts): one login, then statements that land on both
replicas and need the login's upstream session (a temporary table). Prints one JSON object."""
import json
import sys

import snowflake.connector

cfg = json.loads(sys.argv[1])
conn = snowflake.connector.connect(
    account='sluice', user='agent', host='127.0.0.1', port=cfg['port'], protocol='http',
    authenticator='oauth', token=cfg['token'], database='SLUICE_TEST', schema='PUBLIC')
cur = conn.cursor()
cur.execute('CREATE TEMPORARY TABLE PY_NOTES (N INTEGER, S VARCHAR)')
cur.execute("INSERT INTO PY_NOTES VALUES (1, 'one'), (2, 'two')")
cur.execute('SELECT N, S FROM PY_NOTES ORDER BY N')
rows = [[str(v) for v in r] for r in cur.fetchall()]
cur.execute('SELECT SUM(N) FROM PY_NOTES')
total = str(cur.fetchone()[0])
conn.close()
print(json.dumps({'rows': rows, 'total': total}))
