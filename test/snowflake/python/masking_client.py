"""snowflake-connector-python through Sluice: runs one SELECT and prints its rows as JSON, for
test/snowflake/masking.test.ts to search for canary values."""
import json
import sys

import snowflake.connector

cfg = json.loads(sys.argv[1])
conn = snowflake.connector.connect(
    account='sluice', user='agent', host='127.0.0.1', port=cfg['port'], protocol='http',
    authenticator='oauth', token=cfg['token'])
cur = conn.cursor()
cur.execute(cfg['sql'])
rows = [[str(v) for v in r] for r in cur.fetchall()]
conn.close()
print(json.dumps({'rows': rows}))
