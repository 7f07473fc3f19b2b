#!/usr/bin/env node
/**
 * `npm run bench`: what our edge telemetry costs, side by side with the alternatives, measured in
 * one run on this machine (issue 9). Prints progress and a table; writes JSON.
 *
 *   npm run bench                       full run (~10 min), writes bench/results/latest.json
 *   npm run bench -- --quick            a few seconds per part (CI), writes bench/results/quick.json
 *   npm run bench -- --out FILE         write the JSON elsewhere
 *   npm run bench -- --variants a,b     only these variants (bare is always kept: it is the baseline)
 *   npm run bench -- --no-extra         without the extra configuration ours-sampled-0.1
 *   npm run bench -- --no-pin           do not pin workerd and the load generator to separate cores
 *   npm run bench -- --no-profile       skip part 0 (the cost profile by category)
 *
 * Variants (bench/variants/*.ts, each built with `wrangler deploy --dry-run` and run directly on
 * workerd through Miniflare, one workerd process each, no wrangler dev proxy):
 *   bare             the same routes, telemetry middleware off
 *   ours             functions/index.ts as deployed
 *   hono-otel        @hono/otel + OpenTelemetry JS SDK, forceFlush per request in waitUntil
 *   otel-cf-workers  @microlabs/otel-cf-workers, TRACES ONLY
 *
 * Every variant exports through its own counting proxy in front of ONE real collector
 * (otelcol-astraguard with otel-collector.yaml + bearer auth) → real Prometheus (remote write)
 * and real Jaeger, started on free ports by tools/stack/ (as `npm start` starts them).
 *
 * Setup: wrk is installed from Debian when missing (bench/lib/wrk.mjs); each variant's workerd is
 * pinned to cpu 0 and every load generator (wrk, bench/rate-client.mjs) to the other core(s) with
 * taskset (bench/lib/pin.mjs), so the client never takes the measured core. Bare and ours must
 * answer byte-identical responses, headers included (checked first; the run fails otherwise).
 *
 * Parts: (0) cost profile: bare, ours, ours-sampled-0.1 under wrk, CPU per request split by
 * telemetry category (bench/lib/profile.mjs); (1) overhead: wrk (separate process), POST
 * /api/v1/telemetry, warmed up, rounds interleaved in rotating order, ratios paired per round
 * (min–max printed next to each); (2) export economy at a constant 500 req/s (bench/rate-client.mjs,
 * separate process); (3) freshness: response → count visible in Prometheus; (4) collector down vs
 * up; (5) aggregation-point capacity and scale on paper (bench/lib/scale.mjs).
 *
 * Bounds: every load has a duration and a kill timer; the whole run has a deadline; load goes to
 * 127.0.0.1 only; only processes this run started are stopped.
 */
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { buildVariant } from './lib/build.mjs';
import { measureAggregation } from './lib/capacity.mjs';
import { countDelta, startCountingProxy } from './lib/proxy.mjs';
import { scaleOnPaper, tierOnPaper } from './lib/scale.mjs';
import { cpuSeconds, loadStackHelpers } from './lib/stack.mjs';
import { sleep } from '../tools/stack/index.ts';
import { formatReport } from './lib/table.mjs';
import { ensureWrk, POST_BODY, runWrk } from './lib/wrk.mjs';
import { startVariant } from './lib/workers.mjs';
import { pinnedCommand, pinPlan, pinProcess } from './lib/pin.mjs';
import { profileRunning } from './lib/profile.mjs';

const execFileAsync = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ALL_VARIANTS = ['bare', 'ours', 'hono-otel', 'otel-cf-workers'];
/**
 * Extra configurations of a built variant (same bundle, other bindings), measured alongside:
 * ours with 10 % head sampling shows what the span volume costs (the biggest cost found).
 */
const EXTRA = [{ name: 'ours-sampled-0.1', build: 'ours', bindings: { OTEL_TRACES_SAMPLER_ARG: '0.1' } }];
const TELEMETRY_VARIANTS = ['ours', 'hono-otel', 'otel-cf-workers', ...EXTRA.map((x) => x.name)];

// ------------------------------------------------------------------------------------------
// Options
// ------------------------------------------------------------------------------------------
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const option = (name) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const QUICK = flag('--quick');
const OUT = resolve(option('--out') ?? join(ROOT, 'bench/results', QUICK ? 'quick.json' : 'latest.json'));
const wanted = option('--variants')?.split(',').map((s) => s.trim()).filter(Boolean);
const VARIANTS = ALL_VARIANTS.filter((v) => !wanted || v === 'bare' || wanted.includes(v));
const PIN = pinPlan({ enabled: !flag('--no-pin') });
const PROFILE = !flag('--no-profile');
const EXTRAS = flag('--no-extra') ? [] : EXTRA.filter((x) => VARIANTS.includes(x.build) && (!wanted || wanted.includes(x.name) || wanted.includes(x.build)));
/** `--leaves N`: ours (and its extras) send through N MetricsLeaf objects (METRICS_AGGREGATOR_LEAVES); default: wrangler.toml's. */
const LEAF_BINDINGS = option('--leaves') ? { METRICS_AGGREGATOR_LEAVES: option('--leaves') } : {};

