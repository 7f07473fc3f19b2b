/**
 * Variant `bare`: the same route modules with telemetry off — no requestTelemetry() (span, metrics, log line), no
 * flush (domain code still records a few instruments and, at sampling 0, non-recording spans: uncollected).
 */
import { benchEntry } from "./lib/bench-entry";
import { createApp } from "../../functions/app";

// Every Durable Object class the deployed entry exports (wrangler.toml binds them all).
export * from "../../functions/index";

const app = createApp({ telemetry: false });

export default benchEntry((request, env, ctx) => app.fetch(request, env, ctx));
