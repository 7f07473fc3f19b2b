#!/usr/bin/env node
/**
 * CPU µs per operation of the telemetry's building blocks on workerd (bench/variants/primitives.ts):
 * span creation with and without a context switch, a Durable Object call's span round trip, OTLP
 * encoding and two ways to gzip it, the request log line, a request's metric recordings straight
 * into the SDK or through the recording queue. Each operation runs N times per request; workerd's
 * CPU time (/proc) over --ms of such requests, divided by the operations run, is the figure; the
 * rounds interleave all operations and the table gives the median and min–max over rounds.
 *
 *   node bench/primitives.mjs [--rounds 5] [--ms 1500] [--ops withSpan,withSpan.leaf]
 *
 * Load only to 127.0.0.1, bounded by rounds × ops × ms. Warm loops: compare two ways of doing one
 * thing here; see a real request's split in bench/profile.mjs.
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildVariant } from './lib/build.mjs';
import { startOtlpSink } from './lib/otlp-sink.mjs';
import { pinPlan, pinProcess } from './lib/pin.mjs';
import { cpuSeconds } from './lib/stack.mjs';
import { startVariant } from './lib/workers.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const option = (name, def) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : def);
const rounds = Math.min(Number(option('--rounds', 5)) || 5, 20);
const ms = Math.min(Number(option('--ms', 1500)) || 1500, 10_000);
/** Operations per request: enough that the runtime's own per-request cost (~0.6 ms) is < 10 % of the figure. */
const N = { 'context.with': 5000, 'span.sdk': 2000, withSpan: 2000, 'withSpan.leaf': 2000, 'object.span': 500, 'otlp.encode': 2000, 'gzip.zlib1': 2000, 'gzip.stream': 2000, 'log.request': 2000, 'metrics.direct': 2000, 'metrics.queued': 2000, 'request.none': 1, 'request.log': 1, 'request.log.held': 1 };
// Per-span figures: encoding and gzip run over N ended spans made once.
const ops = option('--ops', Object.keys(N).join(',')).split(',');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const sink = await startOtlpSink();
const plan = pinPlan({ enabled: !argv.includes('--no-pin') });
const build = await buildVariant(ROOT, 'primitives');
const worker = await startVariant(ROOT, build, { bindings: { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url } });
try {
  await pinProcess(worker.pid, plan.worker);
  const results = Object.fromEntries(ops.map((op) => [op, []]));
  const call = async (op) => {
    const res = await fetch(`${worker.url}/?op=${encodeURIComponent(op)}&n=${N[op] ?? 1000}`);
    if (!res.ok) throw new Error(`${op}: ${res.status} ${await res.text()}`);
    await res.text();
  };
  for (const op of ops) await call(op); // warm-up (JIT)
  for (let r = 0; r < rounds; r++) {
    for (const op of r % 2 ? [...ops].reverse() : ops) {
      const cpu0 = await cpuSeconds(worker.pid);
      let requests = 0;
      const t0 = Date.now();
      while (Date.now() - t0 < ms) {
        await call(op);
        requests++;
      }
      results[op].push((((await cpuSeconds(worker.pid)) - cpu0) * 1e6) / (requests * (N[op] ?? 1000)));
    }
  }
  console.log(`| primitive | CPU µs per operation (median, min–max over ${rounds} rounds) |\n|---|---:|`);
  for (const op of ops) {
    const xs = results[op];
    console.log(`| ${op} | ${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}) |`);
  }
  console.log(`\n${plan.reason}; otlp.encode and gzip.* are per span; metrics.* are per request (6 recordings); request.* are whole requests (one each, the runtime's own cost included: compare them with each other)`);
} finally {
  await worker.dispose();
  await sink.close();
}