/** Durations and counts per part; quick mode keeps every part but only seconds of each. */
const P = QUICK
  ? { warmupSeconds: 1, rounds: 2, roundSeconds: 2, connections: 16, rate: 500, rateSeconds: 3, tailMillis: 3500, idleMillis: 2000, probes: 4, freshnessLoad: 100, downReps: 1, downSeconds: 2, capacityMillis: 1500, profileSeconds: 2, deadlineMinutes: 12 }
  : { warmupSeconds: 5, rounds: 5, roundSeconds: 6, connections: 16, rate: 500, rateSeconds: 30, tailMillis: 4000, idleMillis: 6000, probes: 30, freshnessLoad: 200, downReps: 2, downSeconds: 8, capacityMillis: 5000, profileSeconds: 6, deadlineMinutes: 35 };
const DEADLINE = Date.now() + P.deadlineMinutes * 60_000;

const t0 = Date.now();
const say = (msg) => process.stdout.write(`[bench ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${msg}\n`);
const checkDeadline = (part) => {
  if (Date.now() > DEADLINE) throw new Error(`bench deadline (${P.deadlineMinutes} min) passed before ${part}`);
};
const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!s.length) return null;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const quantile = (xs, q) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] : null;
};

// ------------------------------------------------------------------------------------------
// Machine
// ------------------------------------------------------------------------------------------
async function machine() {
  const git = async (...a) => (await execFileAsync('git', a, { cwd: ROOT }).catch(() => ({ stdout: '' }))).stdout.trim();
  const wrkVersion = await execFileAsync('wrk', ['--version']).then((r) => r.stdout, (e) => String(e.stdout ?? '')).catch(() => '');
  return {
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cpus: cpus().length,
    memTotalGiB: +(totalmem() / 2 ** 30).toFixed(1),
    memFreeGiB: +(freemem() / 2 ** 30).toFixed(1),
    loadavgAtStart: loadavg().map((x) => +x.toFixed(2)),
    node: process.version,
    wrk: wrkVersion.split('\n')[0]?.trim() || null,
    commit: await git('rev-parse', '--short', 'HEAD'),
    dirtyFiles: (await git('status', '--porcelain')).split('\n').filter(Boolean).length,
  };
}

// ------------------------------------------------------------------------------------------
// Load helpers
// ------------------------------------------------------------------------------------------
const CLIENT = join(ROOT, 'bench/rate-client.mjs');

/**
 * Runs bench/rate-client.mjs in its own Node process and resolves its JSON. The returned promise
 * has `stop()`: SIGTERM, on which the client stops sending and prints what it did.
 */
function rateClient(url, mode, seconds, extra) {
  let child;
  const promise = new Promise((resolvePromise, reject) => {
    const [command, args] = pinnedCommand(process.execPath, [CLIENT, url, String(mode), String(seconds), String(extra)], PIN.client);
    child = execFile(command, args, { timeout: (seconds + 30) * 1000, killSignal: 'SIGKILL' }, (error, stdout) => {
      const line = String(stdout ?? '').trim().split('\n').at(-1);
      if (line) {
        try {
          return resolvePromise(JSON.parse(line));
        } catch {
          // fall through
        }
      }
      reject(error ?? new Error('rate client printed nothing'));
    });
  });
  promise.stop = () => child?.kill('SIGTERM');
  return promise;
}

let useWrk = true;
/** Closed-loop load for `seconds`: wrk when installed, else the Node closed-loop client. */
async function closedLoad(worker, seconds) {
  const url = `${worker.url}/api/v1/telemetry`;
  if (useWrk) return { ...(await runWrk(url, { seconds, connections: P.connections, cpus: PIN.client })), generator: 'wrk' };
  const r = await rateClient(url, 'closed', seconds, P.connections);
  return { rps: r.rps, requests: r.ok + r.non2xx, p50: r.p50, p99: r.p99, non2xx: r.non2xx, socketErrors: r.errors, generator: 'node-closed-loop' };
}

