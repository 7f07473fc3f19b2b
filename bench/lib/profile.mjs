/**
 * The cost profile of one running variant: workerd CPU per request measured without the profiler
 * (from /proc), then V8's sampling profiler over the same load, split by telemetry category
 * (./cost-categories.mjs). Category shares come from the profile; µs/req are those shares times
 * the UNPROFILED CPU per request (the profiler inflates everything; shares are what it measures
 * well). Load: wrk POST /api/v1/telemetry, bounded by its duration.
 *
 * @example
 * const w = await startVariant(ROOT, build, { inspectorPort: 9333, bindings });
 * const p = await profileRunning(w, { build, inspectorPort: 9333, seconds: 6 });
 * p.microsPerRequest['JSON log line'] // e.g. 21
 */
import { readFile } from 'node:fs/promises';
import { cpuSeconds } from './stack.mjs';
import { runWrk } from './wrk.mjs';
import { CATEGORIES, categorize } from './cost-categories.mjs';

/** A DevTools protocol session on the variant's inspector. */
async function inspector(port, match) {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`, { signal: AbortSignal.timeout(10_000) })).json();
  const target = targets.find((t) => String(t.title ?? t.url ?? '').includes(match)) ?? targets.at(-1);
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  let id = 0;
  const pending = new Map();
  ws.onmessage = (m) => {
    const msg = JSON.parse(String(m.data));
    if (msg.id && pending.has(msg.id)) pending.get(msg.id)(msg);
  };
  const call = (method, params = {}) =>
    new Promise((resolve) => {
      const i = ++id;
      pending.set(i, resolve);
      ws.send(JSON.stringify({ id: i, method, params }));
    });
  return { call, close: () => ws.close() };
}

/** workerd CPU µs per request and req/s over one wrk run of `seconds`. */
async function measure(worker, seconds, wrk) {
  const cpu0 = await cpuSeconds(worker.pid);
  const load = await runWrk(`${worker.url}/api/v1/telemetry`, { seconds, ...wrk });
  const cpu = (await cpuSeconds(worker.pid)) - cpu0;
  return { rps: load.rps, requests: load.requests, non2xx: load.non2xx, cpuMicrosPerRequest: load.requests ? (cpu * 1e6) / load.requests : NaN };
}

/**
 * Profiles a variant started with `inspectorPort` (bench/lib/workers.mjs). `seconds` per phase
 * (unprofiled, then profiled); `wrk` options go to runWrk (connections, cpus).
 */
export async function profileRunning(worker, { build, inspectorPort, seconds = 6, samplingMicros = 200, wrk = {} }) {
  await runWrk(`${worker.url}/api/v1/telemetry`, { seconds: 2, ...wrk }); // warm-up (JIT, caches)
  const plain = await measure(worker, seconds, wrk);
  const session = await inspector(inspectorPort, `bench-${build.name}`);
  let profile;
  let profiled;
  try {
    await session.call('Profiler.enable');
    await session.call('Profiler.setSamplingInterval', { interval: samplingMicros });
    await session.call('Profiler.start');
    profiled = await measure(worker, seconds, wrk);
    profile = (await session.call('Profiler.stop')).result.profile;
  } finally {
    session.close();
  }
  const bundle = (await readFile(build.script, 'utf8')).split('\n');
  const split = categorize(profile, bundle, build.name);
  const microsPerRequest = Object.fromEntries(CATEGORIES.map((c) => [c, split.shares[c] * plain.cpuMicrosPerRequest]));
  const telemetry = CATEGORIES.filter((c) => !['app and runtime (not telemetry)', 'GC', '(program)'].includes(c)).reduce((n, c) => n + microsPerRequest[c], 0);
  return {
    rps: plain.rps,
    requests: plain.requests,
    non2xx: plain.non2xx + profiled.non2xx,
    cpuMicrosPerRequest: plain.cpuMicrosPerRequest,
    profiledCpuMicrosPerRequest: profiled.cpuMicrosPerRequest,
    samples: split.samples,
    busySamples: split.busy,
    shares: split.shares,
    microsPerRequest,
    telemetryMicrosPerRequest: telemetry,
    topModules: split.topModules,
    topFunctions: split.topFunctions,
    byCategory: split.byCategory,
  };
}

const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '–');

/**
 * The profile table, one column per variant: µs/req per category, then the totals.
 *
 * @example
 * console.log(profileTable({ bare: p0, ours: p1 }));
 */
export function profileTable(profiles) {
  const names = Object.keys(profiles);
  const rows = [
    `| category (µs/req, workerd CPU) | ${names.join(' | ')} |`,
    `|---|${names.map(() => '---:').join('|')}|`,
    ...CATEGORIES.map((c) => `| ${c} | ${names.map((n) => f(profiles[n].microsPerRequest[c])).join(' | ')} |`),
    `| **telemetry (rows above GC, without app)** | ${names.map((n) => f(profiles[n].telemetryMicrosPerRequest)).join(' | ')} |`,
    `| **total CPU/req (unprofiled, /proc)** | ${names.map((n) => f(profiles[n].cpuMicrosPerRequest)).join(' | ')} |`,
    `| req/s while measured | ${names.map((n) => f(profiles[n].rps)).join(' | ')} |`,
    `| profile samples (busy) | ${names.map((n) => String(profiles[n].busySamples)).join(' | ')} |`,
  ];
  return rows.join('\n');
}
