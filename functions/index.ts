/** Workers entry: the Hono app, and the Durable Object classes wrangler.toml binds. */
import { app } from "./app";

export { MissionState } from "../lib/objects/mission-state";
export { MetricsAggregator } from "../lib/objects/metrics-aggregator";
export { MetricsLeaf } from "../lib/objects/metrics-leaf";
export { ChaosControl } from "../lib/objects/chaos-control";
export { SatelliteState } from "../lib/objects/satellite-state";

export default app;