async function post(worker, path = '/api/v1/telemetry') {
  const r = await fetch(`${worker.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"voltage":28.1,"temperature":24.5,"gyro":0.02,"satellite_id":"bench-1"}',
    signal: AbortSignal.timeout(10_000),
  });
  await r.arrayBuffer();
  return r.status;
}

// ------------------------------------------------------------------------------------------
// Parts
// ------------------------------------------------------------------------------------------
async function partOverhead(workers) {
  say(`(1) overhead: warm-up ${P.warmupSeconds}s each, then ${P.rounds} rounds × ${P.roundSeconds}s per variant, interleaved`);
  for (const w of workers) await closedLoad(w, P.warmupSeconds);
  const runs = Object.fromEntries(workers.map((w) => [w.name, []]));
  // Our variants' own counters across the saturated rounds: spans dropped by the bounded buffer.
  const statsBefore = Object.fromEntries(await Promise.all(workers.filter((w) => w.build === 'ours').map(async (w) => [w.name, await w.stats()])));
  for (let round = 0; round < P.rounds; round++) {
    checkDeadline('overhead round');
    const order = workers.map((_, i) => workers[(i + round) % workers.length]);
    for (const w of order) {
      const cpuBefore = await cpuSeconds(w.pid);
      const r = await closedLoad(w, P.roundSeconds);
      const cpu = (await cpuSeconds(w.pid)) - cpuBefore;
      r.workerdCpuMicrosPerRequest = r.requests > 0 ? (cpu * 1e6) / r.requests : NaN;
      runs[w.name].push({ round, ...r });
      say(`    round ${round + 1}/${P.rounds} ${w.name.padEnd(16)} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50?.toFixed(2)} ms  p99 ${r.p99?.toFixed(2)} ms  workerd CPU ${r.workerdCpuMicrosPerRequest.toFixed(0)} µs/req${r.non2xx ? `  NON-2xx ${r.non2xx}` : ''}${r.socketErrors ? `  socket errors ${r.socketErrors}` : ''}`);
    }
  }
  await sleep(2500); // the last flush of the last round
  const statsAfter = Object.fromEntries(await Promise.all(workers.filter((w) => w.build === 'ours').map(async (w) => [w.name, await w.stats()])));
  const summary = {};
  for (const [name, rs] of Object.entries(runs)) {
    summary[name] = {
      rps: median(rs.map((r) => r.rps)),
      p50: median(rs.map((r) => r.p50)),
      p99: median(rs.map((r) => r.p99)),
      cpuMicrosPerRequest: median(rs.map((r) => r.workerdCpuMicrosPerRequest)),
      rpsMin: Math.min(...rs.map((r) => r.rps)),
      rpsMax: Math.max(...rs.map((r) => r.rps)),
      non2xx: rs.reduce((n, r) => n + (r.non2xx ?? 0), 0),
      runs: rs,
    };
    const a = statsAfter[name];
    const b = statsBefore[name];
    if (a && b) {
      const requests = rs.reduce((n, r) => n + (r.requests ?? 0), 0);
      summary[name].spansDropped = a.spansDropped - b.spansDropped;
      summary[name].spansDroppedPerRequest = (a.spansDropped - b.spansDropped) / requests;
      summary[name].spanExports = a.flusher.spanExports - b.flusher.spanExports;
    }
  }
  const bare = summary.bare?.rps;
  const bareCpu = summary.bare?.cpuMicrosPerRequest;
  const bareRuns = runs.bare ?? [];
  for (const s of Object.values(summary)) {
    s.ratioToBare = bare ? s.rps / bare : null;
    // Throughput ratio implied by CPU per request (robust to a shared, loaded machine).
    s.cpuRatioToBare = bareCpu && s.cpuMicrosPerRequest ? bareCpu / s.cpuMicrosPerRequest : null;
    // The run's noise: the same ratios paired round by round (each round runs every variant back
    // to back), min–max over the rounds.
    const paired = s.runs.map((r, i) => ({ rps: bareRuns[i] ? r.rps / bareRuns[i].rps : NaN, cpu: bareRuns[i] ? bareRuns[i].workerdCpuMicrosPerRequest / r.workerdCpuMicrosPerRequest : NaN }));
    const range = (xs) => (xs.filter(Number.isFinite).length ? [Math.min(...xs.filter(Number.isFinite)), Math.max(...xs.filter(Number.isFinite))] : [null, null]);
    [s.ratioMin, s.ratioMax] = range(paired.map((x) => x.rps));
    [s.cpuRatioMin, s.cpuRatioMax] = range(paired.map((x) => x.cpu));
    s.cpuMin = Math.min(...s.runs.map((r) => r.workerdCpuMicrosPerRequest));
    s.cpuMax = Math.max(...s.runs.map((r) => r.workerdCpuMicrosPerRequest));
  }
  return { connections: P.connections, roundSeconds: P.roundSeconds, rounds: P.rounds, warmupSeconds: P.warmupSeconds, generator: useWrk ? 'wrk -t1' : 'node closed loop', pinning: PIN.reason, variants: summary };
}

/**
 * Bare and ours must answer the same bytes, so the ratio measures telemetry only: one request
 * each with a fixed X-Request-Id and a fixed timestamp; status, every header and the body must be
 * identical except the anomaly id (a random UUID by design, masked).
 */
async function checkFairBare(workers) {
  const bare = workers.find((w) => w.name === 'bare');
  const ours = workers.find((w) => w.name === 'ours');
  if (!bare || !ours) return null;
  const body = JSON.stringify({ ...JSON.parse(POST_BODY), timestamp: '2026-12-01T00:00:00.000Z', satellite_id: 'bench-fairness' });
  const answer = async (w) => {
    const r = await fetch(`${w.url}/api/v1/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'bench-fairness-1' }, body, signal: AbortSignal.timeout(10_000) });
    const text = (await r.text()).replace(/"id":"(an|tp)_[0-9a-f]{32}_/, '"id":"$1_<random>_');
    return { status: r.status, headers: [...r.headers].filter(([k]) => k !== 'date').map(([k, v]) => `${k}: ${v}`), text };
  };
  const [a, b] = [await answer(bare), await answer(ours)];
  const differences = [];
  if (a.status !== b.status) differences.push(`status ${a.status} vs ${b.status}`);
  for (const h of new Set([...a.headers, ...b.headers])) if (a.headers.includes(h) !== b.headers.includes(h)) differences.push(`header ${h} only in ${a.headers.includes(h) ? 'bare' : 'ours'}`);
  if (a.text !== b.text) differences.push('body differs');
  return { identical: differences.length === 0, differences, headers: a.headers, bodyBytes: new TextEncoder().encode(a.text).length, masked: ['anomaly id (random UUID)', 'Date header'] };
}

