/** Helpers of the telemetry tests: capture what is pushed to the collector, build points. */
import { vi } from "vitest";
import type { MetricPoint } from "../../../lib/telemetry/export/points";

export interface CapturedRequest {
  url: string;
  headers: Record<string, string>;
  body: any;
}

/**
 * Replaces global fetch for URLs under `prefix` (the runtime's other fetches pass through):
 * records each request's URL, headers and JSON body (gunzipped when the request is gzipped), and answers with `respond()` (default 200),
 * or rejects like a refused connection when `respond` returns "refuse".
 */
export function captureCollector(prefix: string, respond: () => number | "refuse" = () => 200) {
  const requests: CapturedRequest[] = [];
  const original = globalThis.fetch;
  const spy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input as RequestInfo, init as RequestInit);
    if (!request.url.startsWith(prefix)) return original(input as RequestInfo, init as RequestInit);
    const headers: Record<string, string> = {};
    request.headers.forEach((v, k) => (headers[k] = v));
    // Span exports are gzipped OTLP/protobuf: recorded as the collector decodes them, in the
    // shape of OTLP/JSON (what the tests read).
    const raw = new Uint8Array(
      headers["content-encoding"] === "gzip" && request.body
        ? await new Response(request.body.pipeThrough(new DecompressionStream("gzip"))).arrayBuffer()
        : await request.arrayBuffer(),
    );
    const protobuf = headers["content-type"] === "application/x-protobuf";
    const text = protobuf ? "" : new TextDecoder().decode(raw);
    let body: unknown = text;
    try {
      body = protobuf ? decodeOtlpTraces(raw) : JSON.parse(text);
    } catch {
      // Not JSON: kept as text.
    }
    requests.push({ url: request.url, headers, body });
    const outcome = respond();
    if (outcome === "refuse") throw new TypeError("Network connection lost.");
    return new Response("{}", { status: outcome, headers: { "content-type": "application/json" } });
  });
  return { requests, restore: () => spy.mockRestore() };
}

/** All OTLP JSON metrics in one pushed body, by name. */
export function otlpMetrics(body: any): Map<string, any> {
  const out = new Map<string, any>();
  for (const rm of body?.resourceMetrics ?? []) for (const sm of rm.scopeMetrics ?? []) for (const m of sm.metrics ?? []) out.set(m.name, m);
  return out;
}

/** OTLP JSON attributes → plain record. */
export function otlpAttributes(attrs: any[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of attrs ?? []) out[a.key] = String(a.value?.stringValue ?? a.value?.intValue ?? a.value?.doubleValue ?? a.value?.boolValue ?? "");
  return out;
}

export const counterPoint = (name: string, value: number, attributes: Record<string, string> = {}, timeMs = Date.now()): MetricPoint => ({
  name,
  description: `${name} description`,
  unit: "",
  kind: "counter",
  attributes,
  value,
  timeMs,
});

export const gaugePoint = (name: string, value: number, timeMs: number, attributes: Record<string, string> = {}): MetricPoint => ({
  name,
  description: "",
  unit: "",
  kind: "gauge",
  attributes,
  value,
  timeMs,
});

export const histogramPoint = (name: string, boundaries: number[], bucketCounts: number[], sum: number, attributes: Record<string, string> = {}): MetricPoint => ({
  name,
  description: "",
  unit: "s",
  kind: "histogram",
  attributes,
  histogram: { boundaries, bucketCounts, sum, count: bucketCounts.reduce((a, b) => a + b, 0) },
  timeMs: Date.now(),
});

/**
 * A minimal protobuf reader for what the span transport sends (OTLP/protobuf
 * ExportTraceServiceRequest), giving the same shape as OTLP/JSON: `resourceSpans[].resource`,
 * `scopeSpans[].scope`, `spans[]` with hex ids, `kind`, `attributes` as `{key, value: {stringValue |
 * intValue | doubleValue | boolValue}}`, `events[]`, `status`. Only the fields the tests read.
 */
