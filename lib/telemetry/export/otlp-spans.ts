/**
 * The span transport: ended spans → one OTLP/HTTP request to `${endpoint}/v1/traces`, encoded
 * once per flush with the SDK's own OTLP serializer (@opentelemetry/otlp-transformer) and
 * gzipped with the runtime's zlib (the collector's OTLP receiver accepts
 * `Content-Encoding: gzip`). Measured on 3,200 spans of the ingest path (8 a request, Node 22's
 * V8, zlib): OTLP/JSON 5,279 B a request, gzipped 333 B, 33 µs to encode + 32 µs to gzip;
 * OTLP/protobuf 1,995 B, gzipped 306 B, 30 + 14 µs. Protobuf is the default: smaller and cheaper.
 *
 * The SDK's fetch transport (exporter-trace-otlp-http in a Worker) cannot compress, hence this
 * small transport of our own; it keeps the exporter's contract: resolve `true` on 2xx, `false`
 * otherwise (the flusher keeps the spans for the next export), never throw.
 */
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { JsonTraceSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { gzipSync } from "node:zlib";

/** The OTLP/HTTP encodings of a span export. */
export type OtlpSpanProtocol = "http/json" | "http/protobuf";

/** Options of {@link createOtlpSpanSender}. */
export interface OtlpSpanSenderOptions {
  /** Body encoding. Default "http/protobuf" (OTLP/HTTP's default encoding). */
  protocol?: OtlpSpanProtocol;
  /** Gzip the body (`Content-Encoding: gzip`). Default true. */
  gzip?: boolean;
  /** Abort a request not answered by then. Default 4000 ms. */
  timeoutMillis?: number;
  /** The fetch to send with. Default: the global `fetch`, looked up at each call (tests replace it). */
  fetch?: typeof fetch;
}

/** Where and how to send: the collector's base endpoint and its bearer token. */
export interface OtlpSpanTarget {
  endpoint: string;
  token?: string;
}

const CONTENT_TYPE: Record<OtlpSpanProtocol, string> = { "http/json": "application/json", "http/protobuf": "application/x-protobuf" };

/** The OTLP request body of `spans`, uncompressed. */
export function encodeSpans(spans: ReadableSpan[], protocol: OtlpSpanProtocol = "http/protobuf"): Uint8Array {
  const body = (protocol === "http/protobuf" ? ProtobufTraceSerializer : JsonTraceSerializer).serializeRequest(spans);
  if (!body) throw new Error("OTLP span serialization produced nothing");
  return body;
}

/**
 * `bytes` gzipped at level 1 with the runtime's zlib (`node:zlib`, nodejs_compat). Measured on
 * workerd per span of the ingest path: 0.65 µs at level 1, 1.4 µs at zlib's default level 6,
 * 1.6 µs through `CompressionStream` (level 6 plus a stream per export); level 1's body is a
 * little larger (see the bench's trace bytes per request).
 */
export async function gzipBytes(bytes: Uint8Array): Promise<Uint8Array> {
  return gzipSync(bytes, { level: 1 });
}

/**
 * A span sender: `send(target, spans)` resolves `true` when the collector accepted the export
 * (2xx), `false` on any other answer or a network error. Never rejects.
 *
 * @example
 * const send = createOtlpSpanSender({ protocol: "http/protobuf", gzip: true });
 * const ok = await send({ endpoint: "http://127.0.0.1:4318", token: "t0ken" }, spanBuffer.drain());
 */
export function createOtlpSpanSender(options: OtlpSpanSenderOptions = {}): (target: OtlpSpanTarget, spans: ReadableSpan[]) => Promise<boolean> {
  const protocol = options.protocol ?? "http/protobuf";
  const gzip = options.gzip ?? true;
  const timeoutMillis = options.timeoutMillis ?? 4000;
  return async function sendSpans(target, spans) {
    try {
      const encoded = encodeSpans(spans, protocol);
      const body = gzip ? await gzipBytes(encoded) : encoded;
      const headers: Record<string, string> = { "content-type": CONTENT_TYPE[protocol] };
      if (gzip) headers["content-encoding"] = "gzip";
      if (target.token) headers.authorization = `Bearer ${target.token}`;
      const res = await (options.fetch ?? fetch)(`${target.endpoint.trim().replace(/\/+$/, "")}/v1/traces`, {
        method: "POST",
        headers,
        body,
        signal: AbortSignal.timeout(timeoutMillis),
      });
      // Drain the answer so the connection can be reused (its partial-success body is not needed).
      await res.arrayBuffer().catch(() => undefined);
      return res.ok;
    } catch {
      return false;
    }
  };
}