/**
 * Part 0: the cost split by category for bare, ours and ours-sampled-0.1. Each runs in its own
 * workerd with the inspector on (not the measured instances of parts 1–4), exporting to its own
 * counting proxy in front of the real collector.
 */
async function partProfile(stack, builds, configs) {
  const wanted = configs.filter((c) => ['bare', 'ours', 'ours-sampled-0.1'].includes(c.name));
  say(`(0) cost profile: ${wanted.map((c) => c.name).join(', ')}; ${P.profileSeconds}s without and ${P.profileSeconds}s with V8's sampling profiler each`);
  const out = {};
  for (const c of wanted) {
    checkDeadline('profile');
    const proxy = await startCountingProxy(stack.collector.urls.otlpHttp);
    const inspectorPort = 9300 + Math.floor(Math.random() * 500);
    const bindings = { OTEL_EXPORTER_OTLP_ENDPOINT: proxy.url, OTEL_EXPORTER_OTLP_TOKEN: stack.token, ...(c.build !== 'ours' && { OTEL_TRACES_SAMPLER_ARG: '0' }), ...c.bindings };
    const w = await startVariant(ROOT, builds[c.build], { bindings, name: `${c.name}-profile`, inspectorPort });
    try {
      await pinProcess(w.pid, PIN.worker);
      out[c.name] = await profileRunning(w, { build: builds[c.build], inspectorPort, seconds: P.profileSeconds, wrk: { connections: P.connections, cpus: PIN.client } });
      say(`    ${c.name.padEnd(16)} ${out[c.name].cpuMicrosPerRequest.toFixed(0)} µs/req CPU, telemetry categories ${out[c.name].telemetryMicrosPerRequest.toFixed(0)} µs/req`);
    } finally {
      await w.dispose();
      await proxy.close();
    }
  }
  return { seconds: P.profileSeconds, method: 'share of busy V8 samples per category × unprofiled workerd CPU per request (/proc)', variants: out };
}

async function snapshotCounters(stack, w) {
  return {
    proxy: w.proxy.snapshot(),
    stats: w.build === 'ours' ? await w.stats() : null,
    collectorCpu: await cpuSeconds(stack.collector.pid),
    prometheusCpu: await cpuSeconds(stack.prometheus.pid),
    spansAccepted: await stack.collector.selfMetric('otelcol_receiver_accepted_spans').catch(() => NaN),
    metricPointsAccepted: await stack.collector.selfMetric('otelcol_receiver_accepted_metric_points').catch(() => NaN),
    samplesAppended: await stack.helpers.scrapeSum(`${stack.prometheus.url}/metrics`, 'prometheus_tsdb_head_samples_appended_total').catch(() => NaN),
    at: Date.now(),
  };
}

