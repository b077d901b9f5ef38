// CPU the Postgres server spends for one store database: the backends connected to it, read
// from /proc (the server runs on this machine). Recording costs CPU in Postgres as well as in
// the gateway; the gateway's /proc numbers alone would hide that half.
import postgres from 'postgres'
import { procCpuMs } from '../support/proc-stats.js'

export interface StoreCpu {
  /** CPU ms of the database's backends since the last call (backends that left are lost). */
  sample: () => Promise<number>
  close: () => Promise<void>
}

export function storeCpu (url: string): StoreCpu {
  const sql = postgres(url, { max: 1, onnotice: () => {} })
  let last = new Map<number, number>()
  const read = async (): Promise<Map<number, number>> => {
    const rows = await sql<Array<{ pid: number }>>`select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`
    const now = new Map<number, number>()
    for (const { pid } of rows) {
      try { now.set(pid, procCpuMs(pid)) } catch { /* gone between the query and the read */ }
    }
    return now
  }
  return {
    async sample () {
      const now = await read()
      let spent = 0
      for (const [pid, ms] of now) spent += ms - (last.get(pid) ?? 0)
      last = now
      return spent
    },
    close: async () => { await sql.end({ timeout: 5 }) }
  }
}
