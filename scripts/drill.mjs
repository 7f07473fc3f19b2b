#!/usr/bin/env node
/**
 * `npm run drill`: a fault drill against the running stack (`npm start`).
 *
 * For each fault type in turn (latency, error, outage — all on the `storage` target, the
 * MissionState Durable Object every request depends on) it injects the fault through
 * POST /api/v1/chaos, drives bounded traffic through it (a mix of reads that are retried, ingest
 * that falls back, and /health), ends it (latency and error by expiry, outage by DELETE), keeps
 * light traffic going until the API reports the fault recovered, and prints what it saw:
 * responses by route and status, latencies, the breaker states /health showed, recovery times.
 * Then it reads from Prometheus what the drill caused (breaker transitions, retry outcomes, chaos
 * injections, recovery times, recovery actions, health-check failures: increases over the values
 * before the drill) and checks that every query of the Reliability & Resilience dashboard
 * returns data, printing a table. Exit code 1 when a fault did not recover or a query stayed empty.
 *
 * Every loop is bounded in time and in requests.
 *
 *   npm run drill -- [--base-url http://127.0.0.1:8787] [--prometheus-url http://127.0.0.1:9090]
 *                    [--admin-token TOKEN (default: ADMIN_TOKEN of .dev.vars)]
 *                    [--ingest-key KEY (default: the first of INGEST_API_KEYS in .dev.vars)] [--fault-seconds 4]
 *                    [--rounds 2] [--concurrency 4] [--rate 50 (requests/s)] [--max-requests 600]
 *                    [--recovery-timeout-seconds 30]
 *                    [--prometheus-timeout-seconds 90] [--json]
 *
 * Importable: `import { runDrill } from "./scripts/drill.mjs"` (the stack test runs the same code).
 */
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { readDevVars, sleep } from '../tools/stack/index.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const DASHBOARD_FILE = join(ROOT, 'grafana/dashboards/reliability-resilience.json');

/** Defaults of {@link runDrill}. */
export const DRILL_DEFAULTS = {
  baseUrl: 'http://127.0.0.1:8787',
  prometheusUrl: 'http://127.0.0.1:9090',
  faultSeconds: 4,
  /** Rounds of the three fault types. */
  rounds: 2,
  concurrency: 4,
  /** Pace of the traffic while a fault is active (a fifth of it while waiting for recovery). */
  ratePerSecond: 50,
  maxRequestsPerFault: 600,
  recoveryTimeoutMillis: 30_000,
  prometheusTimeoutMillis: 90_000,
  requestTimeoutMillis: 15_000,
  latencyMs: 1500,
  /** A flaky dependency: most calls succeed, and retries absorb most failures. */
  errorRate: 0.3,
};

async function defaultAdminToken() {
  const token = readDevVars(ROOT).ADMIN_TOKEN;
  if (!token) throw new Error('no admin token: pass --admin-token or set ADMIN_TOKEN in .dev.vars');
  return token;
}

/** The panel queries of the Reliability & Resilience dashboard. */
export async function dashboardQueries(file = DASHBOARD_FILE) {
  const raw = JSON.parse(await readFile(file, 'utf8'));
  const dashboard = raw.dashboard ?? raw;
  return (dashboard.panels ?? []).flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr, legend: t.legendFormat ?? '' })));
}

