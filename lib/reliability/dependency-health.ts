/**
 * Last seen health of each dependency in this isolate, as reported by the code that calls it.
 * /health reads it without calling anything, so a slow or dead dependency never slows /health.
 */

/** Every dependency the service guards: the closed set of breaker `name`s and fault targets. */
export const DEPENDENCIES = ["storage", "collector", "metrics_aggregator"] as const;
export type DependencyName = (typeof DEPENDENCIES)[number];

export interface DependencyStatus {
  status: "ok" | "degraded" | "unknown";
  last_success?: string;
  last_failure?: string;
  last_error?: string;
  consecutive_failures: number;
}

const statuses = new Map<DependencyName, DependencyStatus>();

export function reportDependency(name: DependencyName, ok: boolean, error?: unknown): void {
  const now = new Date().toISOString();
  const prev = statuses.get(name) ?? { status: "unknown", consecutive_failures: 0 };
  statuses.set(
    name,
    ok
      ? { ...prev, status: "ok", last_success: now, consecutive_failures: 0 }
      : {
          ...prev,
          status: "degraded",
          last_failure: now,
          // Only the error's type and a short message: errors may echo URLs or payloads.
          last_error: error instanceof Error ? `${error.name}: ${error.message.slice(0, 120)}` : String(error ?? "failed").slice(0, 120),
          consecutive_failures: prev.consecutive_failures + 1,
        },
  );
}

export function dependencyStatus(name: DependencyName): DependencyStatus {
  return statuses.get(name) ?? { status: "unknown", consecutive_failures: 0 };
}
