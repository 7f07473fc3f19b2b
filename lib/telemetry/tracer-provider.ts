/**
 * The isolate's tracing plumbing: a BasicTracerProvider whose only processor keeps ended spans in
 * a bounded buffer (./span-buffer.ts). Nothing is exported from here: the one flush path (./flush.ts) drains the
 * buffer and sends the spans with the OTLP trace exporter, in a request's `waitUntil`.
 *
 * The spans themselves (server span, domain spans, W3C propagation) live in ./spans.ts, ./request-telemetry.ts and ./object-spans.ts.
 */
import type { Context } from "@opentelemetry/api";
import { BasicTracerProvider, ParentBasedSampler, TraceIdRatioBasedSampler } from "@opentelemetry/sdk-trace-base";
import { env as workerEnv } from "cloudflare:workers";
import { SERVICE_NAME, serviceResource } from "./meter-provider";
import { BufferingSpanProcessor } from "./span-buffer";

export { BufferingSpanProcessor, type BufferingSpanProcessorOptions } from "./span-buffer";

function moduleEnv(): Partial<Env> | undefined {
  try {
    return workerEnv as unknown as Partial<Env>;
  } catch {
    return undefined;
  }
}

function samplerRatio(env: Partial<Env> | undefined): number {
  const ratio = Number(env?.OTEL_TRACES_SAMPLER_ARG ?? "1");
  return Number.isFinite(ratio) ? Math.min(1, Math.max(0, ratio)) : 1;
}

/** The isolate's span buffer; the flush drains it. */
export const spanBuffer = new BufferingSpanProcessor();

/** The isolate's TracerProvider: parent-based ratio sampling (OTEL_TRACES_SAMPLER_ARG). */
export const tracerProvider = new BasicTracerProvider({
  resource: serviceResource(moduleEnv()),
  sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(samplerRatio(moduleEnv())) }),
  spanProcessors: [spanBuffer],
});

/** The service's tracer. */
export const tracer = tracerProvider.getTracer(SERVICE_NAME);
