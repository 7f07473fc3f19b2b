/**
 * Variant `bare`: the same route modules with telemetry off — no httpMetrics, no server span, no
 * flush (see ./lib/compose.ts for what domain code still records into the SDK, uncollected).
 */
import { benchEntry } from "./lib/bench-entry";
import { composeApp } from "./lib/compose";

// Every Durable Object class the deployed entry exports (wrangler.toml binds them all).
export * from "../../functions/index";

const app = composeApp();

export default benchEntry((request, env, ctx) => app.fetch(request, env, ctx));
