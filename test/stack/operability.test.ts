/**
 * Push that operates like scrape, against the real stack: collector, Prometheus (with the
 * project's rules, evaluated every second), Alertmanager and the alert webhook
 * (scripts/alert-webhook.mjs), and the Worker's deploy bundle in Miniflare.
 *
 * 1. After ordinary traffic and a few operator labels, with no fault, every dashboard panel
 *    query answers with finite values, except the ones that cannot by their own construction
 *    (asserted as such, see the README's dashboard notes).
 * 2. Idle: with no request at all for longer than two keepalive periods, every astra_* series
 *    still has a recent sample and every counter still equals what was sent.
 * 3. Alert delivery: a real storage outage (chaos API) opens the storage breaker; the
 *    AstraCircuitBreakerOpen rule fires in Prometheus, reaches Alertmanager, arrives at the
 *    webhook, and resolves there after the fault ends.
 *
 * Every process started here is stopped in afterAll, by the handle that started it. Load loops
 * are bounded in count and time.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startWorker, type WorkerHandle } from '../support/miniflare-isolates';
import {
  REPO_ROOT,
  devVars,
  promQuery,
  sleep,
  startAlertWebhook,
  startAlertmanager,
  startStack,
  stopAll,
  waitFor,
  type AlertWebhookHandle,
  type Stack,
} from '../support/stack';

/** The aggregator's keepalive period (lib/objects/metrics-aggregator.ts, aggregatorConfig). */
const KEEPALIVE_SECONDS = 15;
const IDLE_MILLIS = 2 * KEEPALIVE_SECONDS * 1000 + 10_000;

let stack: Stack;
let worker: WorkerHandle | undefined;
let webhook: AlertWebhookHandle;
let vars: Record<string, string>;
const sent = { single: 0, batch: 0, labels: 0, falsePositives: 0 };

