import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { leafConfig, type MetricsLeaf } from "../../../lib/objects/metrics-leaf";
import { leafName, shardName, type MetricPoint } from "../../../lib/telemetry/export/points";
import { counterPoint, gaugePoint, histogramPoint } from "./support";

let n = 0;
const freshLeaf = () => env.METRICS_LEAF.get(env.METRICS_LEAF.idFromName(`${leafName(0)}-test-${Date.now()}-${n++}`));
const owner = (shard = 0) => env.METRICS_AGGREGATOR.get(env.METRICS_AGGREGATOR.idFromName(shardName(shard)));
const udc = (name: string, value: number): MetricPoint => ({ ...counterPoint(name, value), kind: "updowncounter" });

/** Runs the leaf's alarm with the owner namespace replaced by `wrap(real stub)` (to lose an acknowledgement, or fail). */
async function alarmWithOwner(leaf: DurableObjectStub<MetricsLeaf>, wrap: (real: any) => any): Promise<void> {
  await runInDurableObject(leaf, async (instance: MetricsLeaf) => {
    const self = instance as unknown as { env: Env };
    const real = self.env;
    self.env = { ...real, METRICS_AGGREGATOR: { idFromName: (name: string) => real.METRICS_AGGREGATOR.idFromName(name), get: (id: DurableObjectId) => wrap(real.METRICS_AGGREGATOR.get(id)) } } as unknown as Env;
    try {
      await instance.alarm();
    } finally {
      self.env = real;
    }
  });
}