async function partEconomy(stack, workers, overhead) {
  // The issue's fixed rate (500 req/s) for every variant that sustained it in part 1; a variant
  // that did not is measured at 70 % of its own closed-loop req/s (noted per row), so its figures
  // describe export economy and not an isolate queueing beyond capacity.
  const rateOf = (name) => {
    const rps = overhead?.variants?.[name]?.rps;
    return Number.isFinite(rps) && rps * 0.7 < P.rate ? Math.max(10, Math.floor(rps * 0.7)) : P.rate;
  };
  say(`(2) export economy: ${P.rate} req/s (or 70 % of a variant's own capacity when lower) for ${P.rateSeconds}s per telemetry variant (constant rate, separate process)`);
  // The collector's and Prometheus's idle CPU (self-metrics, scrapes, keepalive pushes), subtracted
  // from each window so that CPU per request is what the requests cost.
  await sleep(P.tailMillis);
  const idle0 = { c: await cpuSeconds(stack.collector.pid), p: await cpuSeconds(stack.prometheus.pid), at: Date.now() };
  await sleep(P.idleMillis);
  const idleSeconds = (Date.now() - idle0.at) / 1000;
  const baseline = { collectorCpuPerSecond: ((await cpuSeconds(stack.collector.pid)) - idle0.c) / idleSeconds, prometheusCpuPerSecond: ((await cpuSeconds(stack.prometheus.pid)) - idle0.p) / idleSeconds, seconds: idleSeconds };
  say(`    idle baseline: collector ${(baseline.collectorCpuPerSecond * 1000).toFixed(1)} ms CPU/s, Prometheus ${(baseline.prometheusCpuPerSecond * 1000).toFixed(1)} ms CPU/s`);
  const out = {};
  for (const w of workers.filter((x) => TELEMETRY_VARIANTS.includes(x.name))) {
    checkDeadline('economy');
    await sleep(1500); // let the previous variant's tail exports finish
    const before = await snapshotCounters(stack, w);
    const rate = rateOf(w.name);
    const workerCpu0 = await cpuSeconds(w.pid);
    const client = await rateClient(`${w.url}/api/v1/telemetry`, rate, P.rateSeconds, 256);
    await sleep(P.tailMillis); // the last coalesced flush and the aggregator's next push
    const workerCpu = (await cpuSeconds(w.pid)) - workerCpu0;
    const after = await snapshotCounters(stack, w);
    const requests = client.ok + client.non2xx;
    const metrics = countDelta(before.proxy, after.proxy, '/v1/metrics');
    const traces = countDelta(before.proxy, after.proxy, '/v1/traces');
    const rpc = after.stats && before.stats ? { sends: after.stats.rpc.sends - before.stats.rpc.sends, jsonBytes: after.stats.rpc.jsonBytes - before.stats.rpc.jsonBytes, points: after.stats.rpc.points - before.stats.rpc.points } : { sends: 0, jsonBytes: 0, points: 0 };
    const exportsTotal = rpc.sends + metrics.requests + traces.requests;
    const windowSeconds = (after.at - before.at) / 1000;
    const r = {
      rate,
      client,
      requests,
      windowSeconds,
      // The isolate's CPU per request at this constant rate (flushes of the window included), to
      // compare with part 1's saturated rounds: overload must not raise the cost of a request.
      workerdCpuMicrosPerRequest: requests > 0 ? (workerCpu * 1e6) / requests : NaN,
      isolateToAggregator: { ...rpc, perRequest: rpc.sends / requests, jsonBytesPerRequest: rpc.jsonBytes / requests },
      metricsPushes: { ...metrics, perRequest: metrics.requests / requests, bytesPerRequest: metrics.bytes / requests, gzipBytesPerRequest: metrics.gzipBytes / requests, bytesPerPush: metrics.requests ? metrics.bytes / metrics.requests : null },
      spanExports: { ...traces, perRequest: traces.requests / requests, bytesPerRequest: traces.bytes / requests, gzipBytesPerRequest: traces.gzipBytes / requests, bytesPerExport: traces.requests ? traces.bytes / traces.requests : null },
      exportsPerRequest: exportsTotal / requests,
      otlpExportsPerRequest: (metrics.requests + traces.requests) / requests,
      exportsPerSecond: exportsTotal / windowSeconds,
      collector: {
        cpuSeconds: after.collectorCpu - before.collectorCpu,
        cpuMillisPerRequest: (Math.max(0, after.collectorCpu - before.collectorCpu - baseline.collectorCpuPerSecond * windowSeconds) * 1000) / requests,
        spansAccepted: after.spansAccepted - before.spansAccepted,
        spansPerRequest: (after.spansAccepted - before.spansAccepted) / requests,
        metricPointsAccepted: after.metricPointsAccepted - before.metricPointsAccepted,
      },
      prometheus: {
        cpuSeconds: after.prometheusCpu - before.prometheusCpu,
        cpuSecondsOverIdle: Math.max(0, after.prometheusCpu - before.prometheusCpu - baseline.prometheusCpuPerSecond * windowSeconds),
        samplesAppended: after.samplesAppended - before.samplesAppended,
        samplesPerSecond: (after.samplesAppended - before.samplesAppended) / windowSeconds,
      },
      flusher: after.stats
        ? {
            exports: after.stats.flusher.exports - before.stats.flusher.exports,
            spanExports: after.stats.flusher.spanExports - before.stats.flusher.spanExports,
            sendFailures: after.stats.flusher.sendFailures - before.stats.flusher.sendFailures,
            droppedBatches: after.stats.flusher.droppedBatches - before.stats.flusher.droppedBatches,
            spansDropped: after.stats.spansDropped - before.stats.spansDropped,
          }
        : null,
      aggregatorPushes: after.stats ? after.stats.aggregators.reduce((n, a) => n + a.pushes, 0) - before.stats.aggregators.reduce((n, a) => n + a.pushes, 0) : null,
      aggregatorStreams: after.stats ? after.stats.aggregators.reduce((n, a) => n + a.streams, 0) : null,
    };
    out[w.name] = r;
    say(`    ${w.name.padEnd(16)} ${requests} req (offered ${rate}/s, achieved ${client.achievedRate.toFixed(0)}/s, skipped ${client.skipped}, errors ${client.errors})  exports/req ${r.exportsPerRequest.toFixed(4)} (rpc ${rpc.sends}, metrics ${metrics.requests}, spans ${traces.requests})  bytes/req metrics ${(metrics.bytes / requests).toFixed(0)} + rpc ${(rpc.jsonBytes / requests).toFixed(0)}, traces ${(traces.bytes / requests).toFixed(0)}`);
  }
  return { rate: P.rate, seconds: P.rateSeconds, tailMillis: P.tailMillis, idleBaseline: baseline, variants: out };
}