export function decodeOtlpTraces(bytes: Uint8Array): any {
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const b = bytes[pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  /** Reads the fields of a message ending at `end`, calling `on(field, wire, read)`. */
  const fields = (end: number, on: (field: number, wire: number) => void) => {
    while (pos < end) {
      const tag = Number(varint());
      on(tag >>> 3, tag & 7);
    }
  };
  const skip = (wire: number) => {
    if (wire === 0) varint();
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) pos += Number(varint());
    else throw new Error(`protobuf wire type ${wire} not supported`);
  };
  const sub = <T>(read: (end: number) => T): T => {
    const len = Number(varint());
    const end = pos + len;
    const out = read(end);
    pos = end;
    return out;
  };
  const bytesField = () => sub((end) => bytes.slice(pos, end));
  const text = () => new TextDecoder().decode(bytesField());
  const fixed64 = () => {
    const v = new DataView(bytes.buffer, bytes.byteOffset + pos, 8);
    pos += 8;
    return v;
  };
  const anyValue = (end: number): any => {
    let out: any = {};
    fields(end, (f, w) => {
      if (f === 1) out = { stringValue: text() };
      else if (f === 2) out = { boolValue: varint() !== 0n };
      else if (f === 3) out = { intValue: String(BigInt.asIntN(64, varint())) };
      else if (f === 4) out = { doubleValue: fixed64().getFloat64(0, true) };
      else skip(w);
    });
    return out;
  };
  const keyValue = (end: number) => {
    const kv: any = {};
    fields(end, (f, w) => (f === 1 ? (kv.key = text()) : f === 2 ? (kv.value = sub(anyValue)) : skip(w)));
    return kv;
  };
  const withAttributes = (end: number, extra: (f: number, w: number, out: any) => boolean) => {
    const out: any = { attributes: [] };
    fields(end, (f, w) => {
      if (!extra(f, w, out)) skip(w);
    });
    return out;
  };
  const event = (end: number) =>
    withAttributes(end, (f, w, out) => {
      if (f === 1 && w === 1) out.timeUnixNano = String(fixed64().getBigUint64(0, true));
      else if (f === 2) out.name = text();
      else if (f === 3) out.attributes.push(sub(keyValue));
      else return false;
      return true;
    });
  const status = (end: number) => {
    const out: any = {};
    fields(end, (f, w) => (f === 2 ? (out.message = text()) : f === 3 ? (out.code = Number(varint())) : skip(w)));
    return out;
  };
  const span = (end: number) =>
    withAttributes(end, (f, w, out) => {
      if (f === 1) out.traceId = hex(bytesField());
      else if (f === 2) out.spanId = hex(bytesField());
      else if (f === 3) out.traceState = text();
      else if (f === 4) out.parentSpanId = hex(bytesField());
      else if (f === 5) out.name = text();
      else if (f === 6) out.kind = Number(varint());
      else if (f === 7 && w === 1) out.startTimeUnixNano = String(fixed64().getBigUint64(0, true));
      else if (f === 8 && w === 1) out.endTimeUnixNano = String(fixed64().getBigUint64(0, true));
      else if (f === 9) out.attributes.push(sub(keyValue));
      else if (f === 11) (out.events ??= []).push(sub(event));
      else if (f === 15) out.status = sub(status);
      else return false;
      return true;
    });
  const scope = (end: number) => withAttributes(end, (f, _w, out) => (f === 1 ? ((out.name = text()), true) : f === 2 ? ((out.version = text()), true) : false));
  const scopeSpans = (end: number) => {
    const out: any = { spans: [] };
    fields(end, (f, w) => (f === 1 ? (out.scope = sub(scope)) : f === 2 ? out.spans.push(sub(span)) : skip(w)));
    return out;
  };
  const resource = (end: number) => withAttributes(end, (f, _w, out) => (f === 1 ? (out.attributes.push(sub(keyValue)), true) : false));
  const resourceSpans = (end: number) => {
    const out: any = { scopeSpans: [] };
    fields(end, (f, w) => (f === 1 ? (out.resource = sub(resource)) : f === 2 ? out.scopeSpans.push(sub(scopeSpans)) : skip(w)));
    return out;
  };
  const request: any = { resourceSpans: [] };
  fields(bytes.length, (f, w) => (f === 1 ? request.resourceSpans.push(sub(resourceSpans)) : skip(w)));
  return request;
}
