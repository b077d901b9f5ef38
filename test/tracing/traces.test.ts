// Traces of one Snowflake SQL API v2 round trip, exported to the SDK's in-memory exporter: the
// round trip's span and its children (analyze, decide, both records, upstream, mask) in one
// trace; ids as attributes and never the SQL text or a literal; the trace id in the round
// trip's log line and in its recorded events. With tracing off (the default) no provider is
// registered, no span is made and nothing names a trace.
import { Writable } from 'node:stream'
import { ProxyTracerProvider, trace } from '@opentelemetry/api'
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace'
import { pino, type Logger } from 'pino'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loggerOptions } from '../../src/logging.js'
import { searchEvents } from '../../src/recording/search.js'
import { denyKeyword, maskColumns, startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'
import { startUpstreamStub, type UpstreamStub } from '../support/snowflake-upstream-stub.js'

const SQL = "SELECT ID, NAME FROM CUSTOMERS WHERE NAME = 'Zed-literal-4711'"
const slow = { timeout: 120_000 }

/** A pino logger (the gateway's own options) whose lines the test can read. */
function capturedLogger (): { logger: Logger, lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    }
  })
  return { logger: pino(loggerOptions('info'), stream), lines }
}

async function gatewayWith (stub: UpstreamStub, extra: Parameters<typeof startSnowflakeGateway>[0] extends infer O ? Partial<O> : never): Promise<SnowflakeGateway> {
  return await startSnowflakeGateway({
    connections: { stubbed: { kind: 'snowflake', url: stub.url, default: true, account: 'acme', user: 'svc', password: 'pw' } },
    stages: { decide: denyKeyword('DELETE'), mask: maskColumns(['NAME']) },
    ...extra
  })
}

async function post (gw: SnowflakeGateway, statement: string): Promise<{ status: number, requestId: string }> {
  const res = await request(`${gw.url}/api/v2/statements`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await gw.token('alice')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ statement })
  })
  await res.body.dump()
  return { status: res.statusCode, requestId: String(res.headers['x-request-id']) }
}

async function eventsOf (gw: SnowflakeGateway, requestId: string) {
  return (await searchEvents(gw.store, { requestId })).items.filter((e) => e.requestId === requestId)
}

async function startStub (): Promise<UpstreamStub> {
  const stub = await startUpstreamStub()
  stub.statements.set(SQL, { rowtype: [{ name: 'ID', type: 'fixed', scale: 0, precision: 38 }, { name: 'NAME', type: 'text' }], rowset: [['1', 'Zed'], ['2', 'Ann']] })
  return stub
}

describe('with tracing off (the default)', slow, () => {
  let stub: UpstreamStub
  let gw: SnowflakeGateway
  const log = capturedLogger()

  beforeAll(async () => {
    stub = await startStub()
    gw = await gatewayWith(stub, { logger: log.logger })
  })
  afterAll(async () => {
    await gw?.close()
    await stub?.close()
  })

  it('registers no provider, makes no span and names no trace', async () => {
    const { status, requestId } = await post(gw, SQL)
    expect(status).toBe(200)
    const provider = trace.getTracerProvider()
    expect(provider).toBeInstanceOf(ProxyTracerProvider)
    // The API's no-op: a tracer from it makes spans that record nothing.
    expect(trace.getTracer('probe').startSpan('probe').isRecording()).toBe(false)
    const events = await eventsOf(gw, requestId)
    expect(events.map((e) => e.phase).sort()).toEqual(['admitted', 'completed'])
    for (const e of events) expect(e.analysis).not.toHaveProperty('trace')
    const completed = log.lines.filter((l) => l.msg === 'request completed')
    expect(completed.length).toBeGreaterThan(0)
    for (const line of completed) expect(line).not.toHaveProperty('traceId')
  })
})

