// What a child process costs, read from Linux's /proc as the kernel counts it: resident memory
// (now and the high-water mark) and CPU time (user + system). The replica harness reports the
// gateway's peak RSS with it and the benchmark its CPU per request; both must measure the
// gateway process itself, not the test process that drives it.
import { readFileSync } from 'node:fs'

export interface ProcMemory {
  /** VmHWM: the peak resident set since the process started. */
  peakRssBytes: number
  /** VmRSS: the resident set now. */
  rssBytes: number
}

function kib (status: string, field: string, pid: number): number {
  const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB$`, 'm').exec(status)
  if (match === null) throw new Error(`/proc/${pid}/status has no ${field} (not Linux, or the process is gone)`)
  return Number(match[1]) * 1024
}

export function procMemory (pid: number): ProcMemory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return { peakRssBytes: kib(status, 'VmHWM', pid), rssBytes: kib(status, 'VmRSS', pid) }
}

/** Clock ticks per second for /proc/<pid>/stat; 100 on every Linux Node supports (USER_HZ). */
const CLOCK_TICKS_PER_SECOND = 100

/** utime + stime of `pid` in milliseconds (10 ms resolution: measure over many requests). */
export function procCpuMs (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // The command name (field 2) is in parentheses and may hold spaces: count fields after it.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // After the name, field 3 (state) is index 0, so utime (14) is 11 and stime (15) is 12.
  const ticks = Number(fields[11]) + Number(fields[12])
  return ticks * 1000 / CLOCK_TICKS_PER_SECOND
}
