/**
 * Ingest capacity per object layout: the real Worker (bench variant "ours", export off) on local
 * workerd, driven with POST /api/v1/telemetry spread over N satellites, 127.0.0.1 only, bounded in
 * requests and time. For each N it prints throughput and latency, and each object's share of the
 * calls, read back from the objects themselves (`calls_since_start` in /api/v1/memory/stats).
 *
 *   node bench/satellites.mjs [--satellites 1,10,100] [--requests 1500] [--concurrency 16]
 *
 * Writes bench/results/satellites.json. The README's capacity table uses these figures with
 * Cloudflare's documented per-object limit (about 1,000 requests/s).
 */
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildVariant } from './lib/build.mjs';
import { startVariant } from './lib/workers.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: { satellites: { type: 'string', default: '1,10,100' }, requests: { type: 'string', default: '1500' }, concurrency: { type: 'string', default: '16' }, 'max-seconds': { type: 'string', default: '120' } },
});
const counts = values.satellites.split(',').map(Number);
const requests = Number(values.requests);
const concurrency = Number(values.concurrency);
const deadline = Date.now() + Number(values['max-seconds']) * 1000;

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

async function run(url, satellites, prefix) {
  let next = 0;
  const latencies = [];
  let failed = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < requests && Date.now() < deadline) {
      const i = next++;
      // Each satellite's own sequence moves in every field (nominal: no stuck sensor, no anomaly).
      const j = Math.floor(i / satellites);
      const body = JSON.stringify({ voltage: 27 + (j % 7) * 0.1, temperature: 20 + (j % 11) * 0.1, gyro: 0.01 * (j % 13), current: 1 + (j % 5) * 0.01, wheel_speed: 3000 + (j % 17), satellite_id: `${prefix}-${i % satellites}` });
      const t0 = performance.now();
      const res = await fetch(`${url}/api/v1/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
      latencies.push(performance.now() - t0);
      if (!res || res.status !== 200) failed++;
      else await res.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const stats = async (q) => (await (await fetch(`${url}/api/v1/memory/stats${q}`)).json()).recurrence_memory;
  const mission = await stats('');
  const sample = [...new Set([0, Math.floor(satellites / 2), satellites - 1])];
  const objects = await Promise.all(sample.map((k) => stats(`?satellite_id=${prefix}-${k}`)));
  const sent = latencies.length;
  return {
    satellites,
    requests: sent,
    failed,
    req_per_s: Math.round(sent / seconds),
    p50_ms: Number(quantile(latencies, 0.5).toFixed(1)),
    p99_ms: Number(quantile(latencies, 0.99).toFixed(1)),
    mission_calls: mission.calls_since_start,
    satellite_calls: Object.fromEntries(objects.map((o, i) => [`${prefix}-${sample[i]}`, o.calls_since_start])),
  };
}

const build = await buildVariant(root, 'ours');
const results = [];
for (const n of counts) {
  // A fresh workerd per N: one isolate, objects starting from zero calls.
  const variant = await startVariant(root, build, { bindings: { OTEL_EXPORTER_OTLP_ENDPOINT: '' } });
  try {
    const r = await run(variant.url, n, `cap${n}`);
    const missionTotal = Object.values(r.mission_calls).reduce((a, b) => a + b, 0);
    r.mission_calls_per_request = Number((missionTotal / r.requests).toFixed(4));
    const records = Object.values(r.satellite_calls).map((c) => c.record ?? 0);
    r.record_calls_per_satellite = records;
    results.push(r);
    console.log(`${n} satellite(s): ${r.req_per_s} req/s (p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms, ${r.failed} failed); mission ${missionTotal} calls (${r.mission_calls_per_request}/request: ${JSON.stringify(r.mission_calls)}); record calls of sampled satellites ${records.join(', ')}`);
  } finally {
    await variant.dispose();
  }
}
await writeFile(join(root, 'bench/results/satellites.json'), JSON.stringify({ at: new Date().toISOString(), requests, concurrency, results }, null, 2) + '\n');
