/**
 * Capacity of each aggregation object measured ALONE (export off, no request path): batches per
 * second that one object accepts by RPC from inside workerd (bench/variants/ours.ts,
 * `/__bench/ingest-capacity`), at concurrency 1 and 8, the best of the two kept:
 *   - shard: isolate flush batches straight into one MetricsAggregator (the design without leaves);
 *   - leaf: the same isolate batches into one MetricsLeaf (which forwards every 200 ms meanwhile);
 *   - owner: leaf forwards (`pointsPerForward` points, 20 isolates named) into one MetricsAggregator.
 * Used by bench/run.mjs (part 5) and bench/aggregation.mjs.
 *
 * @example
 * const capacity = await measureAggregation({ root, build, millis: 5000, pointsPerBatch: 13, pointsPerForward: 150, say: console.log });
 * capacity.leaf.batchesPerSecond;
 */
import { startVariant } from './workers.mjs';

export async function measureAggregation({ root, build, millis, pointsPerBatch, pointsPerForward, say = () => undefined }) {
  say(`(5) aggregation objects, each alone, export off, ${millis} ms per run: isolate batches (${pointsPerBatch} points) into one MetricsAggregator shard (no leaves) and into one MetricsLeaf; leaf forwards (${pointsPerForward} points, 20 isolates named) into one owner shard`);
  const w = await startVariant(root, build, { bindings: { OTEL_EXPORTER_OTLP_ENDPOINT: '' } });
  try {
    const measure = async (tier, points) => {
      const runs = [];
      for (const concurrency of [1, 8]) {
        const r = await fetch(`${w.url}/__bench/ingest-capacity?tier=${tier}&ms=${millis}&points=${points}&concurrency=${concurrency}`, { signal: AbortSignal.timeout(millis + 30_000) });
        const j = await r.json();
        runs.push(j);
        say(`    ${tier.padEnd(5)} concurrency ${concurrency}: ${j.batchesPerSecond.toFixed(0)} batches/s (${j.accepted} accepted, ${j.failed} failed)`);
      }
      return { pointsPerBatch: points, runs, batchesPerSecond: Math.max(...runs.map((x) => x.batchesPerSecond)) };
    };
    const shard = await measure('shard', pointsPerBatch);
    const leaf = await measure('leaf', pointsPerBatch);
    const owner = await measure('owner', pointsPerForward);
    return { pointsPerBatch, runs: shard.runs, batchesPerSecond: shard.batchesPerSecond, leaf, ownerForwards: owner };
  } finally {
    await w.dispose();
  }
}
