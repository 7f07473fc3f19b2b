/**
 * Variant `ours`: functions/index.ts as deployed (requestTelemetry() after requestId(), coalesced flush to the
 * MetricsAggregator Durable Object by RPC, spans by OTLP/HTTP).
 *
 * The bench reads its counters at `/__bench/stats`: the isolate flusher's stats, the aggregator
 * shards' stats, and the RPC batches the shards received (see MetricsAggregator below).
 */
import app from "../../functions/index";
import { MetricsAggregator as DeployedAggregator } from "../../lib/objects/metrics-aggregator";
import { MetricsLeaf as DeployedLeaf } from "../../lib/objects/metrics-leaf";
import { telemetryFlusher } from "../../functions/telemetry";
import { leafCount, leafName, shardCount, shardName, type MetricPoint } from "../../lib/telemetry/export/points";
import { spanBuffer } from "../../lib/telemetry/tracer-provider";
import { benchEntry } from "./lib/bench-entry";

// Every Durable Object class the deployed entry exports (wrangler.toml binds them all); the local
// MetricsAggregator below takes precedence over the one re-exported here.
export * from "../../functions/index";

/** What one object received by RPC: batches, points, and the JSON size of the points. */
interface Received {
  batches: number;
  points: number;
  jsonBytes: number;
}

/** Counts one received batch (RPC uses structured clone, so JSON length estimates the bytes on that hop). */
function noteReceived(received: Received, batchId: string, points: MetricPoint[]): void {
  received.batches++;
  received.points += Array.isArray(points) ? points.length : 0;
  received.jsonBytes += JSON.stringify(points ?? []).length + String(batchId).length;
}

/**
 * The deployed aggregator, counting what reaches it by RPC. Counted on the receiving side because
 * isolates AND Durable Objects flush (whoever schedules a coalesced flush supplies the env), so no
 * wrapper around one caller's env sees every send.
 */
export class MetricsAggregator extends DeployedAggregator {
  readonly #received: Received = { batches: 0, points: 0, jsonBytes: 0 };

