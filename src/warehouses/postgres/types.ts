// Built-in PostgreSQL type oids and names. Masking classes a column by its type name (int4,
// text, jsonb, _text for text[]), so the wire's oids are named here; an oid not listed (a
// domain, an enum, an extension's type) is `unknown`, which masking treats as opaque text.
const NAMES: Record<number, string> = {
  16: 'bool', 17: 'bytea', 18: 'char', 19: 'name', 20: 'int8', 21: 'int2', 23: 'int4', 24: 'regproc',
  25: 'text', 26: 'oid', 114: 'json', 142: 'xml', 650: 'cidr', 700: 'float4', 701: 'float8',
  790: 'money', 829: 'macaddr', 869: 'inet', 1042: 'bpchar', 1043: 'varchar', 1082: 'date',
  1083: 'time', 1114: 'timestamp', 1184: 'timestamptz', 1186: 'interval', 1266: 'timetz',
  1560: 'bit', 1562: 'varbit', 1700: 'numeric', 2205: 'regclass', 2206: 'regtype', 2950: 'uuid',
  3802: 'jsonb', 4089: 'regnamespace', 2249: 'record', 2278: 'void', 705: 'unknown',
  1000: '_bool', 1001: '_bytea', 1002: '_char', 1003: '_name', 1005: '_int2', 1007: '_int4',
  1009: '_text', 1014: '_bpchar', 1015: '_varchar', 1016: '_int8', 1021: '_float4',
  1022: '_float8', 1028: '_oid', 1115: '_timestamp', 1182: '_date', 1183: '_time',
  1185: '_timestamptz', 1231: '_numeric', 2951: '_uuid', 199: '_json', 3807: '_jsonb',
  1041: '_inet', 1187: '_interval', 1270: '_timetz', 22: 'int2vector', 30: 'oidvector',
  194: 'pg_node_tree', 3361: 'pg_ndistinct', 3402: 'pg_dependencies', 5017: 'pg_mcv_list',
  28: 'xid', 29: 'cid', 27: 'tid', 3220: 'pg_lsn', 1033: 'aclitem', 1034: '_aclitem'
}

export function typeName (oid: number): string {
  return NAMES[oid] ?? 'unknown'
}

/** Array types (named `_elem`), whose neutral value is a JS array. */
export function isArrayType (oid: number): boolean {
  return (NAMES[oid] ?? '').startsWith('_')
}

export const OID = {
  bool: 16, bytea: 17, int8: 20, int2: 21, int4: 23, text: 25, oid: 26, json: 114,
  float4: 700, float8: 701, bpchar: 1042, varchar: 1043, date: 1082, timestamp: 1114,
  timestamptz: 1184, uuid: 2950, jsonb: 3802, name: 19, char: 18, numeric: 1700
} as const
