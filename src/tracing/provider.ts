// The OpenTelemetry trace provider, registered only when `tracing.enabled` is set: spans go
// in batches to an OTLP/HTTP collector (or to the exporter a test hands in). Until this runs
// the API's global tracer is a no-op, and the gateway creates no spans at all.
import { trace } from '@opentelemetry/api'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { BatchSpanProcessor, SimpleSpanProcessor, TracerProvider, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace'
import type { TracingConfig } from '../config/types.js'

export interface TracingRuntime {
  /** false: another provider was registered first in this process; spans go to it. */
  registered: boolean
  /** Flushes the spans still queued and unregisters the provider. */
  shutdown: () => Promise<void>
}

/**
 * Registers the global provider. `exporter` replaces the OTLP exporter and exports each span
 * as it ends (tests: the SDK's InMemorySpanExporter).
 */
export function startTracing (config: TracingConfig, exporter?: SpanExporter): TracingRuntime {
  const processor: SpanProcessor = exporter !== undefined
    ? new SimpleSpanProcessor({ exporter })
    : new BatchSpanProcessor({
      exporter: new OTLPTraceExporter({
        ...(config.otlp?.url !== undefined && { url: config.otlp.url }),
        ...(config.otlp?.headers !== undefined && { headers: config.otlp.headers }),
        ...(config.otlp?.timeoutMs !== undefined && { timeoutMillis: config.otlp.timeoutMs })
      })
    })
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': config.serviceName }),
    spanProcessors: [processor]
  })
  const registered = trace.setGlobalTracerProvider(provider)
  return {
    registered,
    async shutdown () {
      try {
        await provider.shutdown()
      } finally {
        // Only our own registration is undone: a host's provider stays.
        if (registered) trace.disable()
      }
    }
  }
}