  override async ingest(...args: Parameters<DeployedAggregator["ingest"]>): ReturnType<DeployedAggregator["ingest"]> {
    noteReceived(this.#received, args[0], args[1]);
    return super.ingest(...args);
  }

  /** What this shard received since its object started. */
  async benchReceived(): Promise<Received> {
    return { ...this.#received };
  }
}

/** The deployed leaf, counting the isolate batches that reach it by RPC (with leaves, isolates send only here). */
export class MetricsLeaf extends DeployedLeaf {
  readonly #received: Received = { batches: 0, points: 0, jsonBytes: 0 };

  override async ingest(...args: Parameters<DeployedLeaf["ingest"]>): ReturnType<DeployedLeaf["ingest"]> {
    noteReceived(this.#received, args[0], args[1]);
    return super.ingest(...args);
  }

  /** What this leaf received since its object started. */
  async benchReceived(): Promise<Received> {
    return { ...this.#received };
  }
}

async function stats(env: Env): Promise<Record<string, unknown>> {
  const shards = shardCount(env.METRICS_AGGREGATOR_SHARDS);
  const stubs = Array.from({ length: shards }, (_, i) => env.METRICS_AGGREGATOR.get(env.METRICS_AGGREGATOR.idFromName(shardName(i))) as unknown as DurableObjectStub<MetricsAggregator>);
  const aggregators = await Promise.all(stubs.map((s) => s.stats()));
  // Isolate sends land on the leaves when there are leaves, else on the shards.
  const leafStubs = Array.from({ length: env.METRICS_LEAF ? leafCount(env.METRICS_AGGREGATOR_LEAVES) : 0 }, (_, i) => env.METRICS_LEAF.get(env.METRICS_LEAF.idFromName(leafName(i))) as unknown as DurableObjectStub<MetricsLeaf>);
  const received = await Promise.all([...stubs.map((s) => s.benchReceived()), ...leafStubs.map((s) => s.benchReceived())]);
  const rpc = received.reduce((a, r) => ({ sends: a.sends + r.batches, points: a.points + r.points, jsonBytes: a.jsonBytes + r.jsonBytes }), { sends: 0, points: 0, jsonBytes: 0 });
  return { flusher: { ...telemetryFlusher.stats }, spansBuffered: spanBuffer.size, spansDropped: spanBuffer.droppedSpans, rpc, aggregators };
}

/**
 * `GET /__bench/ingest-capacity?tier=&ms=&points=&concurrency=&senders=`: sends synthetic
 * batches by RPC from inside workerd for `ms`, `concurrency` at a time, and answers how many
 * were accepted per second. Used by the bench (with export off) to measure each aggregation
 * object on its own; never part of a measured request path.
 * - `tier=shard` (default): isolate flush batches (`points` points: counters and histograms over a
 *   fixed set of streams) straight into one MetricsAggregator (no leaves).
 * - `tier=leaf`: the same isolate batches into one MetricsLeaf, each concurrent sender its own
 *   isolate (increasing sequences); the leaf forwards every 200 ms as it does in production.
 * - `tier=owner`: leaf forwards (`points` points, `senders` isolates named) into one
 *   MetricsAggregator, each concurrent sender its own leaf.
 */
async function ingestCapacity(request: Request, env: Env): Promise<Response> {
  const q = new URL(request.url).searchParams;
  const tier = q.get("tier") ?? "shard";
  const ms = Math.min(Number(q.get("ms") ?? 3000), 60_000);
  const size = Math.min(Number(q.get("points") ?? 12), 2000);
  const concurrency = Math.min(Number(q.get("concurrency") ?? 8), 64);
  const senderCount = Math.min(Number(q.get("senders") ?? 20), 1000);
  const bounds = [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5];
  const points: MetricPoint[] = Array.from({ length: size }, (_, i): MetricPoint =>
    i % 2 === 0
      ? { name: "astra_bench_requests_total", description: "", unit: "", kind: "counter", attributes: { endpoint: `/e${i}`, status: "200" }, value: 3, timeMs: Date.now() }
      : {
          name: "astra_bench_duration_seconds",
          description: "",
          unit: "s",
          kind: "histogram",
          attributes: { endpoint: `/e${i}` },
          histogram: { boundaries: bounds, bucketCounts: [1, 1, 1, 0, 0, 0, 0, 0], sum: 0.07, count: 3, min: 0.005, max: 0.04 },
          timeMs: Date.now(),
        },
  );
  const run = crypto.randomUUID();
  const senders: Array<[string, number]> = Array.from({ length: senderCount }, (_, i) => [`${run}.isolate${i}`, Date.now()]);
  const send: (worker: number, sequence: number) => Promise<{ accepted: boolean }> =
    tier === "leaf"
      ? ((stub) => (worker, sequence) => stub.ingest(`${run}.w${worker}-${sequence}`, points))(env.METRICS_LEAF.get(env.METRICS_LEAF.idFromName(`bench-capacity-leaf-${run}`)))
      : tier === "owner"
        ? ((stub) => (worker, sequence) => stub.forward(`${run}.leaf${worker}`, sequence, points, 0, senders))(env.METRICS_AGGREGATOR.get(env.METRICS_AGGREGATOR.idFromName(`bench-capacity-owner-${run}`)))
        : ((stub) => (worker, sequence) => stub.ingest(`${run}.w${worker}-${sequence}`, points))(env.METRICS_AGGREGATOR.get(env.METRICS_AGGREGATOR.idFromName(`bench-capacity-${run}`)));
  let accepted = 0;
  let failed = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      for (let sequence = 1; Date.now() - started < ms; sequence++) {
        try {
          if ((await send(worker, sequence)).accepted) accepted++;
        } catch {
          failed++;
        }
      }
    }),
  );
  const seconds = (Date.now() - started) / 1000;
  return Response.json({ tier, accepted, failed, seconds, pointsPerBatch: size, concurrency, senders: tier === "owner" ? senderCount : undefined, batchesPerSecond: accepted / seconds });
}

const entry = benchEntry((request, env, ctx) => app.fetch(request, env, ctx), stats);

export default {
  fetch(request: Request, env: Env, ctx: ExecutionContext) {
    if (request.url.includes("/__bench/ingest-capacity")) return ingestCapacity(request, env);
    return entry.fetch!(request as never, env, ctx);
  },
} satisfies ExportedHandler<Env>;
