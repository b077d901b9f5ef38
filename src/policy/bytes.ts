// Sizes as policy files write them (`estimatedBytesOver: 10GiB`) and as refusals say them.
// KB/MB/GB… are powers of 1000 and KiB/MiB/GiB… powers of 1024, as BigQuery's own pricing
// pages mean them; a bare number is bytes.

const UNITS: Record<string, number> = {
  B: 1,
  KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, PB: 1e15,
  KIB: 2 ** 10, MIB: 2 ** 20, GIB: 2 ** 30, TIB: 2 ** 40, PIB: 2 ** 50
}

/** Bytes of `10GiB`, `500 MB`, `1.5TB` or a number; undefined for anything else. */
export function parseBytes (value: number | string): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGTP]i?B|B)?\s*$/i.exec(value)
  if (m === null) return undefined
  const unit = UNITS[(m[2] ?? 'B').toUpperCase()]
  if (unit === undefined) return undefined
  const bytes = Math.round(Number(m[1]) * unit)
  return Number.isSafeInteger(bytes) ? bytes : undefined
}

/** `12.5 GiB (13421772800 bytes)`: the unit people read, and the exact number. */
export function formatBytes (bytes: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB']
  let value = bytes
  let unit = ''
  for (const u of units) {
    if (value < 1024) break
    value /= 1024
    unit = u
  }
  return unit === '' ? `${bytes} bytes` : `${Number(value.toFixed(2))} ${unit} (${bytes} bytes)`
}
