#!/usr/bin/env node
/**
 * Paired, interleaved A/B of two configurations by workerd CPU per request (from /proc), for
 * deciding a change on a shared machine where throughput is noise: both run at once (each its
 * own workerd, pinned to the same core; wrk on the other), rounds alternate A, B, B, A, … and the
 * answer is the per-round B/A ratio's median and min–max.
 *
 *   node bench/ab.mjs --a ours --b ours LOG_LEVEL=warn [--rounds 8] [--seconds 3]
 *   node bench/ab.mjs --a bare --b ours
 *
 * A side is a variant name (bench/variants/*.ts) followed by KEY=VALUE bindings. Exports go to a
 * stand-in OTLP receiver (bench/lib/otlp-sink.mjs). Load only to 127.0.0.1, bounded by --rounds
 * × --seconds.
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildVariant } from './lib/build.mjs';
import { startOtlpSink } from './lib/otlp-sink.mjs';
import { pinPlan, pinProcess } from './lib/pin.mjs';
import { cpuSeconds } from './lib/stack.mjs';
import { startVariant } from './lib/workers.mjs';
import { runWrk } from './lib/wrk.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const num = (name, def, max) => Math.min(Number(argv[argv.indexOf(name) + 1] ?? def) || def, max);
const rounds = argv.includes('--rounds') ? num('--rounds', 8, 40) : 8;
const seconds = argv.includes('--seconds') ? num('--seconds', 3, 30) : 3;
/** `--a variant K=V ...` → { variant, bindings }. */
function side(flag) {
  const i = argv.indexOf(flag);
  if (i < 0) throw new Error(`usage: node bench/ab.mjs --a <variant> [K=V...] --b <variant> [K=V...]`);
  const variant = argv[i + 1];
  const bindings = {};
  for (let j = i + 2; j < argv.length && !argv[j].startsWith('--'); j++) {
    const k = argv[j].indexOf('=');
    if (k > 0) bindings[argv[j].slice(0, k)] = argv[j].slice(k + 1);
  }
  return { variant, bindings, label: [variant, ...Object.entries(bindings).map(([k, v]) => `${k}=${v}`)].join(' ') };
}
const sides = [side('--a'), side('--b')];
const plan = pinPlan({ enabled: !argv.includes('--no-pin') });
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const sink = await startOtlpSink();
const builds = {};
const workers = [];
try {
  for (const s of sides) {
    builds[s.variant] ??= await buildVariant(ROOT, s.variant);
    const w = await startVariant(ROOT, builds[s.variant], { name: s.label, bindings: { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, ...(s.variant !== 'ours' && { OTEL_TRACES_SAMPLER_ARG: '0' }), ...s.bindings } });
    await pinProcess(w.pid, plan.worker);
    workers.push(w);
    await runWrk(`${w.url}/api/v1/telemetry`, { seconds: 2, cpus: plan.client }); // warm-up
  }
  const cpu = [[], []];
  for (let r = 0; r < rounds; r++) {
    for (const i of r % 2 ? [1, 0] : [0, 1]) {
      const c0 = await cpuSeconds(workers[i].pid);
      const load = await runWrk(`${workers[i].url}/api/v1/telemetry`, { seconds, cpus: plan.client });
      cpu[i].push((((await cpuSeconds(workers[i].pid)) - c0) * 1e6) / load.requests);
    }
    process.stderr.write(`round ${r + 1}/${rounds}: A ${cpu[0].at(-1).toFixed(0)} µs/req, B ${cpu[1].at(-1).toFixed(0)} µs/req\n`);
  }
  const ratios = cpu[1].map((b, i) => b / cpu[0][i]);
  console.log(`A = ${sides[0].label}: ${median(cpu[0]).toFixed(0)} µs/req (${Math.min(...cpu[0]).toFixed(0)}–${Math.max(...cpu[0]).toFixed(0)})`);
  console.log(`B = ${sides[1].label}: ${median(cpu[1]).toFixed(0)} µs/req (${Math.min(...cpu[1]).toFixed(0)}–${Math.max(...cpu[1]).toFixed(0)})`);
  console.log(`B/A CPU per request, paired per round: median ${median(ratios).toFixed(3)} (${Math.min(...ratios).toFixed(3)}–${Math.max(...ratios).toFixed(3)}), ${rounds} rounds × ${seconds} s; B − A ≈ ${(median(cpu[1]) - median(cpu[0])).toFixed(0)} µs/req; ${plan.reason}`);
} finally {
  for (const w of workers) await w.dispose();
  for (const b of Object.values(builds)) await b.dispose();
  await sink.close();
}
