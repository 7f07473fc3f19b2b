/**
 * Outbound HTTP in an `external_call` span, with the W3C trace context injected. Public API via
 * ./tracing.ts.
 */
import { context, SpanKind, SpanStatusCode, type AttributeValue } from "@opentelemetry/api";
import { ATTR_ERROR_TYPE, ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_SERVER_ADDRESS, ATTR_SERVER_PORT, ATTR_URL_FULL } from "@opentelemetry/semantic-conventions";
import { headersSetter, httpMethod, propagator, safely, withSpan } from "./spans";

/**
 * `fetch` in an `external_call` CLIENT span, with the trace context injected as `traceparent`
 * (and `tracestate`). The URL is recorded without its query string and credentials. Never use it
 * for the telemetry export itself.
 *
 * @example
 * const res = await tracedFetch("https://ground-station.example/api/ack", { method: "POST", body });
 */
export function tracedFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const request = new Request(input, init);
  let attributes: Record<string, AttributeValue | undefined> = {};
  safely(() => {
    const url = new URL(request.url);
    attributes = {
      [ATTR_HTTP_REQUEST_METHOD]: httpMethod(request.method).method,
      [ATTR_SERVER_ADDRESS]: url.hostname,
      [ATTR_SERVER_PORT]: url.port ? Number(url.port) : url.protocol === "https:" ? 443 : 80,
      [ATTR_URL_FULL]: `${url.protocol}//${url.host}${url.pathname}`,
    };
  });
  return withSpan(
    "external_call",
    attributes,
    async (span) => {
      const headers = new Headers(request.headers);
      safely(() => propagator.inject(context.active(), headers, headersSetter));
      const response = await globalThis.fetch(new Request(request, { headers }));
      safely(() => {
        span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, response.status);
        if (response.status >= 400) {
          span.setAttribute(ATTR_ERROR_TYPE, String(response.status));
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
      });
      return response;
    },
    { kind: SpanKind.CLIENT },
  );
}
