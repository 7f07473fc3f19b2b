/**
 * The one `traced()` body of our Durable Objects: runs an allowed operation under the caller's
 * trace in a SERVER span `<Class>.<op>` (lib/telemetry/object-spans.ts), refusing any other name.
 */
import { ATTR_DB_OPERATION_NAME, ATTR_DB_SYSTEM_NAME } from "@opentelemetry/semantic-conventions";
import { continueTrace, type TracedResult } from "../telemetry/object-spans";
import type { TraceCarrier } from "../telemetry/spans";

/**
 * @example
 * traced(carrier, op, args) { return runTraced(this, "SatelliteState", SATELLITE_OPERATIONS, carrier, op, args); }
 */
export function runTraced<T>(target: object, className: string, operations: readonly string[], carrier: TraceCarrier, op: string, args: unknown[]): Promise<TracedResult<T>> {
  if (!operations.includes(op)) throw new TypeError(`not a ${className} operation: ${String(op).slice(0, 40)}`);
  const method = (target as Record<string, unknown>)[op] as (...a: unknown[]) => T | Promise<T>;
  return continueTrace(carrier, `${className}.${op}`, { [ATTR_DB_SYSTEM_NAME]: "sqlite", [ATTR_DB_OPERATION_NAME]: op }, () => method.apply(target, args));
}
