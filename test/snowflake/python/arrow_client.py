"""snowflake-connector-python (3.x or 5.x, whichever venv runs this) through Sluice: every query
is read with fetchall(), fetch_pandas_all() and fetch_arrow_all(), and once more with the JSON
result format forced by the statement parameter, so the test can compare what the driver makes
of Sluice's Arrow with what it makes of Snowflake's JSON rowset text. Prints one JSON object."""
import datetime
import decimal
import json
import math
import sys

import snowflake.connector

cfg = json.loads(sys.argv[1])
JSON_FORMAT = {'PYTHON_CONNECTOR_QUERY_RESULT_FORMAT': 'JSON'}


def value(v):
    """A value as [python type, text]: enough to tell a date from an int, 1.5 from Decimal('1.50')."""
    # pandas writes a missing timestamp as NaT and a missing float as NaN
    if v is None or type(v).__name__ == 'NaTType' or (isinstance(v, float) and math.isnan(v)):
        return ['None', 'None']
    if isinstance(v, (bytes, bytearray)):
        return [type(v).__name__, bytes(v).hex().upper()]
    # numpy scalars: the kind pandas hands back (int8, float64, bool_…)
    if hasattr(v, 'dtype') and hasattr(v, 'item'):
        return [str(v.dtype), str(v.item())]
    if isinstance(v, datetime.datetime):
        return [type(v).__name__, v.isoformat()]
    return [type(v).__name__, str(v)]


def error(e):
    return {'error': {'type': type(e).__name__, 'errno': getattr(e, 'errno', None), 'msg': str(e)}}


def attempt(fn):
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - the test asserts on the error itself
        return error(e)


def read(cur, sql):
    out = {}

    def fetchall():
        cur.execute(sql)
        out['format'] = cur._query_result_format
        return [[value(v) for v in row] for row in cur.fetchall()]

    def pandas():
        cur.execute(sql)
        df = cur.fetch_pandas_all()
        return {'dtypes': [str(t) for t in df.dtypes], 'rows': [[value(v) for v in row] for row in df.itertuples(index=False)]}

    def arrow():
        cur.execute(sql)
        table = cur.fetch_arrow_all(force_return_table=True)
        return {'types': [str(f.type) for f in table.schema], 'rows': [[value(r[c]) for c in table.column_names] for r in table.to_pylist()]}

    def as_json():
        cur.execute(sql, _statement_params=JSON_FORMAT)
        return {'format': cur._query_result_format, 'rows': [[value(v) for v in row] for row in cur.fetchall()]}

    out['fetchall'] = attempt(fetchall)
    out['pandas'] = attempt(pandas)
    out['arrow'] = attempt(arrow)
    out['json'] = attempt(as_json)
    return out


conn = snowflake.connector.connect(
    account=cfg['account'], user='agent', host='127.0.0.1', port=cfg['port'], protocol='http',
    authenticator='oauth', token=cfg['token'], database='SLUICE_TEST', schema='PUBLIC',
    **({'internal_application_name': cfg['app']} if 'app' in cfg else {}))
cur = conn.cursor()
result = {'version': snowflake.connector.__version__, 'queries': {name: read(cur, sql) for name, sql in cfg['queries'].items()}}
conn.close()
print(json.dumps(result, default=str))
