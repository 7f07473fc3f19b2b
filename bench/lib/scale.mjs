/**
 * Scale on paper: from what one run measured (bytes and exports per request, collector and
 * Prometheus CPU per unit, the aggregation point's batches/s), what the pipeline must absorb at
 * 1k, 10k and 100k requests per second across many isolates, and which part gives out first.
 *
 * Spans the isolate dropped in the measurement (bounded buffer) are counted as if delivered: the
 * rows show what the pipeline must absorb when every recorded span arrives.
 *
 * Only two things are assumptions, both stated in the output: how many isolates share the load
 * (dense: each isolate as busy as the one measured here at saturation; spread: each isolate sees
 * `spreadRpsPerIsolate` req/s, closer to traffic spread over many machines and locations), and
 * that costs grow linearly with volume. The design's own rules give the rest:
 *   - an isolate flushes at most once per second, one RPC batch per aggregator shard it has
 *     points for, and at most one span export per flush;
 *   - each shard pushes all its streams once per second (keepalive 15 s when idle), so the
 *     metrics the collector and Prometheus see do not grow with requests, only with streams.
 */

export const RATES = [1_000, 10_000, 100_000];

export function scaleOnPaper(result, { spreadRpsPerIsolate = 20, variant = 'ours' } = {}) {
  const e = result.economy?.variants?.[variant];
  const o = result.overhead?.variants?.[variant];
  const capacity = result.aggregatorCapacity?.batchesPerSecond;
  if (!e || !o || !capacity) return null;
  const perIsolateMax = o.rps;
  const seconds = result.economy.seconds;
  const spanBytesPerReqDelivered = e.spanExports.bytesPerRequest;
  const rpcBytesPerSend = e.isolateToAggregator.sends ? e.isolateToAggregator.jsonBytes / e.isolateToAggregator.sends : 0;
  const pushBytes = e.metricsPushes.bytesPerPush ?? 0;
  const pushesPerSecond = e.metricsPushes.requests / seconds;
  // Spans the isolate dropped (bounded buffer) never reached the collector; the design means to
  // deliver them, so span volume and collector CPU are scaled up to every span recorded.
  const spansDelivered = e.collector.spansAccepted;
  const spansDropped = e.flusher?.spansDropped ?? 0;
  const undropped = spansDelivered > 0 ? (spansDelivered + spansDropped) / spansDelivered : 1;
  const collectorCpuMsPerReq = e.collector.cpuMillisPerRequest * undropped;
  const spansPerReq = (spansDelivered + spansDropped) / e.requests;
  const spanBytesPerReq = spanBytesPerReqDelivered * undropped;
  const samplesPerSecond = e.prometheus.samplesPerSecond;
  const promCpuPerSample = e.prometheus.samplesAppended > 0 ? (e.prometheus.cpuSecondsOverIdle ?? e.prometheus.cpuSeconds) / e.prometheus.samplesAppended : null;

  const rows = RATES.map((rps) => {
    const dense = Math.ceil(rps / perIsolateMax);
    const spread = Math.ceil(rps / spreadRpsPerIsolate);
    // Each isolate flushes ≤ 1/s, so one shard receives ≤ (isolates) batches/s however many shards
    // there are: sharding by metric name splits a batch, it does not reduce the batch rate.
    const batchesPerShard = { dense: Math.min(rps, dense), spread: Math.min(rps, spread) };
    const collectorCores = (rps * collectorCpuMsPerReq) / 1000;
    return {
      rps,
      isolates: { dense, spread },
      aggregator: {
        batchesPerSecondPerShard: batchesPerShard,
        capacityBatchesPerSecond: capacity,
        loadFactor: { dense: batchesPerShard.dense / capacity, spread: batchesPerShard.spread / capacity },
        rpcBytesPerSecond: { dense: batchesPerShard.dense * rpcBytesPerSend, spread: batchesPerShard.spread * rpcBytesPerSend },
      },
      collector: {
        spanBytesPerSecond: rps * spanBytesPerReq,
        spansPerSecond: rps * spansPerReq,
        spanExportsPerSecond: { dense: Math.min(rps, dense), spread: Math.min(rps, spread) },
        metricPushesPerSecond: pushesPerSecond,
        metricBytesPerSecond: pushesPerSecond * pushBytes,
        cores: collectorCores,
      },
      prometheus: {
        samplesPerSecond,
        cores: promCpuPerSample === null ? null : samplesPerSecond * promCpuPerSample,
      },
    };
  });

  // The first bottleneck: the part whose load crosses its capacity at the lowest rate.
  // Capacities: one aggregator shard = the measured batches/s; one collector = 1 core here.
  const firstOver = (pick) => rows.find((r) => pick(r) >= 1)?.rps ?? null;
  const aggregatorAt = { dense: firstOver((r) => r.aggregator.loadFactor.dense), spread: firstOver((r) => r.aggregator.loadFactor.spread) };
  const collectorAt = firstOver((r) => r.collector.cores);
  const exact = {
    aggregatorSpreadRps: capacity * spreadRpsPerIsolate,
    aggregatorDenseRps: capacity * perIsolateMax,
    collectorOneCoreRps: collectorCpuMsPerReq > 0 ? 1000 / collectorCpuMsPerReq : null,
  };
  const candidates = [
    ['the aggregation point (one MetricsAggregator shard: batches/s from isolates)', exact.aggregatorSpreadRps],
    ['collector CPU (spans: one core)', exact.collectorOneCoreRps],
  ].filter(([, v]) => Number.isFinite(v));
  candidates.sort((a, b) => a[1] - b[1]);
  return {
    variant,
    assumptions: {
      spreadRpsPerIsolate,
      densePerIsolateRps: perIsolateMax,
      linear: true,
      collectorCapacity: '1 core per collector instance',
      aggregatorCapacity: `measured batches/s into one shard on this machine (${Math.round(capacity)})`,
    },
    measured: { spanBytesPerReq, spanBytesPerReqDelivered, spansPerReq, spansDeliveredPerReq: spansDelivered / e.requests, undroppedFactor: undropped, rpcBytesPerSend, pushBytes, pushesPerSecond, collectorCpuMsPerReq, samplesPerSecond, promCpuPerSample, capacity },
    rows,
    crossesAt: { aggregator: aggregatorAt, collector: collectorAt },
    limitRps: exact,
    firstBottleneck: candidates[0] ? { part: candidates[0][0], atRps: candidates[0][1] } : null,
  };
}

