// `sluice audit verify [--file export.jsonl] [--checkpoints copies.jsonl] [--strict]` and
// `sluice audit export --since --until --format`: the auditor's tools, run against the
// configured store (or a file) with the configured key.
//
// verify exits 0 when the trail verifies (warnings are printed but pass), 1 when it finds
// an issue — or, with --strict, a warning — and 1 when it cannot run at all (bad options, an
// unreadable file): a scheduler alerting on non-zero catches all three.
import { createWriteStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { once } from 'node:events'
import { ERR_BAD_REQUEST } from '../errors.js'
import { formatReport, verifyStore } from '../recording/audit.js'
import { loadCheckpointKey, loadPublicKey, type CheckpointKey } from '../recording/chain.js'
import { exportLines, verifyExport, type ExportFormat } from '../recording/export.js'
import { parseOutsideCopies } from '../recording/outside.js'
import { Recording } from '../recording/recorder.js'
import { migrate } from '../store/migrate.js'
import { openStore } from '../store/open.js'
import { configFrom, parseCommon } from './options.js'

const USAGE = 'usage: sluice audit verify [--file export.jsonl | --checkpoints copies.jsonl] [--public-key key.pem] [--strict] [--json] | sluice audit export [--since T] [--until T] [--format jsonl|csv] [--out FILE] | sluice audit retention'

export async function runAudit (args: string[]): Promise<number> {
  const [sub, ...rest] = args
  if (sub === 'verify') return await auditVerify(rest)
  if (sub === 'export') return await auditExport(rest)
  if (sub === 'retention') return await auditRetention(rest)
  throw new ERR_BAD_REQUEST(USAGE)
}

async function keyFor (values: { 'public-key'?: unknown }, configured: string | undefined): Promise<CheckpointKey | undefined> {
  // A public key alone verifies, so an auditor needs no gateway secret to check an export.
  if (typeof values['public-key'] === 'string') return loadPublicKey(await readFile(resolve(values['public-key']), 'utf8'))
  return loadCheckpointKey(configured)
}

async function auditVerify (args: string[]): Promise<number> {
  const { values } = parseCommon(args, {
    file: { type: 'string' },
    checkpoints: { type: 'string' },
    'public-key': { type: 'string' },
    strict: { type: 'boolean' },
    json: { type: 'boolean' }
  })
  if (typeof values.file === 'string' && typeof values.checkpoints === 'string') {
    throw new ERR_BAD_REQUEST('--checkpoints checks the store against outside copies; verify an export with --file alone')
  }
  const { config } = configFrom(values)
  const key = await keyFor(values, config.recording.checkpointKey)
  const strict = values.strict === true
  let report
  if (typeof values.file === 'string') {
    report = verifyExport(await readFile(resolve(values.file), 'utf8'), key, { strict })
  } else {
    // Read before the store opens: a bad file is refused without touching the store.
    const outside = typeof values.checkpoints === 'string' ? parseOutsideCopies(await readFile(resolve(values.checkpoints), 'utf8')) : undefined
    const store = await openStore(config.store)
    try {
      report = await verifyStore(store, key, { strict, outside })
    } finally {
      await store.close()
    }
  }
  process.stdout.write(values.json === true ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report)}\n`)
  return report.ok ? 0 : 1
}

function isoOption (value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) throw new ERR_BAD_REQUEST(`--${name} must be an ISO 8601 time`)
  return new Date(value).toISOString()
}

async function auditExport (args: string[]): Promise<number> {
  const { values } = parseCommon(args, {
    since: { type: 'string' },
    until: { type: 'string' },
    format: { type: 'string' },
    out: { type: 'string', short: 'o' }
  })
  const format = (values.format ?? 'jsonl') as ExportFormat
  if (format !== 'jsonl' && format !== 'csv') throw new ERR_BAD_REQUEST('--format must be jsonl or csv')
  const { config } = configFrom(values)
  const key = loadCheckpointKey(config.recording.checkpointKey)
  const store = await openStore(config.store)
  const out = typeof values.out === 'string' ? createWriteStream(resolve(values.out)) : process.stdout
  try {
    for await (const line of exportLines(store, { since: isoOption(values.since, 'since'), until: isoOption(values.until, 'until'), format, key })) {
      if (!out.write(`${line}\n`)) await once(out, 'drain')
    }
  } finally {
    await store.close()
    if (out !== process.stdout) await new Promise<void>((resolve) => (out as NodeJS.WritableStream).end(resolve))
  }
  return 0
}

/** Runs the retention job once (for deployments that run it from a scheduler, not the gateway). */
async function auditRetention (args: string[]): Promise<number> {
  const { values } = parseCommon(args)
  const { config } = configFrom(values)
  const store = await openStore(config.store)
  try {
    if (config.store.migrateOnStart) await migrate(store)
    const recording = new Recording(store, config.recording)
    try {
      const report = await recording.retention()
      process.stdout.write(`${JSON.stringify(report)}\n`)
      return 0
    } finally {
      // Delivers the retention checkpoints' copies to the webhook before the process ends.
      await recording.close()
    }
  } finally {
    await store.close()
  }
}
