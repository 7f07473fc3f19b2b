import type { ChaosControl } from "./reliability/chaos-control";
import type { MissionState } from "./state/mission-state";
import type { MetricsAggregator } from "./telemetry/aggregator";

/** The Worker's bindings: vars from wrangler.toml, secrets from `wrangler secret put` (locally .dev.vars). */
export interface Env {
  MISSION_STATE: DurableObjectNamespace<MissionState>;
  METRICS_AGGREGATOR: DurableObjectNamespace<MetricsAggregator>;
  /** Active chaos faults and the fleet view of the circuit breakers (lib/reliability). */
  CHAOS_CONTROL: DurableObjectNamespace<ChaosControl>;
  INGEST_RATE_LIMITER?: RateLimit;
  SERVICE_VERSION?: string;
  DEPLOYMENT_ENVIRONMENT?: string;
  /** Base URL of the collector's OTLP/HTTP receiver; empty turns export off. */
  OTEL_EXPORTER_OTLP_ENDPOINT?: string;
  /** Bearer token the collector's OTLP receiver checks. */
  OTEL_EXPORTER_OTLP_TOKEN?: string;
  /** Parent-based ratio sampler argument, 0..1. */
  OTEL_TRACES_SAMPLER_ARG?: string;
  /** Number of MetricsAggregator shards streams are spread over (default 1). */
  METRICS_AGGREGATOR_SHARDS?: string;
  ADMIN_TOKEN?: string;
  OPERATOR_TOKEN?: string;
  /** Bearer token for reads, needed only when REQUIRE_READ_TOKEN is "true" (operator and admin tokens also read). */
  READ_TOKEN?: string;
  /** "true": GET/HEAD under /api/ need a read, operator or admin token (/ and /health stay open). */
  REQUIRE_READ_TOKEN?: string;
  REQUIRE_INGEST_KEY?: string;
  /** "true" allows POST /api/v1/chaos; unset, it is allowed unless DEPLOYMENT_ENVIRONMENT is "production". */
  CHAOS_ENABLED?: string;
  /** Comma-separated ingest API keys, checked when REQUIRE_INGEST_KEY is "true". */
  INGEST_API_KEYS?: string;
  /** Comma-separated origins allowed by CORS (exact, or "*"); empty: no CORS headers. */
  CORS_ALLOW_ORIGINS?: string;
}

/** Hono's generic argument for this app: bindings plus request-scoped variables. */
export interface AppEnv {
  Bindings: Env;
  Variables: {
    requestId: string;
    /** Set by the ingest key check: the accepted key's fingerprint, the rate limiter's key. */
    ingestClient?: string;
  };
}
