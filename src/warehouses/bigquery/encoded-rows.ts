// A page's rows leave the BigQuery front end as bytes: each slice is encoded (JSON text of its
// f/v rows) as soon as it is released, and the page keeps that text, not the rows. The answer
// around them is stringified as fastify would have stringified it, with the rows' text in the
// place of `rows`, so the client gets the same bytes the whole page gave.
import { JsonElements } from '../json-rows.js'
import type { TableRow } from './wire.js'

export class EncodedRows {
  readonly #rows = new JsonElements()

  /** One slice's rows. */
  add (rows: TableRow[]): void {
    this.#rows.add(rows)
  }

  /** The JSON array of every row added, as bytes. */
  bytes (): Buffer[] {
    return [OPEN, ...this.#rows.parts(), CLOSE]
  }
}

const OPEN = Buffer.from('[')
const CLOSE = Buffer.from(']')

/**
 * The answer as JSON.stringify writes it (own keys in order, undefined values left out), its
 * encoded rows spliced in; undefined when it holds none (fastify stringifies it as it is).
 */
export function answerBytes (answer: object): Buffer | undefined {
  const entries = Object.entries(answer)
  if (!entries.some(([, value]) => value instanceof EncodedRows)) return undefined
  const out: Buffer[] = []
  let text = '{'
  for (const [key, value] of entries) {
    const json = value instanceof EncodedRows ? '' : JSON.stringify(value)
    if (json === undefined) continue
    text += `${text === '{' ? '' : ','}${JSON.stringify(key)}:`
    if (value instanceof EncodedRows) {
      out.push(Buffer.from(text), ...value.bytes())
      text = ''
      continue
    }
    text += json
  }
  out.push(Buffer.from(`${text}}`))
  return Buffer.concat(out)
}