describe("MetricsLeaf", () => {
  it("merges many isolates' batches and forwards the sums to the owner shard in one forward", async () => {
    const leaf = freshLeaf();
    const bounds = [0.1, 1];
    for (let i = 0; i < 5; i++) {
      await leaf.ingest(`iso-${i}-0`, [
        counterPoint("astra_http_requests_total", 2, { status: "200" }),
        histogramPoint("astra_http_request_duration_seconds", bounds, [1, 0, 1], 1.5, { endpoint: "/x" }),
        gaugePoint("astra_detection_accuracy", i / 10, 1000 + i),
      ]);
    }
    expect(await leaf.stats()).toMatchObject({ batchesAccepted: 5, pendingStreams: 3, senders: 5 });
    expect(await runDurableObjectAlarm(leaf)).toBe(true);
    expect(await leaf.stats()).toMatchObject({ pendingStreams: 0, outbox: 0, forwards: 1 });
    expect(await owner().read("astra_http_requests_total", "counter", { status: "200" })).toMatchObject({ value: 10 });
    expect((await owner().read("astra_http_request_duration_seconds", "histogram", { endpoint: "/x" }))?.histogram).toMatchObject({ bucketCounts: [5, 0, 5], count: 10, sum: 7.5 });
    expect(await owner().read("astra_detection_accuracy", "gauge", {})).toMatchObject({ value: 0.4 });
    expect(await owner().stats()).toMatchObject({ forwardsAccepted: 1, batchesAccepted: 0, senders: 5 });
  });

  it("counts a re-sent isolate batch once (same id, or an older sequence of the same isolate)", async () => {
    const leaf = freshLeaf();
    await leaf.ingest("iso-a-3", [counterPoint("astra_errors_total", 1)]);
    expect(await leaf.ingest("iso-a-3", [counterPoint("astra_errors_total", 1)])).toEqual({ accepted: false, merged: 0 });
    expect(await leaf.ingest("iso-a-2", [counterPoint("astra_errors_total", 1)])).toEqual({ accepted: false, merged: 0 });
    await leaf.ingest("iso-a-4", [counterPoint("astra_errors_total", 1)]);
    expect(await leaf.ingest("not a batch id", [counterPoint("astra_errors_total", 1)])).toEqual({ accepted: false, merged: 0 });
    await runDurableObjectAlarm(leaf);
    expect(await owner().read("astra_errors_total", "counter", {})).toMatchObject({ value: 2 });
    expect(await leaf.stats()).toMatchObject({ batchesAccepted: 2, batchesDuplicate: 2, batchesRefused: 1 });
  });

  it("re-sends a forward whose acknowledgement was lost with the same sequence; the owner counts it once", async () => {
    const leaf = freshLeaf();
    await leaf.ingest("iso-a-0", [counterPoint("astra_anomalies_detected_total", 3, { severity: "HIGH" })]);
    await alarmWithOwner(leaf, (real) => ({
      forward: async (...args: unknown[]) => {
        await real.forward(...args);
        throw new Error("connection reset after delivery");
      },
    }));
    expect(await leaf.stats()).toMatchObject({ outbox: 1, forwardFailures: 1 });
    // New points meanwhile stay pending (merged), not in the waiting forward.
    await leaf.ingest("iso-a-1", [counterPoint("astra_anomalies_detected_total", 4, { severity: "HIGH" })]);
    await runDurableObjectAlarm(leaf); // re-sends the waiting forward only (its shard has one waiting)
    expect(await owner().stats()).toMatchObject({ forwardsAccepted: 1, forwardsDuplicate: 1 });
    expect(await owner().read("astra_anomalies_detected_total", "counter", { severity: "HIGH" })).toMatchObject({ value: 3 });
    await runDurableObjectAlarm(leaf); // now the pending 4
    expect(await owner().read("astra_anomalies_detected_total", "counter", { severity: "HIGH" })).toMatchObject({ value: 7 });
    expect(await leaf.stats()).toMatchObject({ outbox: 0, pendingStreams: 0 });
  });

  it("keeps everything through an unreachable owner, merged into bounded state, and re-arms its alarm with backoff", async () => {
    const leaf = freshLeaf();
    for (let round = 0; round < 3; round++) {
      await leaf.ingest(`iso-a-${round}`, [counterPoint("astra_recovery_actions_total", 1)]);
      await alarmWithOwner(leaf, () => ({ forward: async () => Promise.reject(new Error("owner unreachable")) }));
      const alarm = await runInDurableObject(leaf, (_i, state) => state.storage.getAlarm());
      expect(alarm).not.toBeNull();
      expect(alarm! - Date.now()).toBeGreaterThan(leafConfig.forwardIntervalMillis);
    }
    expect(await leaf.stats()).toMatchObject({ outbox: 1, pendingStreams: 1, forwardFailures: 3 });
    await runDurableObjectAlarm(leaf);
    await runDurableObjectAlarm(leaf);
    expect(await owner().read("astra_recovery_actions_total", "counter", {})).toMatchObject({ value: 3 });
    expect(await leaf.stats()).toMatchObject({ outbox: 0, pendingStreams: 0 });
    // Nothing waits: no alarm until the next ingest.
    expect(await runInDurableObject(leaf, (_i, state) => state.storage.getAlarm())).toBeNull();
  });

  it("keeps UpDownCounters per isolate through the leaf, and tells the owner which isolates are alive", async () => {
    const leaf = freshLeaf();
    await leaf.ingest("iso-a-0", [udc("astra_active_connections", 2)]);
    await leaf.ingest("iso-b-0", [udc("astra_active_connections", 3)]);
    await leaf.ingest("iso-a-1", [udc("astra_active_connections", -2)]);
    await runDurableObjectAlarm(leaf);
    expect(await owner().read("astra_active_connections", "updowncounter", {})).toMatchObject({ value: 3 });
    const contributions = await runInDurableObject(owner(), (_i, state) => state.storage.sql.exec(`SELECT sender, value FROM contributions ORDER BY sender`).toArray());
    expect(contributions).toEqual([
      { sender: "iso-a", value: 0 },
      { sender: "iso-b", value: 3 },
    ]);
    // b dies: the owner stops counting it once it has not been heard from for senderLiveMillis.
    await runInDurableObject(owner(), (_i, state) => state.storage.sql.exec(`UPDATE senders SET seen_ms = 0 WHERE sender = 'iso-b'`));
    expect(await owner().read("astra_active_connections", "updowncounter", {})).toMatchObject({ value: 0 });
  });

  it("forwards at once when it has been quiet for an interval, else one interval after the last forward", async () => {
    const leaf = freshLeaf();
    await leaf.ingest("iso-a-0", [counterPoint("astra_quiet_total", 1)]);
    const forwardedAt = Date.now();
    await runDurableObjectAlarm(leaf);
    // Busy: the next forward waits out the interval from the last one.
    await leaf.ingest("iso-a-1", [counterPoint("astra_quiet_total", 1)]);
    const busy = await runInDurableObject(leaf, (_i, state) => state.storage.getAlarm());
    expect(busy).toBeGreaterThanOrEqual(forwardedAt + leafConfig.forwardIntervalMillis);
    await runDurableObjectAlarm(leaf);
    // Quiet for more than an interval (however slow this machine is, the wait is at least that):
    // the point is forwarded without waiting (its alarm is due now, or has already run).
    await new Promise((resolve) => setTimeout(resolve, leafConfig.forwardIntervalMillis + 50));
    await leaf.ingest("iso-a-2", [counterPoint("astra_quiet_total", 1)]);
    const quiet = await runInDurableObject(leaf, (_i, state) => state.storage.getAlarm());
    expect(quiet === null || quiet <= Date.now()).toBe(true);
  });

  it("splits a forward by owner shard", async () => {
    const leaf = freshLeaf();
    const names = Array.from({ length: 8 }, (_, i) => `astra_split_${i}_total`);
    await leaf.ingest("iso-a-0", names.map((name) => counterPoint(name, 1)));
    await runInDurableObject(leaf, async (instance: MetricsLeaf) => {
      const self = instance as unknown as { env: Env };
      const real = self.env;
      self.env = { ...real, METRICS_AGGREGATOR_SHARDS: "2" };
      try {
        await instance.alarm();
      } finally {
        self.env = real;
      }
    });
    const { shardOf } = await import("../../../lib/telemetry/export/points");
    for (const name of names) expect(await owner(shardOf(name, 2)).read(name, "counter", {}), name).toMatchObject({ value: 1 });
    expect((await owner(0).stats()).forwardsAccepted + (await owner(1).stats()).forwardsAccepted).toBe(2);
  });
});

describe("MetricsAggregator.forward", () => {
  it("accepts each (leaf, sequence) once and refuses an older sequence", async () => {
    const shard = owner();
    expect(await shard.forward("leaf-x", 2, [counterPoint("astra_x_total", 5)], 0, [])).toEqual({ accepted: true, merged: 1 });
    expect(await shard.forward("leaf-x", 2, [counterPoint("astra_x_total", 5)], 0, [])).toEqual({ accepted: false, merged: 0 });
    expect(await shard.forward("leaf-x", 1, [counterPoint("astra_x_total", 5)], 0, [])).toEqual({ accepted: false, merged: 0 });
    expect(await shard.forward("leaf-y", 1, [counterPoint("astra_x_total", 1)], 0, [])).toEqual({ accepted: true, merged: 1 });
    expect(await shard.forward("", 1, [], 0, [])).toEqual({ accepted: false, merged: 0 });
    expect(await shard.read("astra_x_total", "counter", {})).toMatchObject({ value: 6 });
  });
});
