/**
 * The one way to call a dependency: active chaos faults are applied, the dependency's circuit
 * breaker decides whether the call goes out, idempotent reads are retried with backoff, and a
 * success after an ended fault marks it recovered.
 *
 *   guardDependency ─▶ retry (reads only) ─▶ circuit_breaker span ─▶ breaker ─▶ faults ─▶ fn
 *
 * A call rejected by an OPEN breaker is not retried (that is the point of the breaker). A call that
 * changed a breaker's state syncs with ChaosControl before it returns, so the fleet gauge shows the
 * change at once (see ./breakers.ts). The first success after a run of failures records how long
 * the dependency was failing (astra_error_resolution_time_seconds).
 *
 * @example
 * const phase = await guardDependency(env, "storage", () => stub.getPhase(), { retry: "mission.getPhase" });
 */
import { context } from "@opentelemetry/api";
import { suppressTracing } from "@opentelemetry/core";
import { reportDependency, type DependencyName } from "./dependency-health";
import { breaker, breakerChangePending } from "./breakers";
import { applyFaults, faultView, noteHealthy, refreshFaultView } from "./chaos";
import { CircuitOpenError } from "./circuit-breaker";
import { retry, type IdempotentOperation, type RetryOptions } from "./retry";
import { withSpan } from "../telemetry/spans";
import { instruments } from "../telemetry/instruments";

/** Options of {@link guardDependency}. */
export interface GuardOptions {
  /** Retry under this operation name; only idempotent operations can be named. Default: no retry. */
  retry?: IdempotentOperation;
  /** Overrides of the retry defaults (tests). */
  retryOptions?: Omit<RetryOptions, "isRetryable">;
}

const retryable = (err: unknown) => !(err instanceof CircuitOpenError);

/** When the current run of failures of each dependency began (this isolate). */
const failingSince = new Map<DependencyName, number>();

/**
 * Tracks failure runs: the first failure starts one, the next success ends it and records
 * astra_error_resolution_time_seconds {error_type: "<dependency>_unavailable"} (a closed set).
 */
function noteOutcome(name: DependencyName, ok: boolean, startedAtMs: number): void {
  try {
    if (!ok) {
      if (!failingSince.has(name)) failingSince.set(name, startedAtMs);
      return;
    }
    const since = failingSince.get(name);
    if (since === undefined) return;
    failingSince.delete(name);
    instruments.errorResolutionTime.record(Math.max(0, (Date.now() - since) / 1000), { error_type: `${name}_unavailable` });
  } catch (err) {
    console.warn("reliability: recording failed", err);
  }
}

/** Forgets failure runs (tests). */
export function resetFailureRuns(): void {
  failingSince.clear();
}

/**
 * Calls `fn` (one call of dependency `name`) through the active faults, the breaker and, when
 * `options.retry` names an idempotent operation, the retry policy (3 attempts within 2 s).
 * Rejects with the dependency's error, a ChaosFaultError, or a CircuitOpenError.
 *
 * @example
 * const info = await guardDependency(env, "storage", () => stub.getPhase(), { retry: "mission.getPhase" });
 */
export async function guardDependency<T>(env: Env, name: DependencyName, fn: () => Promise<T>, options: GuardOptions = {}): Promise<T> {
  const view = await faultView(env);
  const startedAtMs = Date.now();
  const b = breaker(name);
  const once = () =>
    withSpan("circuit_breaker", { "circuit_breaker.name": name, "circuit_breaker.state": b.state }, () =>
      b.execute(() => applyFaults(view, name, fn)),
    );
  let result: T;
  try {
    result = options.retry ? await retry(options.retry, once, { ...options.retryOptions, isRetryable: retryable }) : await once();
    noteOutcome(name, true, startedAtMs);
  } catch (err) {
    noteOutcome(name, false, startedAtMs);
    throw err;
  } finally {
    // A transition is published at once (one sync, only on the rare calls that changed a state),
    // so the fleet gauge never waits for later traffic to show it.
    if (breakerChangePending()) await refreshFaultView(env);
  }
  await noteHealthy(env, name, view, startedAtMs);
  return result;
}

/**
 * Wraps a telemetry transport `(env, ...args) => Promise<R>` so it goes through the breaker and
 * the chaos faults of `name`, and reports the dependency's health for /health; a transport that
 * answers `false` (refused) counts as a failure and rejects. For the flusher (functions/telemetry.ts):
 *
 * @example
 * new TelemetryFlusher({
 *   sendPoints: guardTransport("metrics_aggregator", rpcSendPoints),
 *   exportSpans: guardTransport("collector", otlpExportSpans),
 * });
 */
export function guardTransport<A extends unknown[], R>(name: DependencyName, transport: (env: Env, ...args: A) => Promise<R>): (env: Env, ...args: A) => Promise<R> {
  return async (env, ...args) => {
    try {
      // Tracing suppressed, as the SDK's exporters do: exporting telemetry must not make telemetry.
      const result = await context.with(suppressTracing(context.active()), () =>
        guardDependency(env, name, async () => {
          const r = await transport(env, ...args);
          if (r === false) throw new Error(`${name} refused the export`);
          return r;
        }),
      );
      reportDependency(name, true);
      return result;
    } catch (err) {
      reportDependency(name, false, err);
      throw err;
    }
  };
}
