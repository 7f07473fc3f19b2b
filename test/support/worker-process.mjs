/**
 * The deploy bundle in Miniflare as a process of its own, with its Durable Objects persisted to
 * disk, so a test can kill it abruptly (SIGKILL of its process group: Node and workerd, no
 * waitUntil, no shutdown hook) and start it again on the same storage, as a runtime restart
 * would. Started by test/stack/isolate-kill.test.ts (spawn(process.execPath, [this file])).
 *
 * Input: env ASTRAGUARD_WORKER_SPEC = JSON {script, modulesRoot, port, persistDir,
 * compatibilityDate, compatibilityFlags, bindings}. Output: one line `READY <url>` on stdout.
 *
 * @example
 * ASTRAGUARD_WORKER_SPEC='{"script":"/tmp/b/index.js",...}' node test/support/worker-process.mjs
 */
import { convertV4MiniflareOptions, Miniflare } from "miniflare";

const spec = JSON.parse(process.env.ASTRAGUARD_WORKER_SPEC ?? "{}");
const objects = { MISSION_STATE: "MissionState", METRICS_AGGREGATOR: "MetricsAggregator", CHAOS_CONTROL: "ChaosControl", METRICS_LEAF: "MetricsLeaf", SATELLITE_STATE: "SatelliteState" };
const options = convertV4MiniflareOptions({
    host: "127.0.0.1",
    port: spec.port,
    modules: true,
    scriptPath: spec.script,
    modulesRoot: spec.modulesRoot,
    compatibilityDate: spec.compatibilityDate,
    compatibilityFlags: spec.compatibilityFlags,
    bindings: spec.bindings,
    durableObjects: Object.fromEntries(Object.entries(objects).map(([binding, className]) => [binding, { className, useSQLite: true }])),
    // The Worker logs a line per request: not needed here (the test reads Prometheus).
    handleStructuredLogs: () => undefined,
});
// Miniflare 5 keeps every resource's storage (Durable Objects' SQLite too) under one root.
const mf = new Miniflare({ ...options, resourcePersistencePath: spec.persistDir });
const url = (await mf.ready).toString().replace(/\/$/, "");
process.stdout.write(`READY ${url}\n`);
const stop = async () => {
  await mf.dispose().catch(() => undefined);
  process.exit(0);
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
