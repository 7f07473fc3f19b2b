/**
 * Build shim for the `otel-cf-workers` variant only (wired by bench/run.mjs as a wrangler
 * `[alias]` of "@opentelemetry/semantic-conventions/incubating"): @microlabs/otel-cf-workers
 * 1.0.0-rc.52 imports `ATTR_FAAS_TIME`, which @opentelemetry/semantic-conventions removed from
 * its incubating entry after ~1.34; everything else it imports still exists. This re-exports the
 * installed incubating entry and adds that one constant with its spec value.
 */
// The built file of the installed package, by path (the alias must not match its own output).
export * from "../../../node_modules/@opentelemetry/semantic-conventions/dist/index-incubating.mjs";

/** The `faas.time` attribute key (removed from the incubating entry in later releases). */
export const ATTR_FAAS_TIME = "faas.time";
