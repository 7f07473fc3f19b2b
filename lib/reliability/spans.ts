/**
 * The reliability spans (`circuit_breaker`, `retry_attempt`): children of the request's active
 * span, ended with the call, status ERROR with the error's type when it threw. Tracing never
 * changes the outcome: if the tracer fails, `fn` still runs once.
 *
 * @example
 * await withReliabilitySpan("circuit_breaker", { "circuit_breaker.name": "storage" }, () => call());
 */
import { SpanStatusCode, type Attributes } from "@opentelemetry/api";
import { tracer } from "../telemetry/tracer-provider";

export async function withReliabilitySpan<T>(name: string, attributes: Attributes, fn: () => Promise<T>): Promise<T> {
  let started = false;
  try {
    return await tracer.startActiveSpan(name, { attributes }, async (span) => {
      started = true;
      try {
        const result = await fn();
        return result;
      } catch (err) {
        try {
          span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.name : "Error" });
          span.setAttribute("error.type", err instanceof Error ? err.name : typeof err);
        } catch {
          // recording never throws
        }
        throw err;
      } finally {
        try {
          span.end();
        } catch {
          // recording never throws
        }
      }
    });
  } catch (err) {
    if (started) throw err;
    // The tracer itself failed before running fn: run it untraced.
    return fn();
  }
}
