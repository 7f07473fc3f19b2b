/**
 * The one way to call a dependency: active chaos faults are applied, the dependency's circuit
 * breaker decides whether the call goes out, idempotent reads are retried with backoff, and a
 * success after an ended fault marks it recovered.
 *
 *   guardDependency ─▶ retry (reads only) ─▶ circuit_breaker span ─▶ breaker ─▶ faults ─▶ fn
 *
 * A call rejected by an OPEN breaker is not retried (that is the point of the breaker). A call that
 * changed a breaker's state syncs with ChaosControl before it returns, so the fleet gauge shows the
 * change at once (see ./breakers.ts).
 *
 * @example
 * const phase = await guardDependency(env, "storage", () => stub.getPhase(), { retry: "mission.getPhase" });
 */
import type { Env } from "../env";
import { reportDependency, type DependencyName } from "../state/dependency-health";
import { breaker, breakerChangePending } from "./breakers";
import { applyFaults, faultView, noteHealthy } from "./chaos";
import { CircuitOpenError } from "./circuit-breaker";
import { retry, type IdempotentOperation, type RetryOptions } from "./retry";
import { withReliabilitySpan } from "./spans";

/** Options of {@link guardDependency}. */
export interface GuardOptions {
  /** Retry under this operation name; only idempotent operations can be named. Default: no retry. */
  retry?: IdempotentOperation;
  /** Overrides of the retry defaults (tests). */
  retryOptions?: Omit<RetryOptions, "isRetryable">;
}

const retryable = (err: unknown) => !(err instanceof CircuitOpenError);

export async function guardDependency<T>(env: Env, name: DependencyName, fn: () => Promise<T>, options: GuardOptions = {}): Promise<T> {
  const view = await faultView(env);
  const startedAtMs = Date.now();
  const b = breaker(name);
  const once = () =>
    withReliabilitySpan("circuit_breaker", { "circuit_breaker.name": name, "circuit_breaker.state": b.state }, () =>
      b.execute(() => applyFaults(view, name, fn)),
    );
  let result: T;
  try {
    result = options.retry ? await retry(options.retry, once, { ...options.retryOptions, isRetryable: retryable }) : await once();
  } finally {
    // A transition is published at once (one sync, only on the rare calls that changed a state),
    // so the fleet gauge never waits for later traffic to show it.
    if (breakerChangePending()) await faultView(env);
  }
  await noteHealthy(env, name, view, startedAtMs);
  return result;
}

/**
 * Wraps a telemetry transport `(env, ...args) => Promise<R>` so it goes through the breaker and
 * the chaos faults of `name`, and reports the dependency's health for /health; a transport that
 * answers `false` (refused) counts as a failure and rejects. For ../telemetry/flush.ts:
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
      const result = await guardDependency(env, name, async () => {
        const r = await transport(env, ...args);
        if (r === false) throw new Error(`${name} refused the export`);
        return r;
      });
      reportDependency(name, true);
      return result;
    } catch (err) {
      reportDependency(name, false, err);
      throw err;
    }
  };
}
