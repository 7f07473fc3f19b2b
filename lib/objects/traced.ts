/**
 * The one `traced()` body of our Durable Objects: runs an allowed operation under the caller's
 * trace in a SERVER span `<Class>.<op>` (lib/telemetry/object-spans.ts), refusing any other name.
 */
import { ATTR_DB_OPERATION_NAME, ATTR_DB_SYSTEM_NAME } from "@opentelemetry/semantic-conventions";
import { continueTrace, type TracedResult } from "../telemetry/object-spans";
import type { TraceCarrier } from "../telemetry/spans";

/** Operations each object instance served since it started, by name (its share of the load). */
const served = new WeakMap<object, Record<string, number>>();

/** What {@link runTraced} counted for `target`: calls by operation since the object started. */
export function callsServed(target: object): Record<string, number> {
  return { ...served.get(target) };
}

/**
 * @example
 * traced(carrier, op, args) { return runTraced(this, "SatelliteState", SATELLITE_OPERATIONS, carrier, op, args); }
 */
export function runTraced<T>(target: object, className: string, operations: readonly string[], carrier: TraceCarrier, op: string, args: unknown[]): Promise<TracedResult<T>> {
  if (!operations.includes(op)) throw new TypeError(`not a ${className} operation: ${String(op).slice(0, 40)}`);
  const method = (target as Record<string, unknown>)[op] as (...a: unknown[]) => T | Promise<T>;
  let counts = served.get(target);
  if (!counts) served.set(target, (counts = {}));
  counts[op] = (counts[op] ?? 0) + 1;
  return continueTrace(carrier, `${className}.${op}`, { [ATTR_DB_SYSTEM_NAME]: "sqlite", [ATTR_DB_OPERATION_NAME]: op }, () => method.apply(target, args));
}
