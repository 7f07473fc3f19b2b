#!/usr/bin/env node
/**
 * Where a variant's CPU goes: runs it on workerd with the DevTools inspector on, loads it with wrk
 * (POST /api/v1/telemetry) while V8's sampling profiler records, and prints self time by source
 * module (from the `// path` markers wrangler's esbuild writes into the bundle) and by function.
 *
 *   node bench/profile.mjs [variant=ours] [seconds=8] [KEY=VALUE bindings...]
 *   PROFILE_JSON=out.json node bench/profile.mjs ...   also writes µs/req by module as JSON
 *
 * The collector is not started: exports go to a closed port (they fail fast and are retained or
 * dropped as designed), so this shows the isolate-side cost only. Load only to 127.0.0.1.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildVariant } from './lib/build.mjs';
import { startVariant } from './lib/workers.mjs';
import { cpuSeconds } from './lib/stack.mjs';
import { runWrk } from './lib/wrk.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const [variant = 'ours', secondsArg = '8', ...pairs] = process.argv.slice(2);
const seconds = Math.min(Number(secondsArg), 60);
const bindings = Object.fromEntries(pairs.map((p) => p.split('=', 2)));
const inspectorPort = 9300 + Math.floor(Math.random() * 500);

const build = await buildVariant(ROOT, variant);
const worker = await startVariant(ROOT, build, { inspectorPort, bindings: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', ...bindings } });
try {
  await runWrk(`${worker.url}/api/v1/telemetry`, { seconds: 2 }); // warm up
  const targets = await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)).json();
  const target = targets.find((t) => String(t.title ?? t.url ?? '').includes(`bench-${variant}`)) ?? targets.at(-1);
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((r, j) => ((ws.onopen = r), (ws.onerror = j)));
  let id = 0;
  const pending = new Map();
  ws.onmessage = (m) => {
    const msg = JSON.parse(String(m.data));
    if (msg.id && pending.has(msg.id)) pending.get(msg.id)(msg);
  };
  const call = (method, params = {}) => new Promise((r) => { const i = ++id; pending.set(i, r); ws.send(JSON.stringify({ id: i, method, params })); });
  await call('Profiler.enable');
  await call('Profiler.setSamplingInterval', { interval: 200 });
  await call('Profiler.start');
  const cpu0 = await cpuSeconds(worker.pid);
  const load = await runWrk(`${worker.url}/api/v1/telemetry`, { seconds });
  const cpuMicrosPerRequest = (((await cpuSeconds(worker.pid)) - cpu0) * 1e6) / load.requests;
  const { result } = await call('Profiler.stop');
  ws.close();
  const profile = result.profile;
  const bundle = (await readFile(build.script, 'utf8')).split('\n');
  const markers = [];
  bundle.forEach((line, i) => { const m = /^\/\/ ((?:\.\.\/)*[\w@./-]+\.(?:ts|js|mjs|cjs))$/.exec(line); if (m) markers.push([i, m[1].replace(/^(\.\.\/)+/, '')]); });
  const moduleAt = (line) => { let lo = 0, hi = markers.length - 1, best = '(runtime)'; while (lo <= hi) { const mid = (lo + hi) >> 1; if (markers[mid][0] <= line) { best = markers[mid][1]; lo = mid + 1; } else hi = mid - 1; } return best; };
  const dt = profile.timeDeltas.reduce((a, b) => a + b, 0) / Math.max(1, profile.samples.length);
  const hits = new Map(profile.samples.reduce((m, s) => m.set(s, (m.get(s) ?? 0) + 1), new Map()));
  const byModule = new Map(), byFn = new Map();
  let total = 0;
  for (const node of profile.nodes) {
    const n = hits.get(node.id) ?? 0;
    if (!n) continue;
    total += n;
    const cf = node.callFrame;
    const mod = cf.url && cf.url.includes(variant) ? moduleAt(cf.lineNumber) : cf.functionName === '(idle)' ? '(idle)' : cf.functionName === '(program)' || cf.functionName === '(garbage collector)' ? cf.functionName : '(native/runtime)';
    byModule.set(mod, (byModule.get(mod) ?? 0) + n);
    const fn = `${cf.functionName || '(anonymous)'} ${mod}`;
    byFn.set(fn, (byFn.get(fn) ?? 0) + n);
  }
  const busy = total - (byModule.get('(idle)') ?? 0);
  const top = (m, k) => [...m].filter(([name]) => name !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, k);
  console.log(`${variant}: ${load.rps.toFixed(0)} req/s, ${load.requests} requests; ${profile.samples.length} samples (~${dt.toFixed(0)} µs), busy ${((busy / total) * 100).toFixed(0)} %`);
  console.log(`workerd CPU ${cpuMicrosPerRequest.toFixed(0)} µs per request (/proc; µs/req below = share of busy samples × this)`);
  console.log('\nself time by module (share of busy samples):');
  for (const [m, n] of top(byModule, 30)) console.log(`  ${((n / busy) * 100).toFixed(1).padStart(5)} %  ${((n / busy) * cpuMicrosPerRequest).toFixed(0).padStart(5)} µs/req  ${m}`);
  if (process.env.PROFILE_JSON) {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(process.env.PROFILE_JSON, JSON.stringify({ variant, cpuMicrosPerRequest, modules: Object.fromEntries([...byModule].map(([m, n]) => [m, (n / busy) * cpuMicrosPerRequest])) }, null, 1));
  }
  console.log('\nself time by function:');
  for (const [f, n] of top(byFn, 25)) console.log(`  ${((n / busy) * 100).toFixed(1).padStart(5)} %  ${f}`);
} finally {
  await worker.dispose();
  await build.dispose();
}
