/**
 * Variant `primitives`: the telemetry's building blocks timed one at a time on workerd, for
 * `node bench/primitives.mjs`. `GET /?op=NAME&n=N` runs the primitive N times inside one request
 * and answers a checksum; the runner reads workerd's CPU time from /proc around many such
 * requests, so each figure is CPU µs per operation with the runtime's per-request cost spread
 * over N. Warm loops: a real request pays more for the same code (cold caches), so use these to
 * compare two ways of doing one thing, and the profile (bench/profile.mjs) for where a request's
 * time goes.
 */
import { context, SpanKind, trace, type Attributes } from "@opentelemetry/api";
import { gzipSync } from "node:zlib";
import { benchEntry } from "./lib/bench-entry";
import { endpointAttributes, NO_ATTRIBUTES, requestAttributes } from "../../lib/telemetry/bound-attributes";
import { encodeSpans } from "../../lib/telemetry/export/otlp-spans";
import { instruments } from "../../lib/telemetry/instruments";
import { logRequest } from "../../lib/telemetry/logger";
import { LogQueue } from "../../lib/telemetry/log-queue";
import { recordingQueue } from "../../lib/telemetry/meter-provider";
import { adoptSpans, continueTrace } from "../../lib/telemetry/object-spans";
import { injectTraceContext, withSpan } from "../../lib/telemetry/spans";
import { spanBuffer, tracer } from "../../lib/telemetry/tracer-provider";

// Every Durable Object class the deployed entry exports (wrangler.toml binds them all).
export * from "../../functions/index";

const CACHE_ATTRIBUTES = { "astra.cache.store_type": "phase", "astra.cache.operation": "get", "astra.cache.keys": 1 };
const DB_ATTRIBUTES = { "db.system.name": "cloudflare_durable_object", "db.namespace": "satellite:SAT-001", "db.collection.name": "SatelliteState", "db.operation.name": "record" };

/** A parent span made active for `fn`. */
function underParent<T>(fn: () => T): T {
  const root = tracer.startSpan("parent");
  try {
    return context.with(trace.setSpan(context.active(), root), fn);
  } finally {
    spanBuffer.drain();
  }
}

/** `n` ended database_query spans, as the flush finds them. */
function endedSpans(n: number) {
  spanBuffer.drain();
  underParent(() => {
    for (let i = 0; i < n; i++) tracer.startSpan("database_query", { kind: SpanKind.CLIENT, attributes: DB_ATTRIBUTES }).end();
  });
  return spanBuffer.drain();
}
const REQUEST_LINE = { method: "POST", route: "/api/v1/telemetry", status: 200, duration_ms: 12.3, request_id: "bench-request-id", user_agent: "wrk/4.1.0" };
const heldLines = new LogQueue();
const ended = new Map<number, ReturnType<typeof endedSpans>>();
const cachedSpans = (n: number) => {
  let spans = ended.get(n);
  if (!spans) ended.set(n, (spans = endedSpans(n)));
  return spans;
};
const encoded = new Map<number, Uint8Array>();
const encodedSpans = (n: number) => {
  let body = encoded.get(n);
  if (!body) encoded.set(n, (body = encodeSpans(cachedSpans(n))));
  return body;
};

/** One request's metrics exactly as the middleware records them. */
function requestMetrics(record: (kind: "add" | "record", instrument: never, value: number, attributes: Attributes) => void): void {
  const e = endpointAttributes("/api/v1/telemetry");
  record("add", instruments.activeConnections as never, 1, NO_ATTRIBUTES);
  record("add", instruments.httpRequests as never, 1, requestAttributes("POST", "/api/v1/telemetry", 200));
  record("record", instruments.httpRequestDuration as never, 0.012, e);
  record("record", instruments.httpRequestSize as never, 120, e);
  record("record", instruments.httpResponseSize as never, 685, e);
  record("add", instruments.activeConnections as never, -1, NO_ATTRIBUTES);
}
const direct = (kind: "add" | "record", instrument: never, value: number, attributes: Attributes) =>
  kind === "add" ? (instrument as { add: (v: number, a: Attributes) => void }).add(value, attributes) : (instrument as { record: (v: number, a: Attributes) => void }).record(value, attributes);
const queued = (kind: "add" | "record", instrument: never, value: number, attributes: Attributes) =>
  kind === "add" ? recordingQueue.add(instrument, value, attributes) : recordingQueue.record(instrument, value, attributes);