async function partFreshness(stack, ours, oursRps) {
  // Background ingest load at half of what ours sustained in part 1 (at most P.freshnessLoad):
  // freshness of a busy isolate, not of one queueing beyond its capacity.
  const loadRate = Math.max(10, Math.min(P.freshnessLoad, Math.round((oursRps ?? P.freshnessLoad * 2) / 2)));
  say(`(3) freshness: ${P.probes} probes (GET /health on ours, under ${loadRate} req/s of ingest load), response → visible in Prometheus`);
  const expr = 'sum(astra_http_requests_total{endpoint="/health"})';
  const value = async () => {
    const rows = await stack.helpers.promQuery(stack.prometheus.url, expr);
    return rows.length ? Number(rows[0].value[1]) : 0;
  };
  const loadSeconds = Math.ceil(P.probes * 6 + 10);
  const client = rateClient(`${ours.url}/api/v1/telemetry`, loadRate, loadSeconds, 128);
  const background = client.catch((e) => ({ error: e.message }));
  await sleep(1000);
  const samples = [];
  let misses = 0;
  const loadEnds = Date.now() + loadSeconds * 1000 - 2000;
  for (let i = 0; i < P.probes && Date.now() < loadEnds; i++) {
    checkDeadline('freshness');
    // Wait until the previous probe is visible and stable.
    const base = await value();
    const r = await fetch(`${ours.url}/health`, { signal: AbortSignal.timeout(10_000) });
    await r.arrayBuffer();
    const answered = performance.now();
    let seen = null;
    while (performance.now() - answered < 15_000) {
      if ((await value()) >= base + 1) {
        seen = performance.now() - answered;
        break;
      }
      await sleep(50);
    }
    if (seen === null) misses++;
    else samples.push(seen);
    await sleep(200 + Math.random() * 800); // desynchronise from the flush/alarm cadence
  }
  client.stop();
  const load = await background;
  const res = { loadRate, probes: samples.length + misses, misses, p50Millis: quantile(samples, 0.5), p95Millis: quantile(samples, 0.95), maxMillis: samples.length ? Math.max(...samples) : null, samplesMillis: samples.map((x) => Math.round(x)), backgroundLoad: load, pollMillis: 50 };
  say(`    p50 ${res.p50Millis?.toFixed(0)} ms, p95 ${res.p95Millis?.toFixed(0)} ms, max ${res.maxMillis?.toFixed(0)} ms over ${samples.length} probes (${misses} not seen within 15 s)`);
  return res;
}

