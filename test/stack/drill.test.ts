/**
 * The fault drill against a real stack: collector + Prometheus + Jaeger (test/support/stack.ts)
 * and the Worker (its deploy bundle in Miniflare) on free ports, exporting to that collector with
 * its token.
 * Runs `runDrill()` from scripts/drill.mjs (the same code as `npm run drill`) and asserts, from
 * Prometheus, what the drill caused: breaker transitions, retry outcomes, chaos injections,
 * recovery times and recovery actions — and that every Reliability & Resilience query has data.
 *
 * Every process started here is stopped in afterAll, by the handle that started it.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
// @ts-expect-error: a plain .mjs script without types
import { runDrill } from '../../scripts/drill.mjs';
import { startWorker, type WorkerHandle } from '../support/miniflare-isolates';
import { devVars, jaegerTraces, promQuery, startStack, stopAll, waitFor, type Stack } from '../support/stack';

let stack: Stack;
let worker: WorkerHandle | undefined;
let report: any;
const lines: string[] = [];

beforeAll(async () => {
  const vars = await devVars();
  stack = await startStack({ token: vars.OTEL_EXPORTER_OTLP_TOKEN, scrapeInterval: '1s' });
  worker = await startWorker(stack.collector.urls.otlpHttp, vars);
  report = await runDrill({
    baseUrl: worker.url,
    prometheusUrl: stack.prometheus.url,
    adminToken: vars.ADMIN_TOKEN,
    faultSeconds: 3,
    concurrency: 4,
    maxRequestsPerFault: 300,
    recoveryTimeoutMillis: 30_000,
    prometheusTimeoutMillis: 90_000,
    log: (line: string) => lines.push(line),
  });
  process.stderr.write(`${lines.join('\n')}\n`);
  // Unexpected server errors are never part of the drill: show their log lines.
  const unhandled = worker.logs.filter((l) => l.includes('unhandled_error'));
  if (unhandled.length) process.stderr.write(`worker unhandled errors (${unhandled.length}):\n${unhandled.slice(0, 10).join('\n')}\n`);
}, 20 * 60_000);

afterAll(async () => {
  await worker?.stop();
  await stopAll();
}, 60_000);

const value = async (expr: string) => {
  const r = await promQuery(stack.prometheus.url, expr);
  return r.length ? Number(r[0]!.value[1]) : 0;
};

describe('npm run drill against the real stack', () => {
  test('every injected fault recovered, with a recovery time from injection', () => {
    expect(report.phases.map((p: any) => p.type)).toEqual(['latency', 'error', 'outage', 'latency', 'error', 'outage']);
    for (const p of report.phases) {
      expect(p.recovered, `${p.type} recovered`).toBe(true);
      expect(p.recoverySeconds).toBeGreaterThanOrEqual(1);
      expect(p.requests).toBeGreaterThan(0);
      expect(p.requests).toBeLessThanOrEqual(300 + 200);
    }
    expect(report.phases.map((p: any) => p.ended)).toEqual(['expired', 'expired', 'cancelled', 'expired', 'expired', 'expired']);
    // No request failed with anything but the storage 503 the faults cause.
    for (const p of report.phases) {
      const codes = Object.keys(p.errorCodes ?? {});
      expect(codes.filter((c) => c !== '503 storage_unavailable'), `${p.type}: ${JSON.stringify(p.errorCodes)}`).toEqual([]);
    }
    // Ingest never failed: under every fault it answered, with a fallback verdict when storage could not record.
    for (const p of report.phases) {
      const ingest = p.byRoute['POST /api/v1/telemetry'] ?? {};
      expect(Object.keys(ingest).filter((s) => s !== '200'), `${p.type}: ingest statuses ${JSON.stringify(ingest)}`).toEqual([]);
    }
    expect(report.phases.find((p: any) => p.type === 'outage').unpersistedIngest).toBeGreaterThan(0);
  });

  test('the storage breaker opened, probed and closed (Prometheus transitions)', async () => {
    const t = (from: string, to: string) => value(`sum(astra_circuit_breaker_transitions_total{name="storage",from_state="${from}",to_state="${to}"})`);
    // At least the two outages open it (error and latency usually do too).
    expect(await t('CLOSED', 'OPEN')).toBeGreaterThanOrEqual(2);
    expect(await t('OPEN', 'HALF_OPEN')).toBeGreaterThanOrEqual(2);
    expect(await t('HALF_OPEN', 'CLOSED')).toBeGreaterThanOrEqual(2);
    // Every opening was followed by a probe and, in the end, a close.
    expect(await t('OPEN', 'HALF_OPEN')).toBeGreaterThanOrEqual(await t('CLOSED', 'OPEN'));
    // The breaker ends closed, and the gauge says so.
    const state = await waitFor(async () => {
      const r = await promQuery(stack.prometheus.url, 'astra_circuit_breaker_state{name="storage"}');
      return r.length && Number(r[0]!.value[1]) === 0 ? r : undefined;
    }, { timeoutMillis: 30_000, description: 'storage breaker gauge back to 0' });
    expect(state.length).toBe(1);
    // /health polling in the drill saw it open too.
    expect(report.phases.some((p: any) => p.breakerStates.includes('OPEN'))).toBe(true);
  });

  test('retries: success, retry and failure outcomes on the read operations', async () => {
    const r = (outcome: string) => value(`sum(astra_retry_attempts_total{outcome="${outcome}"})`);
    expect(await r('success')).toBeGreaterThan(0);
    expect(await r('retry')).toBeGreaterThan(0);
    expect(await r('failure')).toBeGreaterThan(0);
    const endpoints = (await promQuery(stack.prometheus.url, 'sum by (endpoint) (astra_retry_attempts_total)')).map((s) => s.metric.endpoint);
    expect(endpoints).toEqual(expect.arrayContaining(['mission.getPhase', 'mission.sync']));
    // Writes are never retried: no endpoint label outside the idempotent set.
    for (const e of endpoints) expect(['mission.sync', 'mission.getPhase', 'mission.history', 'mission.stats', 'mission.latest', 'mission.ping', 'mission.locate', 'mission.fleet', 'satellite.context', 'satellite.history', 'satellite.stats', 'satellite.latest']).toContain(e);
    expect(await value('sum(astra_retry_latency_seconds_count)')).toBeGreaterThan(0);
  });

  test('chaos injections by type and status, and one recovery time per fault', async () => {
    const inj = (type: string, status: string) => value(`sum(astra_chaos_injections_total{type="${type}",status="${status}"})`);
    for (const type of ['latency', 'error', 'outage']) {
      expect(await inj(type, 'injected'), `${type} injected`).toBe(2);
      expect(await inj(type, 'recovered'), `${type} recovered`).toBe(2);
      expect(await value(`sum(astra_chaos_recovery_time_seconds_count{type="${type}"})`)).toBe(2);
    }
    expect(await inj('outage', 'cancelled')).toBe(1);
    // The histogram's sum is the recovery times the API reported (seconds from injection).
    const reported = report.phases.reduce((a: number, p: any) => a + p.recoverySeconds, 0);
    const sum = await value('sum(astra_chaos_recovery_time_seconds_sum)');
    expect(sum).toBeGreaterThan(reported - 1.5);
    expect(sum).toBeLessThan(reported + 1.5);
  });

  test('recovery actions: breaker opened, isolate fallback, retries that succeeded', async () => {
    const a = (type: string) => value(`sum(astra_recovery_actions_total{action_type="${type}",status="success"})`);
    expect(await a('open_breaker')).toBeGreaterThanOrEqual(2);
    expect(await a('close_breaker')).toBeGreaterThanOrEqual(2);
    expect(await a('fallback_isolate_cache')).toBeGreaterThan(0);
    expect(await a('retry_succeeded')).toBeGreaterThan(0);
    expect(await value('sum(astra_health_check_failures_total{service="storage"})')).toBeGreaterThan(0);
    // Each fault's run of storage failures ended with a success, and how long it lasted was recorded.
    expect(await value('sum(astra_error_resolution_time_seconds_count{error_type="storage_unavailable"})')).toBeGreaterThanOrEqual(4);
  });

  test('circuit_breaker and retry_attempt spans reach Jaeger, retries as attempt ≥ 2', async () => {
    const tag = (span: { tags: { key: string; value: unknown }[] }, key: string) => span.tags.find((t) => t.key === key)?.value;
    const breakerSpans = await waitFor(async () => {
      const traces = await jaegerTraces(stack.jaeger.url, 'astraguard-edge', { operation: 'circuit_breaker', limit: 50 });
      const spans = traces.flatMap((t) => t.spans).filter((s) => s.operationName === 'circuit_breaker');
      return spans.length ? spans : undefined;
    }, { timeoutMillis: 60_000, description: 'circuit_breaker spans in Jaeger' });
    expect(breakerSpans.some((s) => tag(s, 'circuit_breaker.name') === 'storage')).toBe(true);
    const retried = await waitFor(async () => {
      const traces = await jaegerTraces(stack.jaeger.url, 'astraguard-edge', { operation: 'retry_attempt', limit: 200 });
      const spans = traces.flatMap((t) => t.spans).filter((s) => s.operationName === 'retry_attempt' && Number(tag(s, 'retry.attempt')) >= 2);
      return spans.length ? spans : undefined;
    }, { timeoutMillis: 60_000, description: 'retry_attempt spans with attempt ≥ 2 in Jaeger' });
    // Only reads are retried (IDEMPOTENT_OPERATIONS, lib/reliability/retry.ts): of the mission
    // object or of a satellite's, whichever Jaeger lists first.
    for (const span of retried) expect(String(tag(span, 'retry.operation'))).toMatch(/^(mission\.(sync|getPhase|history|stats|latest|ping|locate|fleet)|satellite\.(context|history|stats|latest))$/);
  });

  test('every Reliability & Resilience dashboard query returns data', () => {
    expect(report.dashboard.length).toBe(8);
    for (const row of report.dashboard) expect(row.ok, `${row.panel}: ${row.expr} → ${row.series} series ${row.error ?? ''}`).toBe(true);
    expect(report.ok).toBe(true);
  });
});
