// Functions that act (cancel, abort, terminate, set, wait, lock…) make a statement a `call`,
// whatever its SELECT shape; the read-only SYSTEM$ functions stay reads. Checked on the real
// analyzer and, for the shipped default policy, through the policy engine: an agent's
// `SELECT system$cancel_all_queries(…)` must not pass as a read.
import { describe, expect, it } from 'vitest'
import { createSqlAnalyzer } from '../../src/sql/analyzer.js'
import { actingFunctions } from '../../src/sql/system-functions.js'
import { createPolicyEngine } from '../../src/policy/evaluator.js'
import { loadPolicyDirectory } from '../../src/policy/loader.js'
import type { Dialect } from '../../src/sql/types.js'

const analyzer = await createSqlAnalyzer({ cacheSize: 0 })
const first = (sql: string, dialect: Dialect) => analyzer.analyze(sql, dialect).statements[0]!

describe('functions that act', () => {
  it.each([
    'SELECT SYSTEM$CANCEL_ALL_QUERIES(1065153872298)',
    "select system$cancel_query('01a2-b3')",
    'SELECT SYSTEM$ABORT_SESSION(42)',
    'SELECT SYSTEM$ABORT_TRANSACTION(7)',
    "SELECT SYSTEM$SET_RETURN_VALUE('done')",
    'SELECT SYSTEM$WAIT(10)',
    "SELECT SYSTEM$PIPE_FORCE_RESUME('db.s.p')",
    "SELECT SYSTEM$TASK_DEPENDENTS_ENABLE('db.s.t')",
    "SELECT SYSTEM$USER_TASK_CANCEL_ONGOING_EXECUTIONS('db.s.t')",
    'SELECT id, SYSTEM$CANCEL_ALL_QUERIES(id) FROM sessions_to_kill',
    'SELECT * FROM orders WHERE SYSTEM$WAIT(1) IS NOT NULL',
    'SET x = (SELECT SYSTEM$ABORT_SESSION(1))',
    // Unknown SYSTEM$ functions act until they are listed as read-only.
    "SELECT SYSTEM$SOMETHING_NEW('x')"
  ])('Snowflake: %s is a call', (sql) => {
    const s = first(sql, 'snowflake')
    expect(s.kind).toBe('call')
    expect(s.acting?.length).toBeGreaterThan(0)
  })

  it.each([
    'SELECT SYSTEM$TYPEOF(total) FROM orders',
    "SELECT SYSTEM$CLUSTERING_INFORMATION('orders')",
    "SELECT SYSTEM$PIPE_STATUS('db.s.p')",
    "SELECT SYSTEM$STREAM_HAS_DATA('db.s.st')",
    'SELECT CURRENT_SESSION(), UPPER(name) FROM customers'
  ])('Snowflake: %s stays a read', (sql) => {
    const s = first(sql, 'snowflake')
    expect(s.kind).toBe('select')
    expect(s.acting).toBeUndefined()
  })

  it.each([
    'SELECT pg_cancel_backend(4242)',
    'SELECT pg_terminate_backend(pid) FROM pg_stat_replication',
    "SELECT set_config('search_path', 'evil', false)",
    'SELECT pg_reload_conf()',
    "SELECT nextval('orders_id_seq')",
    'SELECT pg_advisory_lock(1)',
    'SELECT pg_sleep(60)',
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT pg_drop_replication_slot('s')",
    'SELECT pg_stat_reset()',
    "SELECT * FROM dblink('host=x', 'DELETE FROM t') AS r(n int)"
  ])('PostgreSQL: %s is a call', (sql) => {
    expect(first(sql, 'postgres').kind).toBe('call')
  })

  it.each([
    'SELECT now(), lower(name) FROM app.public.users',
    "SELECT current_setting('search_path')",
    'SELECT pg_backend_pid()'
  ])('PostgreSQL: %s stays a read', (sql) => {
    expect(first(sql, 'postgres').kind).toBe('select')
  })

  it('leaves writes their own kind and names the acting functions', () => {
    const s = first('INSERT INTO log SELECT SYSTEM$CANCEL_QUERY(q) FROM queries', 'snowflake')
    expect(s.kind).toBe('insert')
    expect(s.acting).toEqual(['system$cancel_query'])
    // SYSTEM$ names mean nothing to BigQuery.
    expect(actingFunctions(['system$cancel_query'], 'bigquery')).toEqual([])
  })

  it('the shipped default policy holds them for approval instead of allowing them as reads', async () => {
    const engine = createPolicyEngine(await loadPolicyDirectory(new URL('../../policies/', import.meta.url).pathname))
    const principal = { subject: 'claude-code@ci', type: 'machine' as const, roles: ['agent'], groups: [] }
    const decide = (sql: string, kind: 'snowflake' | 'postgres') =>
      engine.decide({ principal, connection: { name: `${kind}-prod`, kind }, analysis: analyzer.analyze(sql, kind), now: new Date() } as never)
    expect(decide('SELECT SYSTEM$CANCEL_ALL_QUERIES(1065153872298)', 'snowflake')).toMatchObject({ effect: 'require_approval', ruleId: 'agents-writes-need-approval' })
    expect(decide('SELECT pg_terminate_backend(4242)', 'postgres')).toMatchObject({ effect: 'require_approval', ruleId: 'agents-writes-need-approval' })
    expect(decide('SELECT SYSTEM$TYPEOF(1)', 'snowflake')).toMatchObject({ effect: 'allow', ruleId: 'agents-read-only' })
  })
})