async function partCollectorDown(stack, workers) {
  say(`(4) collector down: ${P.downReps} × (up, down) × ${P.downSeconds}s per variant`);
  const runs = Object.fromEntries(workers.map((w) => [w.name, { up: [], down: [] }]));
  try {
    for (let rep = 0; rep < P.downReps; rep++) {
      for (const state of ['up', 'down']) {
        checkDeadline('collector down');
        if (state === 'down') {
          await stack.collector.stop();
          await sleep(500);
        } else if (!stack.collector.running) {
          await stack.collector.start();
        }
        for (const w of workers) {
          const cpuBefore = await cpuSeconds(w.pid);
          const r = await closedLoad(w, P.downSeconds);
          r.workerdCpuMicrosPerRequest = r.requests > 0 ? (((await cpuSeconds(w.pid)) - cpuBefore) * 1e6) / r.requests : NaN;
          runs[w.name][state].push(r);
          say(`    collector ${state.padEnd(4)} ${w.name.padEnd(16)} ${r.rps.toFixed(0).padStart(6)} req/s  p99 ${r.p99?.toFixed(2)} ms  workerd CPU ${r.workerdCpuMicrosPerRequest.toFixed(0)} µs/req${r.non2xx ? `  NON-2xx ${r.non2xx}` : ''}`);
        }
      }
    }
  } finally {
    if (!stack.collector.running) await stack.collector.start();
  }
  const out = {};
  for (const [name, r] of Object.entries(runs)) {
    out[name] = {
      up: { p50: median(r.up.map((x) => x.p50)), p99: median(r.up.map((x) => x.p99)), rps: median(r.up.map((x) => x.rps)), cpuMicrosPerRequest: median(r.up.map((x) => x.workerdCpuMicrosPerRequest)) },
      down: { p50: median(r.down.map((x) => x.p50)), p99: median(r.down.map((x) => x.p99)), rps: median(r.down.map((x) => x.rps)), cpuMicrosPerRequest: median(r.down.map((x) => x.workerdCpuMicrosPerRequest)), non2xx: r.down.reduce((n, x) => n + (x.non2xx ?? 0), 0) },
      runs: r,
    };
  }
  return { seconds: P.downSeconds, reps: P.downReps, how: 'collector process stopped (SIGTERM); the per-variant proxy then resets each export connection', variants: out };
}

// ------------------------------------------------------------------------------------------
// Main
// ------------------------------------------------------------------------------------------
const cleanups = [];
let cleaning = false;
async function cleanup() {
  if (cleaning) return;
  cleaning = true;
  for (const fn of cleanups.reverse()) await Promise.resolve().then(fn).catch(() => undefined);
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, async () => {
    say(`${sig}: stopping what this run started`);
    await cleanup();
    process.exit(130);
  });
}

