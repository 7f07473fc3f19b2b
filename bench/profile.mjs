#!/usr/bin/env node
/**
 * Where the variants' CPU goes, by telemetry cost category (bench/lib/cost-categories.mjs): each
 * variant runs on workerd with the DevTools inspector on, exports to a stand-in OTLP receiver
 * (bench/lib/otlp-sink.mjs; no collector CPU on the machine), and is loaded with wrk
 * (POST /api/v1/telemetry), first without the profiler (CPU µs/req from /proc), then with it.
 * Prints µs/req per category side by side; `npm run bench` prints the same table (part 0).
 *
 *   node bench/profile.mjs                          bare, ours, ours-sampled-0.1, 6 s per phase
 *   node bench/profile.mjs --variants ours --seconds 8 [KEY=VALUE bindings...]
 *   node bench/profile.mjs --json out.json          also writes the profiles as JSON
 *   node bench/profile.mjs --top                    also prints self time by module and function
 *
 * Load only to 127.0.0.1; every load is bounded by its duration.
 */
import { writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildVariant } from './lib/build.mjs';
import { startOtlpSink } from './lib/otlp-sink.mjs';
import { pinPlan, pinProcess } from './lib/pin.mjs';
import { profileRunning, profileTable } from './lib/profile.mjs';
import { startVariant } from './lib/workers.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const option = (name) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const seconds = Math.min(Number(option('--seconds') ?? 6), 60);
const jsonOut = option('--json');
const pairs = argv.filter((a, i) => /^[A-Z_][A-Z0-9_]*=/.test(a) && !argv[i - 1]?.startsWith('--'));
const extra = Object.fromEntries(pairs.map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
/** Configurations: name → build and bindings (as bench/run.mjs names them). */
const CONFIGS = {
  bare: { build: 'bare', bindings: { OTEL_TRACES_SAMPLER_ARG: '0' } },
  ours: { build: 'ours', bindings: {} },
  'ours-sampled-0.1': { build: 'ours', bindings: { OTEL_TRACES_SAMPLER_ARG: '0.1' } },
};
const names = (option('--variants') ?? 'bare,ours,ours-sampled-0.1').split(',').filter((n) => CONFIGS[n]);
const plan = pinPlan({ enabled: !argv.includes('--no-pin') });

const sink = await startOtlpSink();
const builds = {};
const profiles = {};
try {
  for (const name of names) {
    const { build: b, bindings } = CONFIGS[name];
    builds[b] ??= await buildVariant(ROOT, b);
    const inspectorPort = 9300 + Math.floor(Math.random() * 500);
    const worker = await startVariant(ROOT, builds[b], { inspectorPort, name, bindings: { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, ...bindings, ...extra } });
    try {
      await pinProcess(worker.pid, plan.worker);
      profiles[name] = await profileRunning(worker, { build: builds[b], inspectorPort, seconds, wrk: { cpus: plan.client } });
      process.stderr.write(`${name}: ${profiles[name].rps.toFixed(0)} req/s, ${profiles[name].cpuMicrosPerRequest.toFixed(0)} µs/req\n`);
    } finally {
      await worker.dispose();
    }
  }
  console.log(`pinning: ${plan.reason}; ${seconds} s per phase; exports to a stand-in OTLP receiver (${JSON.stringify(sink.counts)})\n`);
  console.log(profileTable(profiles));
  if (argv.includes('--top'))
    for (const [name, p] of Object.entries(profiles)) {
      console.log(`\n${name}: self time by module`);
      for (const m of p.topModules) console.log(`  ${(m.share * 100).toFixed(1).padStart(5)} %  ${m.name}`);
      console.log(`${name}: self time by function`);
      for (const m of p.topFunctions) console.log(`  ${(m.share * 100).toFixed(1).padStart(5)} %  ${m.name}`);
      console.log(`${name}: heaviest functions per category`);
      for (const [cat, fns] of Object.entries(p.byCategory)) console.log(`  ${cat}: ${fns.map((x) => `${x.name.replace(/work\/wt-\d+\/|node_modules\//g, '')} ${(x.share * 100).toFixed(1)} %`).join('; ')}`);
    }
  if (jsonOut) await writeFile(jsonOut, JSON.stringify({ seconds, pinning: plan, sink: sink.counts, profiles }, null, 1) + '\n');
} finally {
  for (const b of Object.values(builds)) await b.dispose();
  await sink.close();
}
