/**
 * Variant `hono-otel`: `@hono/otel`'s middleware on the same routes, with the plain OpenTelemetry
 * JS SDK behind it (BasicTracerProvider + BatchSpanProcessor + OTLP/HTTP trace exporter, and a
 * MeterProvider whose reader collects and exports when flushed), and — since @hono/otel never
 * flushes — `waitUntil(forceFlush())` of both providers on every request, as the Workers docs
 * for the SDK suggest. Metrics are cumulative per isolate (own `service.instance.id`).
 *
 * Providers are built on the first request (Workers forbid random ids and timers at module scope).
 */
import { httpInstrumentationMiddleware } from "@hono/otel";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { MeterProvider, MetricReader, type PushMetricExporter } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import type { MiddlewareHandler } from "hono";
import { benchEntry } from "./lib/bench-entry";
import { createApp } from "../../functions/app";

// Every Durable Object class the deployed entry exports (wrangler.toml binds them all).
export * from "../../functions/index";

/** Collects and exports on forceFlush, nothing on its own (no timer). */
class ExportOnFlushReader extends MetricReader {
  constructor(private readonly exporter: PushMetricExporter) {
    super();
  }
  protected override async onForceFlush(): Promise<void> {
    const { resourceMetrics } = await this.collect();
    await new Promise<void>((resolve) => this.exporter.export(resourceMetrics, () => resolve()));
  }
  protected override async onShutdown(): Promise<void> {}
}

interface Providers {
  tracerProvider: BasicTracerProvider;
  meterProvider: MeterProvider;
  middleware: MiddlewareHandler;
}
let providers: Providers | undefined;

function setup(env: Env): Providers {
  const base = (env.OTEL_EXPORTER_OTLP_ENDPOINT ?? "").replace(/\/+$/, "");
  const headers: Record<string, string> = env.OTEL_EXPORTER_OTLP_TOKEN ? { Authorization: `Bearer ${env.OTEL_EXPORTER_OTLP_TOKEN}` } : {};
  const resource = resourceFromAttributes({
    "service.name": "astraguard-edge-hono-otel",
    "service.instance.id": crypto.randomUUID(),
  });
  const tracerProvider = new BasicTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${base}/v1/traces`, headers }))],
  });
  const meterProvider = new MeterProvider({
    resource,
    readers: [new ExportOnFlushReader(new OTLPMetricExporter({ url: `${base}/v1/metrics`, headers }))],
  });
  const middleware = httpInstrumentationMiddleware({ tracerProvider, meterProvider, serviceName: "astraguard-edge-hono-otel" });
  return { tracerProvider, meterProvider, middleware };
}

const otel: MiddlewareHandler = async (c, next) => {
  const p = (providers ??= setup(c.env as Env));
  try {
    await p.middleware(c, next);
  } finally {
    c.executionCtx.waitUntil(Promise.all([p.tracerProvider.forceFlush(), p.meterProvider.forceFlush()]).catch(() => undefined));
  }
};

const app = createApp({ telemetry: false, first: [otel] });

export default benchEntry((request, env, ctx) => app.fetch(request, env, ctx));
