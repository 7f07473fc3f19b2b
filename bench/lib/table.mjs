#!/usr/bin/env node
/**
 * The bench report as Markdown tables (printed at the end of a run; pasted into the README).
 * Regenerate them from a saved run:
 *
 *   node bench/lib/table.mjs                       from bench/results/latest.json
 *   node bench/lib/table.mjs bench/results/quick.json
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { profileTable } from './profile.mjs';

const f = (x, d = 0) => (x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));
const si = (x) => {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  if (x >= 1e9) return `${(x / 1e9).toFixed(1)} G`;
  if (x >= 1e6) return `${(x / 1e6).toFixed(1)} M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)} k`;
  return x.toFixed(x < 10 ? 2 : 0);
};
/** `ratio (min–max)`, the range being the run's round-by-round noise. */
const ranged = (x, lo, hi, d = 2) => (!Number.isFinite(x) ? '–' : Number.isFinite(lo) && Number.isFinite(hi) ? `${f(x, d)} (${f(lo, d)}–${f(hi, d)})` : f(x, d));
const table = (head, rows) => [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');

export function formatReport(r) {
  const out = [];
  const m = r.machine;
  out.push(`Machine: ${m.cpus} × ${m.cpuModel}, ${m.memTotalGiB} GiB RAM; load average ${m.loadavgAtStart?.join(' ')} at start, ${m.loadavgAtEnd?.join(' ') ?? '–'} at end; Node ${m.node}; ${m.wrk ?? 'no wrk'}; pinning: ${m.pinning?.reason ?? 'none'}; commit ${m.commit} (+${m.dirtyFiles} uncommitted files)${r.quick ? ' — QUICK MODE, figures are not meaningful' : ''}`);
  if (r.fairness) out.push('', `Fair bare: ${r.fairness.identical ? `bare and ours answered identical responses (status, ${r.fairness.headers.length} headers, ${r.fairness.bodyBytes} B body; masked: ${r.fairness.masked.join(', ')})` : `DIFFERENT (${r.fairness.differences.join('; ')})`}.`);
  if (r.profile) {
    out.push('', `### 0. Cost profile — workerd CPU µs per request by category (${r.profile.seconds} s unprofiled + ${r.profile.seconds} s under V8's sampling profiler; µs = share of busy samples × unprofiled CPU/req)`);
    out.push(profileTable(r.profile.variants));
  }

  if (r.overhead) {
    const o = r.overhead;
    out.push('', `### 1. Overhead — POST /api/v1/telemetry, ${o.generator}, ${o.connections} connections, median of ${o.rounds} interleaved ${o.roundSeconds} s rounds`);
    out.push(
      table(
        ['variant', 'req/s (min–max)', 'req/s vs bare (paired per round: min–max)', 'workerd CPU µs/req (min–max)', 'CPU: bare/variant (min–max)', 'p50 ms', 'p99 ms', 'non-2xx', 'spans dropped/req'],
        Object.entries(o.variants).map(([name, v]) => [
          name + (name === 'otel-cf-workers' ? ' (traces only)' : ''),
          `${f(v.rps)} (${f(v.rpsMin)}–${f(v.rpsMax)})`,
          ranged(v.ratioToBare, v.ratioMin, v.ratioMax),
          Number.isFinite(v.cpuMin) ? `${f(v.cpuMicrosPerRequest)} (${f(v.cpuMin)}–${f(v.cpuMax)})` : f(v.cpuMicrosPerRequest),
          ranged(v.cpuRatioToBare, v.cpuRatioMin, v.cpuRatioMax),
          f(v.p50, 2),
          f(v.p99, 2),
          String(v.non2xx),
          v.spansDroppedPerRequest === undefined ? 'n/a' : f(v.spansDroppedPerRequest, 2),
        ]),
      ),
    );
  }
  if (r.economy) {
    const e = r.economy;
    out.push('', `### 2. Export economy — constant ${e.rate} req/s for ${e.seconds} s (a variant that could not sustain ${e.rate} req/s in part 1: 70 % of its own capacity, see "req/s")`);
    out.push(
      table(
        ['variant', 'req/s offered (achieved)', 'requests', 'workerd CPU µs/req at this rate (saturated: part 1)', 'exports/s', 'exports/req (all)', 'isolate→aggregator RPC/req', 'OTLP metric pushes/req', 'span exports/req', 'metric bytes/req (OTLP + RPC)', 'trace bytes/req on the wire (that body gzipped)', 'spans/req', 'spans dropped in the isolate', 'collector CPU ms/req (over idle)'],
        Object.entries(e.variants).map(([name, v]) => [
          name + (name === 'otel-cf-workers' ? ' (traces only)' : ''),
          `${v.rate ?? e.rate} (${f(v.client.achievedRate)})`,
          String(v.requests),
          `${f(v.workerdCpuMicrosPerRequest)} (${f(r.overhead?.variants?.[name]?.cpuMicrosPerRequest)})`,
          f(v.exportsPerSecond, 2),
          f(v.exportsPerRequest, 4),
          f(v.isolateToAggregator.perRequest, 4),
          f(v.metricsPushes.perRequest, 4),
          f(v.spanExports.perRequest, 4),
          `${f(v.metricsPushes.bytesPerRequest, 0)} + ${f(v.isolateToAggregator.jsonBytesPerRequest, 0)}`,
          `${f(v.spanExports.bytesPerRequest, 0)} (${f(v.spanExports.gzipBytesPerRequest, 0)})`,
          f(v.collector.spansPerRequest, 1),
          v.flusher ? String(v.flusher.spansDropped) : 'n/a',
          f(v.collector.cpuMillisPerRequest, 3),
        ]),
      ),
    );
  }
  if (r.freshness) {
    const x = r.freshness;
    out.push('', `### 3. Freshness — response → count visible in Prometheus (ours, probes are GET /health under ${x.loadRate ?? x.backgroundLoad?.rate ?? '?'} req/s of ingest load)`);
    out.push(table(['probes', 'p50 ms', 'p95 ms', 'max ms', 'not seen in 15 s'], [[String(x.probes), f(x.p50Millis), f(x.p95Millis), f(x.maxMillis), String(x.misses)]]));
  }
  if (r.collectorDown) {
    const d = r.collectorDown;
    out.push('', `### 4. Collector down — ${d.reps} × ${d.seconds} s per state`);
    out.push(
      table(
        ['variant', 'p99 up ms', 'p99 down ms', 'p50 up ms', 'p50 down ms', 'req/s up', 'req/s down', 'CPU µs/req up', 'CPU µs/req down', 'non-2xx down'],
        Object.entries(d.variants).map(([name, v]) => [name, f(v.up.p99, 2), f(v.down.p99, 2), f(v.up.p50, 2), f(v.down.p50, 2), f(v.up.rps), f(v.down.rps), f(v.up.cpuMicrosPerRequest), f(v.down.cpuMicrosPerRequest), String(v.down.non2xx)]),
      ),
    );
  }
  for (const s of [r.scale, r.scaleSampled]) {
    if (!s) continue;
    out.push('', `### 5${s === r.scale ? '' : 'b'}. Scale on paper (${s.variant ?? 'ours'}) — from the figures above; isolates: dense = ${f(s.assumptions.densePerIsolateRps)} req/s each (measured saturation), spread = ${s.assumptions.spreadRpsPerIsolate} req/s each (assumed)`);
    out.push(
      table(
        ['req/s', 'isolates dense / spread', 'batches/s into one aggregator shard (capacity ' + f(s.measured.capacity) + ')', 'spans/s into collector (all recorded)', 'span bytes/s', 'collector cores (measured CPU/req)', 'metric pushes/s and bytes/s', 'Prometheus samples/s'],
        s.rows.map((row) => [
          si(row.rps),
          `${si(row.isolates.dense)} / ${si(row.isolates.spread)}`,
          `${si(row.aggregator.batchesPerSecondPerShard.dense)} / ${si(row.aggregator.batchesPerSecondPerShard.spread)} (×${f(row.aggregator.loadFactor.dense, 2)} / ×${f(row.aggregator.loadFactor.spread, 2)})`,
          si(row.collector.spansPerSecond),
          `${si(row.collector.spanBytesPerSecond)}B/s`,
          f(row.collector.cores, 2),
          `${f(row.collector.metricPushesPerSecond, 2)} / ${si(row.collector.metricBytesPerSecond)}B/s`,
          si(row.prometheus.samplesPerSecond),
        ]),
      ),
    );
    if (s.measured.undroppedFactor > 1.001) out.push('', `Spans: ${f(s.measured.spansPerReq, 1)} recorded per request, of which ${f(s.measured.spansDeliveredPerReq, 1)} arrived in the measurement (the rest were dropped by the isolate's span buffer); the rows count all of them.`);
    if (s.firstBottleneck) out.push('', `First bottleneck: ${s.firstBottleneck.part}, at about ${si(s.firstBottleneck.atRps)} req/s (aggregator limit ${si(s.limitRps.aggregatorSpreadRps)} req/s spread / ${si(s.limitRps.aggregatorDenseRps)} dense; one collector core ${si(s.limitRps.collectorOneCoreRps)} req/s).`);
  }
  if (r.tier) {
    const t = r.tier;
    const c = t.capacities;
    out.push('', `### 5c. Aggregation objects, each measured alone: shard ${f(c.shardBatchesPerSecond)} isolate batches/s, leaf ${f(c.leafBatchesPerSecond)} isolate batches/s (${c.pointsPerBatch} points), owner ${f(c.ownerForwardsPerSecond)} forwards/s (${c.pointsPerForward} points)`);
    out.push(
      table(
        ['isolates (req/s at ' + t.assumptions.rpsPerIsolate + ' each)', 'no leaves: batches/s into each shard', 'first wall', 'leaves K', 'batches/s per leaf', 'forwards/s per owner shard', 'first wall (tier)'],
        t.rows.map((row) => [
          `${si(row.isolates)} (${si(row.rps)})`,
          `${si(row.direct.batchesPerSecond)} (×${f(row.direct.load, 2)})`,
          row.directWall,
          String(row.leaves),
          `${f(row.leaf.batchesPerSecond)} (×${f(row.leaf.load, 2)})`,
          `${f(row.owner.forwardsPerSecond)} (×${f(row.owner.load, 2)})`,
          row.tierWall,
        ]),
      ),
    );
    out.push('', `The tier's ceiling with one owner shard: ${t.maxLeavesPerOwner} leaves × ${f(c.leafBatchesPerSecond)} batches/s ≈ ${si(t.tierCeilingIsolates)} isolates.`);
  }
  return out.join('\n');
}

// CLI: print the report of a saved run (default bench/results/latest.json).
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const file = resolve(process.argv[2] ?? fileURLToPath(new URL('../results/latest.json', import.meta.url)));
  process.stdout.write(formatReport(JSON.parse(await readFile(file, 'utf8'))) + '\n');
}
