/** Workers entry: the Hono app, and the Durable Object classes wrangler.toml binds. */
import { app } from "./app";

export { MissionState } from "../lib/state/mission-state";
export { MetricsAggregator } from "../lib/telemetry/aggregator";
export { ChaosControl } from "../lib/reliability/chaos-control";

export default app;
