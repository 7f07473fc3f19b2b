/**
 * Variant `otel-cf-workers`: `@microlabs/otel-cf-workers` (1.0.0-rc.52) instrumenting the same
 * routes. TRACES ONLY: the library records no metrics, so this variant exports spans and nothing
 * else (its figures are not comparable one to one with variants that also export metrics).
 * It flushes its spans at the end of every request in `waitUntil`, as it documents.
 */
import { instrument, type ResolveConfigFn } from "@microlabs/otel-cf-workers";
import { benchEntry } from "./lib/bench-entry";
import { createApp } from "../../functions/app";

// Every Durable Object class the deployed entry exports (wrangler.toml binds them all).
export * from "../../functions/index";

const app = createApp({ telemetry: false });

const config: ResolveConfigFn = (env: Env) => ({
  exporter: {
    url: `${(env.OTEL_EXPORTER_OTLP_ENDPOINT ?? "").replace(/\/+$/, "")}/v1/traces`,
    headers: (env.OTEL_EXPORTER_OTLP_TOKEN ? { Authorization: `Bearer ${env.OTEL_EXPORTER_OTLP_TOKEN}` } : {}) as Record<string, string>,
  },
  service: { name: "astraguard-edge-otel-cf-workers" },
});

const instrumented = instrument({ fetch: (request: Request, env: Env, ctx: ExecutionContext) => app.fetch(request, env, ctx) }, config);

export default benchEntry((request, env, ctx) => instrumented.fetch!(request as never, env, ctx));
