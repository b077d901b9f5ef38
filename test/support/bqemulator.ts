// bqemulator (BigQuery REST v2 over DuckDB) on loopback, seeded with a flat and a nested /
// repeated table that hold the kinds of values masking must catch (emails, SSNs, phone and card
// numbers), including one canary that must never reach a client once masking is on.
//
// Start it once per test file (`beforeAll`): it takes a few seconds to boot. It is installed by
// setup-python.sh into .venv/bqemulator (linked as .venv/bin/bqemulator) and started through
// bqemulator-start.py, which makes DuckDB's spatial extension optional: the released command
// insists on downloading it, which an offline machine cannot do. SLUICE_BQEMULATOR_PYTHON
// overrides the interpreter.
import { existsSync, readFileSync, realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { freePort, spawnChildServer } from './child-server.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const LAUNCHER = fileURLToPath(new URL('./bqemulator-start.py', import.meta.url))

export const SEED_PROJECT = 'sluice-test'
export const SEED_DATASET = 'crm'

/** A value seeded in every sensitive column kind; a masked path must never show it. */
export const CANARY = 'canary-7f3a9c'

/** crm.customers: flat. */
export const CUSTOMERS = [
  { id: 1, name: 'Ada Lovelace', email: `ada.${CANARY}@example.com`, ssn: '123-45-6789', phone: '+1-202-555-0101', balance: '10.5', signed_up: '2024-01-01', last_seen: '2024-01-01T10:00:00.123456Z', active: true },
  { id: 2, name: 'Alan Turing', email: 'alan@example.com', ssn: '987-65-4321', phone: '+1-202-555-0102', balance: '20.25', signed_up: '2024-01-02', last_seen: '2024-01-02T10:00:00.5Z', active: false },
  { id: 3, name: 'Grace Hopper', email: 'grace@example.com', ssn: '555-12-3456', phone: '+1-202-555-0103', balance: '30', signed_up: '2024-01-03', last_seen: null, active: true },
  { id: 4, name: 'Edsger Dijkstra', email: 'edsger@example.com', ssn: '111-22-3333', phone: '+1-202-555-0104', balance: '40.75', signed_up: '2024-01-04', last_seen: '1969-07-20T20:17:40Z', active: false },
  { id: 5, name: 'Barbara Liskov', email: 'barbara@example.com', ssn: '222-33-4444', phone: '+1-202-555-0105', balance: '50', signed_up: '2024-01-05', last_seen: '2024-01-05T10:00:00Z', active: true }
]

/** crm.profiles: RECORD, REPEATED and repeated RECORD, with the canary nested in each. */
export const PROFILES = [
  {
    id: 1,
    email: 'ada@example.com',
    address: { city: 'London', ssn: `ssn-${CANARY}` },
    phones: ['+44 20 7946 0000', `tel-${CANARY}`],
    cards: [{ number: '4111111111111111', holder: `holder-${CANARY}`, expires: '2027-01-01' }],
    updated: '2024-03-01T12:00:00.654321Z'
  },
  { id: 2, email: null, address: null, phones: [], cards: [], updated: null }
]

const SCHEMAS = {
  customers: [
    { name: 'id', type: 'INTEGER', mode: 'REQUIRED' },
    { name: 'name', type: 'STRING' },
    { name: 'email', type: 'STRING' },
    { name: 'ssn', type: 'STRING' },
    { name: 'phone', type: 'STRING' },
    { name: 'balance', type: 'NUMERIC' },
    { name: 'signed_up', type: 'DATE' },
    { name: 'last_seen', type: 'TIMESTAMP' },
    { name: 'active', type: 'BOOLEAN' }
  ],
  profiles: [
    { name: 'id', type: 'INTEGER', mode: 'REQUIRED' },
    { name: 'email', type: 'STRING' },
    { name: 'address', type: 'RECORD', fields: [{ name: 'city', type: 'STRING' }, { name: 'ssn', type: 'STRING' }] },
    { name: 'phones', type: 'STRING', mode: 'REPEATED' },
    {
      name: 'cards',
      type: 'RECORD',
      mode: 'REPEATED',
      fields: [{ name: 'number', type: 'STRING' }, { name: 'holder', type: 'STRING' }, { name: 'expires', type: 'DATE' }]
    },
    { name: 'updated', type: 'TIMESTAMP' }
  ]
}

export interface BqEmulator {
  /** Base URL (no path), e.g. http://127.0.0.1:PORT; the REST surface is under /bigquery/v2. */
  url: string
  port: number
  project: string
  /** Calls the emulator's REST API directly (no Sluice in between), for setup and checks. */
  api: (method: string, path: string, body?: unknown) => Promise<{ status: number, json: Record<string, unknown> }>
  close: () => Promise<void>
}

/** The interpreter of the venv that holds bqemulator (read from its command's shebang). */
export function bqemulatorPython (): string {
  if (process.env.SLUICE_BQEMULATOR_PYTHON !== undefined) return process.env.SLUICE_BQEMULATOR_PYTHON
  const command = `${ROOT}.venv/bin/bqemulator`
  if (!existsSync(command)) throw new Error('bqemulator is not installed: run test/support/setup-python.sh')
  const shebang = readFileSync(realpathSync(command), 'utf8').split('\n')[0] ?? ''
  if (!shebang.startsWith('#!')) throw new Error(`cannot find the interpreter of ${command}`)
  return shebang.slice(2).trim()
}

async function call (url: string, method: string, path: string, body?: unknown): Promise<{ status: number, json: Record<string, unknown> }> {
  const res = await request(`${url}/bigquery/v2/${path}`, {
    method: method as 'GET',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const text = await res.body.text()
  return { status: res.statusCode, json: text === '' ? {} : JSON.parse(text) as Record<string, unknown> }
}

export async function startBqEmulator (options: { project?: string, seed?: boolean } = {}): Promise<BqEmulator> {
  const project = options.project ?? SEED_PROJECT
  const port = await freePort()
  const server = spawnChildServer('bqemulator', bqemulatorPython(), [
    LAUNCHER, 'start',
    '--rest-host', '127.0.0.1', '--rest-port', String(port),
    // gRPC (Storage Read/Write) is unused; port 0 keeps parallel test files from colliding on 9060.
    '--grpc-host', '127.0.0.1', '--grpc-port', '0',
    '--project', project, '--ephemeral', '--log-level', 'warning', '--no-admin'
  ])
  const url = `http://127.0.0.1:${port}`
  const close = server.close

  try {
    await server.waitUntil(async () => (await call(url, 'GET', `projects/${project}/datasets`)).status === 200, 45_000)
    const api: BqEmulator['api'] = async (method, path, body) => await call(url, method, path, body)
    if (options.seed !== false) await seed(api, project)
    return { url, port, project, api, close }
  } catch (err) {
    await close()
    throw err
  }
}

async function seed (api: BqEmulator['api'], project: string): Promise<void> {
  const must = async (method: string, path: string, body: unknown): Promise<void> => {
    const { status, json } = await api(method, path, body)
    const insertErrors = (json.insertErrors as unknown[] | undefined) ?? []
    if (status >= 300 || insertErrors.length > 0) throw new Error(`bqemulator seed ${path}: ${status} ${JSON.stringify(json)}`)
  }
  await must('POST', `projects/${project}/datasets`, { datasetReference: { projectId: project, datasetId: SEED_DATASET } })
  for (const [table, fields] of Object.entries(SCHEMAS)) {
    await must('POST', `projects/${project}/datasets/${SEED_DATASET}/tables`, {
      tableReference: { projectId: project, datasetId: SEED_DATASET, tableId: table },
      schema: { fields }
    })
  }
  const insert = async (table: string, rows: object[]): Promise<void> => {
    await must('POST', `projects/${project}/datasets/${SEED_DATASET}/tables/${table}/insertAll`, { rows: rows.map(json => ({ json })) })
  }
  await insert('customers', CUSTOMERS)
  await insert('profiles', PROFILES)
}
