/**
 * Service health: this isolate's view of each dependency. Storage is pinged with a short deadline;
 * the collector's status is what the last export saw, so /health never waits on it.
 */
import { dependencyStatus, type DependencyStatus } from "../reliability/dependency-health";
import type { MissionPhase } from "../domain/schemas";
import { callMission } from "./mission-client";
import { localBreakerStates } from "../reliability/breakers";
import type { BreakerState } from "../reliability/circuit-breaker";
import { instruments } from "../telemetry/instruments";

/** How long /health waits for the storage ping before calling it degraded. */
export const STORAGE_PING_TIMEOUT_MS = 500;
/** Set on the first report: at module scope Workers read the clock as 0 (1970), not the start time. */
let isolateStartedAt: number | undefined;

export interface HealthReport {
  status: "healthy" | "degraded";
  version: string;
  uptime_seconds: number;
  started_at: string;
  mission_phase: MissionPhase | null;
  /** Each dependency: last seen status, and this isolate's circuit breaker for it. */
  dependencies: Record<string, DependencyStatus & { latency_ms?: number; circuit_breaker: BreakerState }>;
}

export async function healthReport(env: Env, now = Date.now()): Promise<HealthReport> {
  const started = Date.now();
  let phase: MissionPhase | null = null;
  let storageError: string | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const ping = callMission(env, (s) => s.ping());
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${STORAGE_PING_TIMEOUT_MS} ms`)), STORAGE_PING_TIMEOUT_MS);
    });
    phase = (await Promise.race([ping, deadline])).phase;
  } catch (err) {
    storageError = err instanceof Error ? err.message : String(err);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
  const storage = { ...dependencyStatus("storage"), latency_ms: Date.now() - started };
  if (storageError) Object.assign(storage, { status: "degraded", last_error: storageError });
  const breakers = localBreakerStates();
  const dependencies = {
    storage: { ...storage, circuit_breaker: breakers.storage ?? "CLOSED" },
    collector: { ...dependencyStatus("collector"), circuit_breaker: breakers.collector ?? "CLOSED" },
    metrics_aggregator: { ...dependencyStatus("metrics_aggregator"), circuit_breaker: breakers.metrics_aggregator ?? "CLOSED" },
  };
  for (const [service, d] of Object.entries(dependencies)) {
    if (d.status === "degraded") instruments.healthCheckFailures.add(1, { service });
  }
  const degraded = Object.values(dependencies).some((d) => d.status === "degraded");
  isolateStartedAt ??= started;
  return {
    status: degraded ? "degraded" : "healthy",
    version: env.SERVICE_VERSION ?? "0.0.0",
    uptime_seconds: Math.round((now - isolateStartedAt) / 1000),
    started_at: new Date(isolateStartedAt).toISOString(),
    mission_phase: phase,
    dependencies,
  };
}