/** Instant PromQL query → vector result. */
export async function promQuery(url, expr) {
  const res = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: expr })}`, { signal: AbortSignal.timeout(10_000) });
  const body = await res.json();
  if (body.status !== 'success') throw new Error(`PromQL ${expr}: ${res.status} ${body.error ?? ''}`);
  return body.data.result;
}

const quantile = (sorted, q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : 0);

/**
 * One HTTP client of the Worker. Every request carries the admin token (it also grants reads, for
 * a deployment with REQUIRE_READ_TOKEN) and, when known, an ingest key (REQUIRE_INGEST_KEY).
 */
function client(baseUrl, adminToken, ingestKey, requestTimeoutMillis) {
  return async function request(method, path, body) {
    const headers = { authorization: `Bearer ${adminToken}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (ingestKey && path.startsWith('/api/v1/telemetry') && method === 'POST') headers['x-api-key'] = ingestKey;
    const started = performance.now();
    try {
      const res = await fetch(`${baseUrl}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(requestTimeoutMillis),
      });
      const text = await res.text();
      let json;
      try {
        json = JSON.parse(text);
      } catch {
        json = text;
      }
      return { status: res.status, body: json, ms: performance.now() - started };
    } catch (error) {
      return { status: 0, body: String(error?.message ?? error), ms: performance.now() - started };
    }
  };
}

/** The traffic mix: reads that are retried, ingest that falls back, and health. */
const MIX = [
  ['GET', '/api/v1/phase'],
  // Nominal readings with a little noise on every field (a constant field would read as a stuck sensor).
  ['POST', '/api/v1/telemetry', () => ({ voltage: 28 + Math.random() * 0.5, temperature: 20 + Math.random() * 0.5, gyro: 0.1 + Math.random() * 0.01, satellite_id: 'drill-1' })],
  ['GET', '/api/v1/history/anomalies?limit=5'],
  ['GET', '/api/v1/telemetry/latest'],
  ['GET', '/health'],
];

function routeOf(path) {
  return path.split('?')[0];
}

/**
 * Runs `concurrency` loops over MIX, paced to at most `ratePerSecond` requests in all, until
 * `stop()` or `maxRequests`; tallies into `stats`.
 */
async function drive({ request, concurrency, maxRequests, ratePerSecond, stop, stats }) {
  let next = 0;
  const started = Date.now();
  const loop = async () => {
    while (!stop() && stats.requests < maxRequests) {
      const slot = next++;
      const due = started + (slot * 1000) / ratePerSecond;
      if (due > Date.now()) await sleep(due - Date.now());
      if (stop()) break;
      const [method, path, makeBody] = MIX[slot % MIX.length];
      stats.requests++;
      const r = await request(method, path, makeBody?.());
      const key = `${method} ${routeOf(path)}`;
      const byStatus = (stats.byRoute[key] ??= {});
      byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
      stats.latencies.push(r.ms);
      if (r.status === 0 || r.status >= 500) {
        stats.errors++;
        const code = `${r.status} ${r.body?.error?.code ?? String(r.body).slice(0, 60)}`;
        stats.errorCodes = stats.errorCodes ?? {};
        stats.errorCodes[code] = (stats.errorCodes[code] ?? 0) + 1;
      }
      if (path === '/api/v1/telemetry' && r.status === 200 && r.body?.persisted === false) stats.unpersisted++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
}

/** Polls /health every `everyMs`, recording the storage breaker states it shows (consecutive distinct). */
function watchBreaker(request, everyMs, states) {
  let running = true;
  const done = (async () => {
    while (running) {
      const r = await request('GET', '/health');
      const state = r.body?.dependencies?.storage?.circuit_breaker;
      if (state && states.at(-1) !== state) states.push(state);
      await sleep(everyMs);
    }
  })();
  return async () => {
    running = false;
    await done;
  };
}

async function findFault(request, id) {
  const r = await request('GET', '/api/v1/chaos');
  if (r.status !== 200) return undefined;
  return [...(r.body.active ?? []), ...(r.body.recent ?? [])].find((f) => f.id === id);
}

/** Sums of counters by labels, from Prometheus (missing series = 0). */
async function counters(prometheusUrl) {
  const by = async (expr, labels) => {
    const out = {};
    for (const s of await promQuery(prometheusUrl, expr)) out[labels.map((l) => s.metric[l] ?? '').join(' ')] = Number(s.value[1]);
    return out;
  };
  return {
    transitions: await by('sum by (name, from_state, to_state) (astra_circuit_breaker_transitions_total)', ['name', 'from_state', 'to_state']),
    retries: await by('sum by (endpoint, outcome) (astra_retry_attempts_total)', ['endpoint', 'outcome']),
    injections: await by('sum by (type, status) (astra_chaos_injections_total)', ['type', 'status']),
    recoveryCount: await by('sum by (type) (astra_chaos_recovery_time_seconds_count)', ['type']),
    recoverySum: await by('sum by (type) (astra_chaos_recovery_time_seconds_sum)', ['type']),
    actions: await by('sum by (action_type, status) (astra_recovery_actions_total)', ['action_type', 'status']),
    healthFailures: await by('sum by (service) (astra_health_check_failures_total)', ['service']),
    errorResolutions: await by('sum by (error_type) (astra_error_resolution_time_seconds_count)', ['error_type']),
  };
}

function delta(after, before) {
  const out = {};
  for (const [group, values] of Object.entries(after)) {
    out[group] = {};
    for (const [k, v] of Object.entries(values)) {
      const d = v - (before[group]?.[k] ?? 0);
      if (d > 0) out[group][k] = Math.round(d * 1000) / 1000;
    }
  }
  return out;
}

const sumValues = (o) => Object.values(o ?? {}).reduce((a, b) => a + b, 0);

/**
 * Runs the drill; resolves with what it saw. Never leaves a fault active it injected (they are
 * bounded by duration_s anyway, and the drill DELETEs them on the way out).
 *
 * @param {Partial<typeof DRILL_DEFAULTS> & { adminToken?: string, ingestKey?: string, log?: (line: string) => void, dashboardFile?: string }} options
 */
export async function runDrill(options = {}) {
  const o = { ...DRILL_DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) };
  const log = o.log ?? ((line) => process.stdout.write(`${line}\n`));
  const adminToken = o.adminToken ?? (await defaultAdminToken());
  const ingestKey = o.ingestKey ?? readDevVars(ROOT).INGEST_API_KEYS?.split(',')[0]?.trim();
  const request = client(o.baseUrl, adminToken, ingestKey, o.requestTimeoutMillis);

  const health = await request('GET', '/health');
  if (health.status !== 200) throw new Error(`${o.baseUrl}/health answered ${health.status}: is the stack running (npm start)?`);
  const ready = await fetch(`${o.prometheusUrl}/-/ready`, { signal: AbortSignal.timeout(5000) }).catch(() => undefined);
  if (!ready?.ok) throw new Error(`Prometheus at ${o.prometheusUrl} is not ready`);
  const cleared = await request('DELETE', '/api/v1/chaos');
  if (cleared.status !== 200) throw new Error(`DELETE /api/v1/chaos answered ${cleared.status}: ${JSON.stringify(cleared.body).slice(0, 200)}`);
  const before = await counters(o.prometheusUrl);
  log(`drill: ${o.baseUrl}, ${o.rounds} round(s) of latency/error/outage faults of ${o.faultSeconds} s on storage, ${o.concurrency} clients at ≤ ${o.ratePerSecond} req/s, ≤ ${o.maxRequestsPerFault} requests per fault`);

  // Round 1 ends the outage by DELETE (long enough that only the DELETE can end it in time); later
  // rounds let every fault expire. Two rounds give each type two recoveries within the dashboard's
  // 5 m window, so its per-type recovery-time quantiles have a rate to work on.
  const plans = [];
  for (let round = 1; round <= o.rounds; round++) {
    plans.push(
      { type: 'latency', spec: { type: 'latency', target: 'storage', duration_s: o.faultSeconds, latency_ms: o.latencyMs }, end: 'expiry' },
      { type: 'error', spec: { type: 'error', target: 'storage', duration_s: o.faultSeconds, error_rate: o.errorRate }, end: 'expiry' },
      round === 1
        ? { type: 'outage', spec: { type: 'outage', target: 'storage', duration_s: Math.max(60, o.faultSeconds * 10) }, end: 'delete' }
        : { type: 'outage', spec: { type: 'outage', target: 'storage', duration_s: o.faultSeconds }, end: 'expiry' },
    );
  }
  const phases = [];
  try {
    for (const plan of plans) phases.push(await runFault(plan));
  } finally {
    await request('DELETE', '/api/v1/chaos');
  }

  async function runFault(plan) {
    const stats = { requests: 0, errors: 0, unpersisted: 0, byRoute: {}, latencies: [] };
    const breakerStates = [];
    const stopWatch = watchBreaker(request, 200, breakerStates);
    const injected = await request('POST', '/api/v1/chaos', plan.spec);
    if (injected.status !== 201) {
      await stopWatch();
      throw new Error(`POST /api/v1/chaos ${JSON.stringify(plan.spec)} answered ${injected.status}: ${JSON.stringify(injected.body).slice(0, 300)}`);
    }
    const fault = injected.body.fault;
    const faultEnd = Date.now() + o.faultSeconds * 1000;
    // Full traffic while the fault lasts.
    // Slow calls hold the clients: twice the clients under latency, so enough calls complete to trip the breaker.
    const clients = plan.type === 'latency' ? o.concurrency * 2 : o.concurrency;
    await drive({ request, concurrency: clients, maxRequests: o.maxRequestsPerFault, ratePerSecond: o.ratePerSecond, stop: () => Date.now() >= faultEnd, stats });
    if (plan.end === 'delete') {
      const del = await request('DELETE', `/api/v1/chaos/${fault.id}`);
      if (del.status !== 200) log(`  DELETE /api/v1/chaos/${fault.id} answered ${del.status}`);
    }
    // One client until the API reports the fault recovered (the breaker's probe, or any storage call).
    const deadline = Date.now() + o.recoveryTimeoutMillis;
    let seen;
    let recovered = false;
    const traffic = drive({ request, concurrency: 1, maxRequests: stats.requests + 200, ratePerSecond: o.ratePerSecond / 5, stop: () => recovered || Date.now() >= deadline, stats });
    while (Date.now() < deadline) {
      seen = await findFault(request, fault.id);
      if (seen?.recovered) break;
      await sleep(250);
    }
    recovered = true;
    await traffic;
    // Until /health shows the breaker closed again (bounded), so the next fault starts clean.
    const closeDeadline = Date.now() + o.recoveryTimeoutMillis;
    while (Date.now() < closeDeadline && breakerStates.at(-1) !== 'CLOSED') await sleep(200);
    await stopWatch();
    const sorted = [...stats.latencies].sort((a, b) => a - b);
    const phase = {
      type: plan.type,
      faultId: fault.id,
      ended: seen?.status ?? 'unknown',
      recovered: Boolean(seen?.recovered),
      recoverySeconds: seen?.recovery_seconds ?? null,
      requests: stats.requests,
      errors: stats.errors,
      unpersistedIngest: stats.unpersisted,
      byRoute: stats.byRoute,
      latencyMs: { p50: Math.round(quantile(sorted, 0.5)), p99: Math.round(quantile(sorted, 0.99)), max: Math.round(sorted.at(-1) ?? 0) },
      breakerStates,
    };
    if (stats.errorCodes && Object.keys(stats.errorCodes).length) phase.errorCodes = stats.errorCodes;
    log(`\n[${plan.type}] fault ${fault.id} ${JSON.stringify(plan.spec)}`);
    log(`  ${phase.requests} requests, ${phase.errors} 5xx/failed, ${phase.unpersistedIngest} ingest answers not persisted (fallback verdicts)`);
    for (const [route, byStatus] of Object.entries(phase.byRoute)) log(`  ${route.padEnd(34)} ${Object.entries(byStatus).map(([s, n]) => `${s}×${n}`).join(' ')}`);
    if (phase.errorCodes) log(`  errors: ${Object.entries(phase.errorCodes).map(([k, n]) => `${k} ×${n}`).join(', ')}`);
    log(`  latency ms p50 ${phase.latencyMs.p50}, p99 ${phase.latencyMs.p99}, max ${phase.latencyMs.max}`);
    log(`  storage breaker seen by /health: ${breakerStates.join(' → ') || '(no answer)'}`);
    log(`  ended by ${plan.end} (${phase.ended}); ${phase.recovered ? `recovered ${phase.recoverySeconds} s after injection` : 'NOT recovered within the timeout'}`);
    return phase;
  }

  // --- What Prometheus saw -------------------------------------------------------------------
  const expectedRecovered = phases.filter((p) => p.recovered).length;
  const promDeadline = Date.now() + o.prometheusTimeoutMillis;
  let caused = delta(await counters(o.prometheusUrl), before);
  while (Date.now() < promDeadline) {
    const recoveredSeen = Object.entries(caused.injections ?? {}).filter(([k]) => k.endsWith(' recovered')).reduce((a, [, v]) => a + v, 0);
    const injectedSeen = Object.entries(caused.injections ?? {}).filter(([k]) => k.endsWith(' injected')).reduce((a, [, v]) => a + v, 0);
    if (recoveredSeen >= expectedRecovered && injectedSeen >= phases.length && sumValues(caused.transitions) > 0) break;
    await sleep(1000);
    caused = delta(await counters(o.prometheusUrl), before);
  }
  log('\nCaused by the drill, from Prometheus (increase over the values before it):');
  const show = (title, group) => log(`  ${title.padEnd(26)} ${Object.entries(group ?? {}).map(([k, v]) => `${k}: ${v}`).join(', ') || '(none)'}`);
  show('breaker transitions', caused.transitions);
  show('retry attempts', caused.retries);
  show('chaos injections', caused.injections);
  show('recoveries (count)', caused.recoveryCount);
  show('recovery time (sum, s)', caused.recoverySum);
  show('recovery actions', caused.actions);
  show('health check failures', caused.healthFailures);
  show('failure runs resolved', caused.errorResolutions);

  // --- Dashboard queries ---------------------------------------------------------------------
  const queries = await dashboardQueries(o.dashboardFile);
  let rows = [];
  const dashDeadline = Date.now() + o.prometheusTimeoutMillis;
  for (;;) {
    rows = [];
    for (const q of queries) {
      let result = [];
      let error;
      try {
        result = await promQuery(o.prometheusUrl, q.expr);
      } catch (e) {
        error = String(e.message ?? e);
      }
      const values = result.map((s) => Number(s.value[1]));
      const finite = values.filter((v) => Number.isFinite(v));
      rows.push({ panel: q.panel, expr: q.expr, series: result.length, finite: finite.length, sample: finite.slice(0, 3).map((v) => Math.round(v * 1000) / 1000), ok: !error && finite.length > 0, error });
    }
    if (rows.every((r) => r.ok) || Date.now() >= dashDeadline) break;
    await sleep(2000);
  }
  log('\nReliability & Resilience dashboard queries against Prometheus:');
  log(`  ${'ok'.padEnd(4)} ${'series'.padEnd(7)} ${'panel'.padEnd(32)} ${'sample'.padEnd(22)} expr`);
  for (const r of rows) log(`  ${(r.ok ? 'yes' : 'NO').padEnd(4)} ${String(r.series).padEnd(7)} ${r.panel.padEnd(32)} ${JSON.stringify(r.sample).padEnd(22)} ${r.expr}${r.error ? `  (${r.error})` : ''}`);

  const ok = phases.every((p) => p.recovered) && rows.every((r) => r.ok);
  log(`\ndrill ${ok ? 'passed' : 'FAILED'}: ${phases.filter((p) => p.recovered).length}/${phases.length} faults recovered, ${rows.filter((r) => r.ok).length}/${rows.length} dashboard queries return data`);
  return { ok, phases, caused, dashboard: rows };
}

function parseArgs(argv) {
  const flags = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) continue;
    const [k, inline] = a.slice(2).split('=', 2);
    if (k === 'json' || k === 'help') flags[k] = true;
    else flags[k] = inline ?? argv[++i];
  }
  return flags;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const f = parseArgs(process.argv.slice(2));
  if (f.help) {
    process.stdout.write(`${readFileSyncHeader()}\n`);
    process.exit(0);
  }
  const num = (v) => (v === undefined ? undefined : Number(v));
  try {
    const report = await runDrill({
      baseUrl: f['base-url'],
      prometheusUrl: f['prometheus-url'],
      adminToken: f['admin-token'],
      ingestKey: f['ingest-key'],
      faultSeconds: num(f['fault-seconds']),
      rounds: num(f.rounds),
      concurrency: num(f.concurrency),
      ratePerSecond: num(f.rate),
      maxRequestsPerFault: num(f['max-requests']),
      recoveryTimeoutMillis: f['recovery-timeout-seconds'] === undefined ? undefined : num(f['recovery-timeout-seconds']) * 1000,
      prometheusTimeoutMillis: f['prometheus-timeout-seconds'] === undefined ? undefined : num(f['prometheus-timeout-seconds']) * 1000,
    });
    if (f.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    process.exitCode = report.ok ? 0 : 1;
  } catch (error) {
    process.stderr.write(`drill: ${error.message}\n`);
    process.exitCode = 1;
  }
}

function readFileSyncHeader() {
  return 'usage: npm run drill -- [--base-url URL] [--prometheus-url URL] [--admin-token T] [--ingest-key K] [--fault-seconds N] [--rounds N] [--concurrency N] [--rate N] [--max-requests N] [--recovery-timeout-seconds N] [--prometheus-timeout-seconds N] [--json]';
}