async function main() {
  const result = { schema: 'astraguard-bench/1', quick: QUICK, startedAt: new Date().toISOString(), params: P, variants: VARIANTS };
  result.machine = await machine();
  say(`machine: ${result.machine.cpus} × ${result.machine.cpuModel}, ${result.machine.memTotalGiB} GiB, load ${result.machine.loadavgAtStart.join(' ')}; commit ${result.machine.commit} (+${result.machine.dirtyFiles} uncommitted files in the work tree)`);
  const wrkSetup = await ensureWrk(say);
  useWrk = wrkSetup.wrk;
  result.machine.wrkSetup = wrkSetup.how;
  result.machine.pinning = PIN;
  if (!useWrk) say(`wrk not available (${wrkSetup.how}): using the Node closed-loop client, pinned with taskset when possible`);
  say(`pinning: ${PIN.reason}`);

  say('starting the real collector, Prometheus and Jaeger (tools/stack/)');
  const helpers = await loadStackHelpers();
  const token = `bench-${Math.random().toString(16).slice(2)}`;
  const stackHandle = await helpers.startStack({ token, scrapeInterval: '5s' });
  cleanups.push(() => helpers.stopAll());
  // The backends and this process (its counting proxies, Miniflare's log handling) share the load
  // generator's core(s): the exports of every variant, and their bursts (hono-otel and
  // otel-cf-workers export once a request), must not land on the core whose CPU is measured.
  // Each workerd is moved to its own core right after it starts.
  const backendPids = [stackHandle.collector.pid, stackHandle.prometheus.pid, stackHandle.jaeger.pid, process.pid];
  result.machine.backendsPinned = (await Promise.all(backendPids.map((pid) => pinProcess(pid, PIN.client)))).every(Boolean);
  if (PIN.client) say(`backends and the bench process pinned to cpu ${PIN.client}: ${result.machine.backendsPinned ? 'yes' : 'not all'}`);
  const stack = { ...stackHandle, helpers, token };

  say(`building ${VARIANTS.length} variants with wrangler`);
  const builds = {};
  for (const v of VARIANTS) {
    builds[v] = await buildVariant(ROOT, v);
    cleanups.push(() => builds[v].dispose());
    say(`    ${v}: ${(builds[v].bytes / 1024).toFixed(0)} KiB in ${builds[v].millis} ms`);
  }
  result.builds = Object.fromEntries(Object.entries(builds).map(([k, b]) => [k, { bytes: b.bytes, millis: b.millis }]));

  const workers = [];
  const configs = [...VARIANTS.map((v) => ({ name: v, build: v, bindings: v === 'ours' ? LEAF_BINDINGS : {} })), ...EXTRAS.map((x) => ({ ...x, bindings: { ...x.bindings, ...LEAF_BINDINGS } }))];
  result.configs = configs.map((c) => ({ name: c.name, build: c.build, bindings: c.bindings }));
  for (const { name: v, build, bindings: extraBindings } of configs) {
    const proxy = await startCountingProxy(stack.collector.urls.otlpHttp);
    cleanups.push(() => proxy.close());
    // Variants other than ours: our domain spans (lib/ withSpan) would be roots there, buffered
    // and never exported; sampling 0 makes them non-recording (see bench/variants/bare.ts).
    const bindings = { OTEL_EXPORTER_OTLP_ENDPOINT: proxy.url, OTEL_EXPORTER_OTLP_TOKEN: token, ...(build !== 'ours' && { OTEL_TRACES_SAMPLER_ARG: '0' }), ...extraBindings };
    const w = await startVariant(ROOT, builds[build], { bindings, name: v });
    cleanups.push(() => w.dispose());
    w.proxy = proxy;
    w.pinned = await pinProcess(w.pid, PIN.worker);
    const status = await post(w);
    if (status !== 200) throw new Error(`${v}: POST /api/v1/telemetry answered ${status}; logs: ${w.logs.last.join(' | ')}`);
    workers.push(w);
    say(`    ${v} on workerd at ${w.url} → proxy ${proxy.url} → collector ${stack.collector.urls.otlpHttp}`);
  }

  result.fairness = await checkFairBare(workers);
  if (result.fairness) {
    say(`fair bare: ${result.fairness.identical ? `bare and ours answer identical bytes (${result.fairness.headers.length} headers, ${result.fairness.bodyBytes} B body; masked: ${result.fairness.masked.join(', ')})` : `DIFFERENT: ${result.fairness.differences.join('; ')}`}`);
    if (!result.fairness.identical) throw new Error(`bare and ours answer different responses: ${result.fairness.differences.join('; ')}`);
  }
  if (PROFILE) result.profile = await partProfile(stack, builds, configs);
  result.overhead = await partOverhead(workers);
  result.economy = await partEconomy(stack, workers, result.overhead);
  const ours = workers.find((w) => w.name === 'ours');
  if (ours) result.freshness = await partFreshness(stack, ours, result.overhead.variants.ours?.rps);
  result.collectorDown = await partCollectorDown(stack, workers);
  if (ours) {
    const e = result.economy.variants.ours;
    const pointsPerBatch = Math.max(1, Math.round(e.isolateToAggregator.points / Math.max(1, e.isolateToAggregator.sends)));
    // A leaf forwards every stream it heard of in the interval: at most all the shard's streams.
    const streams = e.aggregatorStreams ?? 0;
    result.aggregatorCapacity = await measureAggregation({ root: ROOT, build: builds.ours, millis: P.capacityMillis, pointsPerBatch, pointsPerForward: Math.max(pointsPerBatch, streams || 150), say });
    result.scale = scaleOnPaper(result);
    result.tier = tierOnPaper(result);
    if (result.economy.variants['ours-sampled-0.1']) result.scaleSampled = scaleOnPaper(result, { variant: 'ours-sampled-0.1' });
  }
  result.workerLogs = Object.fromEntries(workers.map((w) => [w.name, { lines: w.logs.lines, lastWarnings: w.logs.last }]));
  result.machine.loadavgAtEnd = loadavg().map((x) => +x.toFixed(2));
  result.finishedAt = new Date().toISOString();
  result.durationSeconds = Math.round((Date.now() - t0) / 1000);

  await mkdir(dirname(OUT), { recursive: true });
  await writeFile(OUT, JSON.stringify(result, null, 2) + '\n');
  process.stdout.write('\n' + formatReport(result) + '\n');
  say(`wrote ${OUT}`);
}

try {
  await main();
} catch (error) {
  say(`FAILED: ${error?.stack ?? error}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
