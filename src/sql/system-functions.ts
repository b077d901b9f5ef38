// Functions that act rather than read: a SELECT that calls one is not a read, whatever its
// shape. Snowflake's SYSTEM$ functions cancel and abort statements and sessions, set return
// values, wait, resume pipes, run tasks, refresh and alter objects; PostgreSQL's admin functions
// cancel and terminate other backends, change settings, reload the configuration, take locks,
// move sequences and write files. A statement that calls one is a `call`, which the shipped
// default refuses to agents, so `SELECT system$cancel_all_queries(…)` cannot ride on a read rule.
//
// Fail closed for Snowflake: every SYSTEM$ function acts unless it is on the read-only list
// below, so one Snowflake adds tomorrow is a call until someone reads its documentation. For
// PostgreSQL, where ordinary functions vastly outnumber admin ones, the acting ones are listed.
import type { Dialect } from './types.js'

/** SYSTEM$ functions that only return information about objects, values or the account. */
const SNOWFLAKE_READ_ONLY = new Set([
  'system$typeof',
  'system$clustering_information', 'system$clustering_depth', 'system$clustering_ratio',
  'system$explain_plan_json', 'system$explain_json_to_text',
  'system$get_tag', 'system$get_tag_allowed_values', 'system$get_tag_on_current_column', 'system$get_tag_on_current_table',
  'system$pipe_status', 'system$stream_has_data', 'system$stream_get_table_timestamp',
  'system$last_change_commit_time', 'system$current_user_task_name', 'system$get_predecessor_return_value',
  'system$task_runtime_info', 'system$get_snowflake_platform_info',
  'system$estimate_search_optimization_costs', 'system$estimate_query_acceleration',
  'system$is_listing_purchased', 'system$is_listing_triggered',
  'system$allowlist', 'system$whitelist', 'system$get_privatelink_config'
])

/** PostgreSQL functions with effects beyond returning a value. */
const POSTGRES_ACTING = new Set([
  // other sessions and the server
  'pg_cancel_backend', 'pg_terminate_backend', 'pg_reload_conf', 'pg_rotate_logfile', 'pg_promote',
  'pg_switch_wal', 'pg_create_restore_point', 'pg_backup_start', 'pg_backup_stop', 'pg_start_backup', 'pg_stop_backup',
  'pg_wal_replay_pause', 'pg_wal_replay_resume', 'pg_log_backend_memory_contexts', 'pg_import_system_collations',
  'pg_logical_emit_message', 'pg_notify', 'pg_sleep', 'pg_sleep_for', 'pg_sleep_until',
  // settings, sequences, locks
  'set_config', 'nextval', 'setval',
  'pg_advisory_lock', 'pg_advisory_lock_shared', 'pg_try_advisory_lock', 'pg_try_advisory_lock_shared',
  'pg_advisory_xact_lock', 'pg_advisory_xact_lock_shared', 'pg_try_advisory_xact_lock', 'pg_try_advisory_xact_lock_shared',
  'pg_advisory_unlock', 'pg_advisory_unlock_shared', 'pg_advisory_unlock_all',
  // files on the server and large objects
  'pg_read_file', 'pg_read_binary_file', 'pg_ls_dir', 'pg_stat_file', 'pg_file_write', 'pg_file_rename', 'pg_file_unlink',
  'lo_import', 'lo_export', 'lo_unlink', 'lo_create', 'lo_creat', 'lo_from_bytea', 'lo_put', 'lo_truncate',
  // SQL run elsewhere (dblink)
  'dblink', 'dblink_exec', 'dblink_connect', 'dblink_connect_u', 'dblink_send_query', 'dblink_open', 'dblink_fetch'
])

/** Families of PostgreSQL admin functions named by prefix (replication slots, statistics resets). */
const POSTGRES_ACTING_PREFIX = /^pg_(stat_reset|(create|drop|copy)_\w*replication_slot|replication_slot_advance|replication_origin_)/

/** The acting functions among a statement's functions (names as the analyzer reports them). */
export function actingFunctions (functions: readonly string[], dialect: Dialect): string[] {
  const out: string[] = []
  for (const fn of functions) {
    const name = fn.slice(fn.lastIndexOf('.') + 1)
    if (dialect === 'snowflake' && name.startsWith('system$') && !SNOWFLAKE_READ_ONLY.has(name)) out.push(fn)
    else if (dialect === 'postgres' && (POSTGRES_ACTING.has(name) || POSTGRES_ACTING_PREFIX.test(name))) out.push(fn)
  }
  return out
}