export const ISOLATE_COUNTS = [10, 1_000, 10_000];

/**
 * The aggregation tier on paper, per object, from the capacities the bench measured for each
 * object alone (`result.aggregatorCapacity`: a shard taking isolate batches directly, a leaf
 * taking isolate batches, an owner shard taking leaf forwards). The design's rules give the rest:
 *   - an isolate sends ≤ 1 batch/s (5/s in its first 10 s; ignored: short-lived);
 *   - without leaves, every isolate sends every shard a batch each second: shard rate = isolates;
 *   - with K leaves, isolates rotate over them: leaf rate = isolates / K; each leaf forwards to
 *     each shard at most once per `forwardIntervalMillis` (200 ms) and only when it received
 *     something: owner rate = K × min(5, isolates / K) per shard.
 * K is chosen as the fewest leaves (≥ 2) that keep each leaf under `leafHeadroom` of its capacity.
 *
 * @example
 * tierOnPaper(result)?.rows[2]; // { isolates: 10000, direct: {...}, leaves: 20, leaf: {...}, owner: {...}, firstWall: '...' }
 */
export function tierOnPaper(result, { leafHeadroom = 0.5, forwardsPerSecondPerLeaf = 5, rpsPerIsolate = 20 } = {}) {
  const c = result.aggregatorCapacity;
  const shardCap = c?.batchesPerSecond;
  const leafCap = c?.leaf?.batchesPerSecond;
  const ownerCap = c?.ownerForwards?.batchesPerSecond;
  if (!shardCap || !leafCap || !ownerCap) return null;
  // Most leaves one owner shard can take: each sends it ≤ 5 forwards/s.
  const maxLeavesPerOwner = Math.floor(ownerCap / forwardsPerSecondPerLeaf);
  const rows = ISOLATE_COUNTS.map((isolates) => {
    const leaves = Math.max(2, Math.ceil(isolates / (leafCap * leafHeadroom)));
    const leafRate = isolates / leaves;
    const ownerRate = leaves * Math.min(forwardsPerSecondPerLeaf, leafRate);
    const direct = { batchesPerSecond: isolates, load: isolates / shardCap };
    const leaf = { batchesPerSecond: leafRate, load: leafRate / leafCap };
    const owner = { forwardsPerSecond: ownerRate, load: ownerRate / ownerCap };
    // With this K: the leaves give out at K × leafCap isolates; the owner does not grow with isolates.
    const tierWall =
      leaves > maxLeavesPerOwner
        ? `the owner shard: ${leaves} leaves send it ${Math.round(ownerRate)} forwards/s (capacity ${Math.round(ownerCap)}): add shards or lengthen the forward interval`
        : `these ${leaves} leaves at ${Math.round(leaves * leafCap)} isolates (add leaves); then the owner shard at ${maxLeavesPerOwner} leaves ≈ ${Math.round(maxLeavesPerOwner * leafCap)} isolates`;
    return { isolates, rps: isolates * rpsPerIsolate, direct, directWall: `shard at ${Math.round(shardCap)} isolates`, leaves, leaf, owner, tierWall };
  });
  return {
    capacities: { shardBatchesPerSecond: shardCap, leafBatchesPerSecond: leafCap, ownerForwardsPerSecond: ownerCap, pointsPerBatch: c.pointsPerBatch, pointsPerForward: c.ownerForwards.pointsPerBatch },
    assumptions: { leafHeadroom, forwardsPerSecondPerLeaf, rpsPerIsolate, isolateBatchesPerSecond: 1 },
    rows,
    // The tier's own ceiling: the most leaves one owner takes, each near its capacity.
    tierCeilingIsolates: maxLeavesPerOwner * leafCap,
    maxLeavesPerOwner,
  };
}
