// JSON rowset codec: Snowflake `rowtype` ↔ neutral ColumnMeta, JSON `rowset` ↔ neutral rows.
//
// Neutral values from Snowflake are the JSON rowset's own text (FIXED "12.50", DATE as days
// since the epoch, TIMESTAMP_NTZ as "seconds.fraction", BOOLEAN "1"/"0", VARIANT as JSON text)
// or null. That encoding is lossless for every type, is what both drivers read, and is what
// the Arrow codec produces too — so masking sees one representation whatever the wire was.
import type { ColumnMeta, ResultSchema } from '../../pipeline/types.js'
import type { RowTypeEntry } from './query-data.js'

export function schemaFromRowtype (rowtype: RowTypeEntry[]): ResultSchema {
  return {
    columns: rowtype.map((r): ColumnMeta => {
      const column: ColumnMeta = { name: r.name, type: r.type.toUpperCase(), nullable: r.nullable !== false }
      if (r.table !== undefined && r.table !== '' && r.table !== null) {
        column.source = { table: [r.database, r.schema, r.table].filter((p) => p !== undefined && p !== '').join('.'), column: r.name }
      }
      return column
    })
  }
}

/**
 * Values exactly as the rowset carries them (anything that is not text or null becomes its JSON
 * text). In place: the rowset was just parsed and belongs to the caller, and a page of a large
 * result is tens of thousands of rows that need not be copied.
 */
export function rowsFromRowset (rowset: unknown[][]): unknown[][] {
  for (const row of rowset) {
    for (let i = 0; i < row.length; i++) {
      const v = row[i]
      if (v !== null && typeof v !== 'string') row[i] = JSON.stringify(v)
    }
  }
  return rowset
}

/**
 * Neutral rows back to rowset text (a mask function may have produced numbers or objects), in
 * place: every caller encodes rows it owns (a masked page, a first page read for this request).
 */
export function rowsetFromRows (rows: unknown[][]): Array<Array<string | null>> {
  for (const row of rows) {
    for (let i = 0; i < row.length; i++) {
      const v = row[i]
      if (v !== null && typeof v !== 'string') row[i] = toText(v)
    }
  }
  return rows as Array<Array<string | null>>
}

function toText (value: unknown): string | null {
  if (value === null || value === undefined) return null
  if (typeof value === 'string') return value
  if (typeof value === 'boolean') return value ? '1' : '0'
  if (typeof value === 'number' || typeof value === 'bigint') return String(value)
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex').toUpperCase()
  return JSON.stringify(value)
}

/** A rowtype entry for a column the neutral schema describes (used when Sluice builds a result). */
export function rowtypeEntry (column: ColumnMeta, original?: RowTypeEntry): RowTypeEntry {
  if (original !== undefined) return original
  const type = column.type.toLowerCase()
  const base: RowTypeEntry = { name: column.name, type, nullable: column.nullable !== false, database: '', schema: '', table: '' }
  if (type === 'fixed') return { ...base, precision: 38, scale: 0, length: null, byteLength: null }
  if (type === 'text') return { ...base, length: 16777216, byteLength: 16777216, precision: null, scale: null }
  return { ...base, precision: null, scale: null, length: null, byteLength: null }
}