describe('with tracing on', slow, () => {
  let stub: UpstreamStub
  let gw: SnowflakeGateway
  const exporter = new InMemorySpanExporter()
  const log = capturedLogger()

  beforeAll(async () => {
    stub = await startStub()
    gw = await gatewayWith(stub, { logger: log.logger, tracing: { enabled: true, serviceName: 'sluice-test' }, traceExporter: exporter })
  })
  afterAll(async () => {
    await gw?.close()
    await stub?.close()
    // The gateway's own provider is unregistered when it closes.
    expect(trace.getTracer('probe').startSpan('probe').isRecording()).toBe(false)
  })

  const parentOf = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId

  it('exports the span tree of one SQL API round trip, ids only', async () => {
    exporter.reset()
    const { status, requestId } = await post(gw, SQL)
    expect(status).toBe(200)
    const spans = exporter.getFinishedSpans()
    const roots = spans.filter((s) => s.attributes['sluice.request_id'] === requestId && parentOf(s) === undefined)
    expect(roots.map((s) => s.name)).toEqual(['POST /api/v2/statements'])
    const root = roots[0]!
    const { traceId, spanId } = root.spanContext()
    expect(root.resource.attributes['service.name']).toBe('sluice-test')
    expect(root.attributes).toMatchObject({
      'http.request.method': 'POST',
      'http.route': '/api/v2/statements',
      'http.response.status_code': 200,
      'sluice.front_end': 'snowflake-sqlapi',
      'sluice.connection': 'stubbed',
      'sluice.outcome': 'ok',
      'sluice.rows': 2,
      'sluice.statement_id': expect.stringMatching(/^[0-9a-f-]{36}$/)
    })
    const children = spans.filter((s) => parentOf(s) === spanId)
    expect(children.every((s) => s.spanContext().traceId === traceId)).toBe(true)
    expect(children.map((s) => s.name).sort()).toEqual(['sluice.analyze', 'sluice.decide', 'sluice.mask', 'sluice.record', 'sluice.record', 'sluice.upstream'])
    const byName = (name: string) => children.filter((s) => s.name === name)
    expect(byName('sluice.decide')[0]!.attributes).toMatchObject({ 'sluice.decision': 'allow', 'sluice.connection': 'stubbed', 'sluice.request_id': requestId })
    expect(byName('sluice.mask')[0]!.attributes).toMatchObject({ 'sluice.rows': 2, 'sluice.statement_id': root.attributes['sluice.statement_id'] })
    expect(byName('sluice.record').map((s) => s.attributes['sluice.phase']).sort()).toEqual(['admitted', 'completed'])
    // The record of the admitted event precedes the upstream call; the completion follows it.
    const upstream = byName('sluice.upstream')[0]!
    const admitted = byName('sluice.record').find((s) => s.attributes['sluice.phase'] === 'admitted')!
    expect(admitted.endTime[0] * 1e9 + admitted.endTime[1]).toBeLessThanOrEqual(upstream.startTime[0] * 1e9 + upstream.startTime[1])

    // No attribute, name or status anywhere in the trace carries the SQL or its literal.
    const everything = JSON.stringify(spans.filter((s) => s.spanContext().traceId === traceId).map((s) => ({ name: s.name, attributes: s.attributes, status: s.status, events: s.events })))
    for (const leak of ['Zed-literal-4711', 'SELECT', 'CUSTOMERS', 'Ann']) expect(everything).not.toContain(leak)

    // The round trip's log line and both of its events name the trace.
    const line = log.lines.find((l) => l.msg === 'request completed' && l.reqId === requestId)
    expect(line).toMatchObject({ traceId })
    const events = await eventsOf(gw, requestId)
    expect(events.map((e) => e.phase).sort()).toEqual(['admitted', 'completed'])
    for (const e of events) expect(e.analysis).toMatchObject({ trace: { traceId, spanId }, dialect: 'snowflake' })
  })

  it('traces a refused statement with its rule and error code, and an unauthenticated one', async () => {
    exporter.reset()
    const { status, requestId } = await post(gw, 'DELETE FROM CUSTOMERS')
    expect(status).toBeGreaterThanOrEqual(400)
    const spans = exporter.getFinishedSpans()
    const root = spans.find((s) => s.attributes['sluice.request_id'] === requestId && parentOf(s) === undefined)!
    expect(root.attributes).toMatchObject({ 'sluice.outcome': 'denied', 'sluice.rule_id': 'agents-read-only', 'sluice.error_code': 'SLUICE_POLICY_DENIED' })
    const names = spans.filter((s) => parentOf(s) === root.spanContext().spanId).map((s) => s.name).sort()
    expect(names).toEqual(['sluice.analyze', 'sluice.decide', 'sluice.record'])
    expect(JSON.stringify(spans.map((s) => s.attributes))).not.toContain('DELETE')

    exporter.reset()
    const res = await request(`${gw.url}/api/v2/statements`, { method: 'POST', headers: { authorization: 'Bearer not-a-jwt', 'content-type': 'application/json' }, body: JSON.stringify({ statement: SQL }) })
    await res.body.dump()
    expect(res.statusCode).toBe(401)
    const refusedId = String(res.headers['x-request-id'])
    const refused = exporter.getFinishedSpans()
    const refusedRoot = refused.find((s) => s.attributes['sluice.request_id'] === refusedId && parentOf(s) === undefined)!
    expect(refusedRoot.attributes).toMatchObject({ 'http.response.status_code': 401, 'sluice.outcome': 'unauthenticated' })
    const [event] = await eventsOf(gw, refusedId)
    expect(event).toMatchObject({ outcome: 'unauthenticated', analysis: { trace: { traceId: refusedRoot.spanContext().traceId } } })
  })
})