const post = (path: string, body: unknown, token?: string) =>
  fetch(`${worker!.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token && { authorization: `Bearer ${token}` }) },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });

const value = async (expr: string): Promise<number | undefined> => {
  const r = await promQuery(stack.prometheus.url, expr);
  return r.length ? Number(r[0]!.value[1]) : undefined;
};

/** Every panel query of the repository's dashboards, with its panel title. */
async function panelQueries(): Promise<{ dashboard: string; panel: string; expr: string }[]> {
  const out: { dashboard: string; panel: string; expr: string }[] = [];
  for (const file of ['service-health.json', 'reliability-resilience.json', 'anomaly-detection.json']) {
    const dashboard = JSON.parse(await readFile(join(REPO_ROOT, 'grafana/dashboards', file), 'utf8'));
    for (const panel of dashboard.panels ?? []) for (const t of panel.targets ?? []) if (t.expr) out.push({ dashboard: file, panel: panel.title, expr: t.expr });
  }
  return out;
}

beforeAll(async () => {
  vars = await devVars();
  webhook = await startAlertWebhook();
  const alertmanager = await startAlertmanager({ webhookUrl: webhook.url, groupWait: '1s', groupInterval: '2s' });
  stack = await startStack({
    token: vars.OTEL_EXPORTER_OTLP_TOKEN,
    scrapeInterval: '1s',
    prometheus: { evaluationInterval: '1s', alertmanager: alertmanager.target },
  });
  worker = await startWorker(stack.collector.urls.otlpHttp, vars);

  // Ordinary traffic in two rounds a push apart (as steady traffic is: rate() needs an increase
  // between two samples): nominal points, a few out-of-band ones (MEDIUM, no escalation),
  // batches, reads; then operator labels on some detections, one of them a false positive.
  const anomalies: string[] = [];
  const round = async () => {
    for (let i = 0; i < 20; i++) {
      const reading = i % 8 === 3 ? { voltage: 21.5, temperature: 22, gyro: 0.1 } : { voltage: 28, temperature: 20, gyro: 0.1 };
      const r = await post('/api/v1/telemetry', { ...reading, satellite_id: `sat-${i % 3}` });
      expect(r.status).toBe(200);
      const body = (await r.json()) as { id: string; is_anomaly: boolean };
      if (body.is_anomaly) anomalies.push(body.id);
      sent.single++;
    }
    for (let i = 0; i < 2; i++) {
      const r = await post('/api/v1/telemetry/batch', { telemetry: [{ voltage: 28, temperature: 20, gyro: 0 }, { voltage: 27.5, temperature: 21, gyro: 0.2 }] });
      expect(r.status).toBe(200);
      await r.arrayBuffer();
      sent.batch++;
    }
    for (const path of ['/health', '/api/v1/status', '/api/v1/phase', '/api/v1/history/anomalies?limit=5']) await (await fetch(`${worker!.url}${path}`)).arrayBuffer();
  };
  await round();
  // The first round, the declared zeros included, reaches Prometheus before the second.
  await waitFor(async () => (await value('sum(astra_http_requests_total{endpoint="/api/v1/telemetry",method="POST"})')) === sent.single, {
    timeoutMillis: 60_000,
    description: 'first round counted in Prometheus',
  });
  expect((await promQuery(stack.prometheus.url, 'astra_false_positives_total')).length).toBe(16);
  await round();
  expect(anomalies.length).toBeGreaterThanOrEqual(3);
  for (const [i, id] of anomalies.slice(0, 3).entries()) {
    const r = await post(`/api/v1/anomalies/${id}/feedback`, { false_positive: i === 0 }, vars.OPERATOR_TOKEN);
    expect(r.status).toBe(200);
    await r.arrayBuffer();
    sent.labels++;
    if (i === 0) sent.falsePositives++;
  }
  // Everything sent is in Prometheus (the flush and the aggregator push take about a second).
  await waitFor(async () => (await value('sum(astra_http_requests_total{endpoint="/api/v1/telemetry",method="POST"})')) === sent.single, {
    timeoutMillis: 60_000,
    description: 'ingest requests counted in Prometheus',
  });
  await waitFor(async () => (await value('astra_detection_accuracy')) !== undefined, { timeoutMillis: 60_000, description: 'accuracy gauge' });
  // rate() needs two samples of each series inside its window: the next keepalive push brings them.
  await waitFor(async () => (await promQuery(stack.prometheus.url, 'rate(astra_false_positives_total[5m])')).length === 16, {
    timeoutMillis: 2 * KEEPALIVE_SECONDS * 1000 + 30_000,
    description: 'a second sample of every series',
  });
}, 20 * 60_000);

afterAll(async () => {
  await worker?.stop();
  await stopAll();
}, 60_000);

describe('a healthy stack after ordinary traffic and a few labels', () => {
  test('every panel query answers with finite values, except the ones that cannot by construction', async () => {
    // Error Rate and Retry Rate divide each series by itself (README, dashboard notes): 1 where
    // 500s/retries happened, else nothing (Error Rate) or 0/0 = NaN (Retry Rate: its series are
    // declared at 0). Recovery Time has no observation before the first chaos recovery.
    const byConstruction = new Set(['Error Rate', 'Retry Rate', 'Recovery Time (Chaos Injection)']);
    const results: string[] = [];
    for (const q of await panelQueries()) {
      const rows = await promQuery(stack.prometheus.url, q.expr);
      const values = rows.map((r) => Number(r.value[1]));
      results.push(`${q.panel}: ${values.length} series ${values.slice(0, 3).join(',')}`);
      if (byConstruction.has(q.panel)) continue;
      expect(values.length, `${q.panel} (${q.expr}) has data`).toBeGreaterThan(0);
      // A per-route quantile is NaN for a route with no request in the window (as with scrape);
      // the routes that served traffic in it are finite.
      const live = rows.filter((r) => !r.metric.endpoint?.startsWith('/') || r.metric.endpoint.startsWith('/api/v1/telemetry'));
      expect(live.length, `${q.panel}: ingest series`).toBeGreaterThan(0);
      expect(live.every((r) => Number.isFinite(Number(r.value[1]))), `${q.panel} (${q.expr}) is finite: ${values}`).toBe(true);
    }
    const retryRate = await promQuery(stack.prometheus.url, 'rate(astra_retry_attempts_total{outcome="retry"}[5m]) / rate(astra_retry_attempts_total[5m])');
    expect(retryRate.length).toBeGreaterThan(0);
    expect(retryRate.every((r) => Number.isNaN(Number(r.value[1])))).toBe(true);
    process.stderr.write(`panel queries:\n  ${results.join('\n  ')}\n`);
  });

  test('False Positive Rate reads the real share; the 5xx recording rule answers 0', async () => {
    // One labelled false positive: the panel's per-series ratio is above 0 for its
    // {severity, detector} only, and 0 (not "No data") for the 15 others.
    const fp = await promQuery(stack.prometheus.url, 'rate(astra_false_positives_total[5m]) / (rate(astra_anomalies_detected_total[5m]) + 0.0001)');
    expect(fp.length).toBe(16); // every {severity, detector}, declared at 0
    const positive = fp.filter((r) => Number(r.value[1]) > 0);
    expect(positive).toHaveLength(1);
    expect(fp.filter((r) => Number(r.value[1]) === 0)).toHaveLength(15);
    const { severity, detector } = positive[0]!.metric;
    expect(await value(`astra_anomalies_detected_total{severity="${severity}",detector="${detector}"}`)).toBeGreaterThan(0);
    expect(await value('sum(astra_false_positives_total)')).toBe(sent.falsePositives);
    await waitFor(async () => (await value('astra:http_5xx:ratio_rate5m')) === 0, { timeoutMillis: 30_000, description: '5xx ratio rule' });
  });
});

describe('idle: no request for two keepalive periods', () => {
  test('every astra_* series stays fresh and every counter equals what was sent', async () => {
    const before = await promQuery(stack.prometheus.url, 'count by (__name__) ({__name__=~"astra_.+"})');
    const requestsBefore = await value('sum(astra_http_requests_total)');
    await sleep(IDLE_MILLIS);
    const after = await promQuery(stack.prometheus.url, 'count by (__name__) ({__name__=~"astra_.+"})');
    expect(Object.fromEntries(after.map((r) => [r.metric.__name__, r.value[1]]))).toEqual(Object.fromEntries(before.map((r) => [r.metric.__name__, r.value[1]])));
    // Per metric, the oldest newest-sample of its series: within one keepalive plus the push.
    for (const { metric } of after) {
      const age = await value(`max(time() - timestamp(${metric.__name__}))`);
      expect(age, metric.__name__).toBeLessThan(KEEPALIVE_SECONDS + 10);
    }
    expect(await value('sum(astra_http_requests_total{endpoint="/api/v1/telemetry",method="POST"})')).toBe(sent.single);
    expect(await value('sum(astra_http_requests_total{endpoint="/api/v1/telemetry/batch",method="POST"})')).toBe(sent.batch);
    expect(await value('sum(astra_http_requests_total)')).toBe(requestsBefore);
    expect(await value('astra_detection_accuracy')).toBeCloseTo((sent.labels - sent.falsePositives) / sent.labels, 6);
    // The heartbeat says the pipeline is alive although nothing happened.
    expect(await value('time() - max(astra_telemetry_push_timestamp_seconds)')).toBeLessThan(KEEPALIVE_SECONDS + 10);
    const silent = await promQuery(stack.prometheus.url, 'ALERTS{alertname="AstraTelemetryPipelineSilent"}');
    expect(silent).toEqual([]);
  });
});

describe('alert delivery, end to end', () => {
  test('a storage outage fires AstraCircuitBreakerOpen through Alertmanager to the webhook, and it resolves', async () => {
    const admin = vars.ADMIN_TOKEN;
    const injected = await post('/api/v1/chaos', { type: 'outage', target: 'storage', duration_s: 240 }, admin);
    expect(injected.status).toBe(201);
    await injected.arrayBuffer();
    const isFor = (status: string) => (alerts: Awaited<ReturnType<AlertWebhookHandle['received']>>) =>
      alerts.find((a) => a.alertname === 'AstraCircuitBreakerOpen' && a.labels.name === 'storage' && a.status === status);

    /** Paced traffic (4 req/s, bounded) until `done` answers or the deadline passes. */
    const drive = async (done: () => Promise<unknown>, deadlineMillis: number, description: string) => {
      const deadline = Date.now() + deadlineMillis;
      for (let i = 0; i < deadlineMillis / 250; i++) {
        const found = await done();
        if (found) return found;
        if (Date.now() > deadline) break;
        const r = await post('/api/v1/telemetry', { voltage: 28, temperature: 20, gyro: 0.1 }).catch(() => undefined);
        await r?.arrayBuffer();
        await sleep(250);
      }
      throw new Error(`${description}: not within ${deadlineMillis / 1000} s\n${webhook.logs().slice(-2000)}`);
    };

    // The breaker's gauge must read 1 for the rule's whole `for: 1m`.
    const firing = await drive(async () => isFor('firing')(await webhook.received()), 180_000, 'firing alert at the webhook');
    expect(firing).toMatchObject({ severity: expect.any(String), summary: expect.stringContaining('storage') });
    const inPrometheus = await promQuery(stack.prometheus.url, 'ALERTS{alertname="AstraCircuitBreakerOpen",alertstate="firing",name="storage"}');
    expect(inPrometheus).toHaveLength(1);

    const ended = await fetch(`${worker!.url}/api/v1/chaos`, { method: 'DELETE', headers: { authorization: `Bearer ${admin}` } });
    expect(ended.status).toBe(200);
    await ended.arrayBuffer();
    const resolved = await drive(async () => isFor('resolved')(await webhook.received()), 120_000, 'resolved alert at the webhook');
    expect(resolved).toMatchObject({ labels: expect.objectContaining({ name: 'storage' }) });
    expect(await value('max(astra_circuit_breaker_state{name="storage"})')).toBe(0);
  });
});