/** The primitives, each run `n` times; the answer is a checksum so nothing is optimized away. */
export const PRIMITIVES: Record<string, { what: string; run: (n: number) => number | Promise<number> }> = {
  "context.with": { what: "one AsyncLocalStorage context switch (context.with)", run: (n) => underParent(() => { let x = 0; const ctx = context.active(); for (let i = 0; i < n; i++) x += context.with(ctx, () => 1); return x; }) },
  "span.sdk": { what: "SDK startSpan + end of a child span with 3 attributes (no context switch)", run: (n) => underParent(() => { const ctx = context.active(); for (let i = 0; i < n; i++) tracer.startSpan("cache_operation", { attributes: CACHE_ATTRIBUTES }, ctx).end(); return spanBuffer.drain().length; }) },
  "withSpan": { what: "withSpan around a sync function (span + context switch)", run: (n) => underParent(() => { let x = 0; for (let i = 0; i < n; i++) x += withSpan("cache_operation", CACHE_ATTRIBUTES, () => 1); return x; }) },
  "withSpan.leaf": { what: "withSpan { leaf: true } (span, no context switch)", run: (n) => underParent(() => { let x = 0; for (let i = 0; i < n; i++) x += withSpan("cache_operation", CACHE_ATTRIBUTES, () => 1, { leaf: true }); return x; }) },
  "object.span": {
    what: "a Durable Object call's span round trip: inject, continueTrace, structured clone, adoptSpans",
    run: (n) =>
      underParent(async () => {
        let x = 0;
        for (let i = 0; i < n; i++) {
          const answer = structuredClone(await continueTrace(injectTraceContext(), "SatelliteState.record", { "db.system.name": "sqlite", "db.operation.name": "record" }, () => 1));
          adoptSpans(answer.spans);
          x += answer.spans.length;
        }
        spanBuffer.drain();
        return x;
      }),
  },
  "otlp.encode": { what: "OTLP/protobuf encoding, per span (the SDK's serializer)", run: (n) => encodeSpans(cachedSpans(n)).length },
  "gzip.zlib1": { what: "gzip of the encoded spans at zlib level 1 (node:zlib), per span", run: (n) => gzipSync(encodedSpans(n), { level: 1 }).length },
  "gzip.stream": {
    what: "gzip through CompressionStream (level 6), per span",
    run: async (n) => new Uint8Array(await new Response(new Blob([encodedSpans(n)]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer()).length,
  },
  "log.request": { what: "the per-request JSON log line (logRequest → console.log)", run: (n) => { for (let i = 0; i < n; i++) logRequest("info", { ...REQUEST_LINE, duration_ms: 12.3 + i }); return n; } },
  // One request each (n=1): the difference to request.none is what a request's line costs, the
  // invocation's first console call included; held, the line waits for a "flush" every 20 requests.
  "request.none": { what: "a request that logs nothing (the baseline of the two below)", run: () => 0 },
  "request.log": { what: "a request that writes its log line at once", run: () => { logRequest("info", REQUEST_LINE); return 1; } },
  "request.log.held": {
    what: "a request whose line is held and written with 19 others by every 20th request",
    run: () => {
      logRequest("info", REQUEST_LINE, undefined, heldLines);
      if (heldLines.size >= 20) heldLines.write();
      return 1;
    },
  },
  "metrics.direct": { what: "one request's 6 metric recordings straight into the SDK", run: (n) => { for (let i = 0; i < n; i++) requestMetrics(direct); return n; } },
  "metrics.queued": { what: "the same 6 into the recording queue, applied (SDK calls) every 400 requests", run: (n) => { for (let i = 0; i < n; i++) { requestMetrics(queued); if (i % 400 === 399) recordingQueue.apply(); } recordingQueue.apply(); return n; } },
};

export default benchEntry(async (request) => {
  const url = new URL(request.url);
  const primitive = PRIMITIVES[url.searchParams.get("op") ?? ""];
  if (!primitive) return Response.json({ error: "unknown op", ops: Object.keys(PRIMITIVES) }, { status: 404 });
  const n = Math.min(Math.max(1, Number(url.searchParams.get("n") ?? "1000") || 1000), 1_000_000);
  return new Response(String(await primitive.run(n)));
});
