/**
 * The real collector fans out: OTLP/HTTP metrics → Prometheus (remote write), spans → Jaeger.
 * Starts otelcol-astraguard (otel-collector.yaml + collector/auth.yaml), Prometheus and Jaeger v2
 * on free ports (so it runs next to `npm start`), pushes OTLP/JSON like the Worker does
 * (cumulative, fixed service.name / service.instance.id, bearer token) and reads it back by
 * PromQL and by Jaeger's HTTP API.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  jaegerTraces,
  promQuery,
  promSeries,
  sleep,
  startStack,
  stopAll,
  waitFor,
  type Stack,
} from '../support/stack';

const TOKEN = `stack-test-${randomBytes(8).toString('hex')}`;
const SERVICE = 'astraguard-edge';
const INSTANCE = 'stack-test-writer';
const RUN = randomBytes(3).toString('hex'); // metric names unique per run
const COUNTER = `astra_stacktest_${RUN}_requests`;
const HISTOGRAM = `astra_stacktest_${RUN}_duration`;
const UNAUTHORIZED = `astra_stacktest_${RUN}_unauthorized`;

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ token: TOKEN, scrapeInterval: '1s' });
}, 20 * 60_000); // a cold build of the binaries takes minutes

afterAll(stopAll, 60_000);

const nanos = (ms: number) => `${BigInt(ms) * 1_000_000n}`;
const str = (key: string, value: string) => ({ key, value: { stringValue: value } });

/** OTLP/JSON as the Worker's Durable Object pushes it: cumulative, one writer per stream. */
function metricsPayload(opts: { counter: number; histogram: number[]; at: number; start: number; name?: string }) {
  const bounds = [0.1, 0.5, 1];
  const bucketCounts = [0, 0, 0, 0];
  for (const v of opts.histogram) bucketCounts[bounds.findIndex((b) => v <= b) === -1 ? 3 : bounds.findIndex((b) => v <= b)]!++;
  const attributes = [str('route', '/v1/telemetry'), str('status', '200')];
  return {
    resourceMetrics: [
      {
        resource: {
          attributes: [
            str('service.name', SERVICE),
            str('service.instance.id', INSTANCE),
            str('service.version', '0.1.0'),
            str('deployment.environment.name', 'test'),
            str('cloud.provider', 'cloudflare'),
          ],
        },
        scopeMetrics: [
          {
            scope: { name: 'astraguard-edge', version: '0.1.0' },
            metrics: [
              {
                name: opts.name ?? COUNTER,
                unit: '{request}',
                sum: {
                  aggregationTemporality: 2, // CUMULATIVE
                  isMonotonic: true,
                  dataPoints: [
                    { attributes, startTimeUnixNano: nanos(opts.start), timeUnixNano: nanos(opts.at), asInt: String(opts.counter) },
                  ],
                },
              },
              {
                name: HISTOGRAM,
                unit: 's',
                histogram: {
                  aggregationTemporality: 2,
                  dataPoints: [
                    {
                      attributes,
                      startTimeUnixNano: nanos(opts.start),
                      timeUnixNano: nanos(opts.at),
                      count: String(opts.histogram.length),
                      sum: opts.histogram.reduce((a, b) => a + b, 0),
                      bucketCounts: bucketCounts.map(String),
                      explicitBounds: bounds,
                    },
                  ],
                },
              },
            ],
          },
        ],
      },
    ],
  };
}

async function push(path: '/v1/metrics' | '/v1/traces', body: unknown, token: string | undefined) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`${stack.collector.urls.otlpHttp}${path}`, {
    method: 'POST',
    headers,
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, text: await response.text() };
}

describe('collector fan-out', () => {
  test('refuses OTLP without the bearer token (401) when a token is configured', async () => {
    const start = Date.now() - 60_000;
    const payload = metricsPayload({ counter: 7, histogram: [0.2], at: Date.now(), start, name: UNAUTHORIZED });
    expect((await push('/v1/metrics', payload, undefined)).status).toBe(401);
    expect((await push('/v1/metrics', payload, 'wrong-token')).status).toBe(401);
    expect((await push('/v1/traces', { resourceSpans: [] }, undefined)).status).toBe(401);
    // Refusals are visible in the collector's own metrics (level detailed), not only to the sender.
    const refused = await stack.collector.selfMetric('http_server_request_duration_count', {
      http_response_status_code: '401',
      server_port: String(stack.collector.ports.otlpHttp),
    });
    expect(refused).toBe(3);
  });

  test('cumulative counter and histogram reach Prometheus with job/instance and their own labels only', async () => {
    const start = Date.now() - 60_000;
    const first = await push('/v1/metrics', metricsPayload({ counter: 42, histogram: [0.05, 0.3, 0.7], at: Date.now() - 2_000, start }), TOKEN);
    expect(first.status, first.text).toBe(200);
    // A later cumulative point of the same streams (what the next flush of the aggregator sends).
    const second = await push(
      '/v1/metrics',
      metricsPayload({ counter: 50, histogram: [0.05, 0.3, 0.7, 2], at: Date.now(), start }),
      TOKEN,
    );
    expect(second.status, second.text).toBe(200);

    const counter = await waitFor(
      async () => {
        const rows = await promQuery(stack.prometheus.url, `${COUNTER}_total`);
        return rows.length === 1 && rows[0]!.value[1] === '50' ? rows : undefined;
      },
      { timeoutMillis: 30_000, description: `${COUNTER}_total == 50 in Prometheus` },
    ).catch((error: Error) => {
      throw new Error(`${error.message}\ncollector log:\n${stack.collector.logs().slice(-3000)}`);
    });
    expect(counter[0]!.metric).toEqual({
      __name__: `${COUNTER}_total`,
      job: SERVICE,
      instance: INSTANCE,
      route: '/v1/telemetry',
      status: '200',
    });
    // Both cumulative samples were written, in order, none twice.
    const samples = await promQuery(stack.prometheus.url, `count_over_time(${COUNTER}_total[5m])`);
    expect(samples.map((r) => r.value[1])).toEqual(['2']);

    const buckets = await promQuery(stack.prometheus.url, `${HISTOGRAM}_seconds_bucket`);
    const byLe = Object.fromEntries(buckets.map((r) => [r.metric.le, r.value[1]]));
    expect(byLe).toEqual({ '0.1': '1', '0.5': '2', '1': '3', '+Inf': '4' });
    for (const row of buckets) {
      expect(Object.keys(row.metric).sort()).toEqual(['__name__', 'instance', 'job', 'le', 'route', 'status']);
    }
    expect((await promQuery(stack.prometheus.url, `${HISTOGRAM}_seconds_count`))[0]?.value[1]).toBe('4');
    expect(Number((await promQuery(stack.prometheus.url, `${HISTOGRAM}_seconds_sum`))[0]?.value[1])).toBeCloseTo(3.05, 9);

    // Exactly the series we pushed exist for this job: no target_info, no scope info, and no
    // resource attribute (service.version, deployment.environment.name, cloud.provider) as a label.
    const series = await promSeries(stack.prometheus.url, `{job="${SERVICE}"}`);
    expect([...new Set(series.map((s) => s.__name__))].sort()).toEqual(
      [`${COUNTER}_total`, `${HISTOGRAM}_seconds_bucket`, `${HISTOGRAM}_seconds_count`, `${HISTOGRAM}_seconds_sum`].sort(),
    );
    for (const s of series) {
      expect(Object.keys(s).filter((k) => !['__name__', 'job', 'instance', 'route', 'status', 'le'].includes(k))).toEqual([]);
    }
    expect(await promSeries(stack.prometheus.url, '{__name__=~"target_info|otel_scope_info"}')).toEqual([]);
    expect(await promSeries(stack.prometheus.url, '{otel_scope_name=~".+"}')).toEqual([]);

    // The refused push of the first test never arrived.
    expect(await promSeries(stack.prometheus.url, `{__name__=~"${UNAUTHORIZED}.*"}`)).toEqual([]);
  });

  test('Prometheus scrapes the collector’s own metrics as job otelcol', async () => {
    const up = await waitFor(
      async () => {
        const rows = await promQuery(stack.prometheus.url, 'up{job="otelcol"}');
        return rows[0]?.value[1] === '1' ? rows : undefined;
      },
      { timeoutMillis: 20_000, description: 'up{job="otelcol"} == 1' },
    );
    expect(up[0]!.metric.instance).toBe(`127.0.0.1:${stack.collector.ports.metrics}`);
    // The collector counted what it accepted and sent (metric points: 2 pushes × 2 metrics).
    expect(await stack.collector.selfMetric('otelcol_receiver_accepted_metric_points')).toBeGreaterThanOrEqual(4);
    expect(await stack.collector.selfMetric('otelcol_exporter_sent_metric_points')).toBeGreaterThanOrEqual(4);
  });

  test('the collector restarts on the same ports and the series goes on', async () => {
    const { ports } = stack.collector;
    const pidBefore = stack.collector.pid;
    await stack.collector.stop();
    expect(stack.collector.running).toBe(false);
    // Down: the Worker's push fails at the network level (it keeps its cumulative state).
    await expect(push('/v1/metrics', {}, TOKEN)).rejects.toThrow();
    await stack.collector.start();
    expect(stack.collector.pid).not.toBe(pidBefore);
    expect(stack.collector.ports).toEqual(ports);

    const start = Date.now() - 60_000; // same start time: the same cumulative stream
    const pushed = await push('/v1/metrics', metricsPayload({ counter: 60, histogram: [0.05, 0.3, 0.7, 2, 0.2], at: Date.now(), start }), TOKEN);
    expect(pushed.status, pushed.text).toBe(200);
    await waitFor(
      async () => (await promQuery(stack.prometheus.url, `${COUNTER}_total`))[0]?.value[1] === '60',
      { timeoutMillis: 30_000, description: `${COUNTER}_total == 60 after the collector restart` },
    );
    expect((await promQuery(stack.prometheus.url, `count_over_time(${COUNTER}_total[5m])`))[0]?.value[1]).toBe('3');
  });

  test('points pushed while Prometheus is down arrive once it is back (queue + retry)', async () => {
    await stack.prometheus.stop();
    const start = Date.now() - 60_000;
    const pushed = await push('/v1/metrics', metricsPayload({ counter: 75, histogram: [0.05, 0.3, 0.7, 2, 0.2, 0.4], at: Date.now(), start }), TOKEN);
    expect(pushed.status, pushed.text).toBe(200); // accepted into the exporter's queue
    await sleep(1_500); // at least one failed remote-write attempt
    await stack.prometheus.start();
    await waitFor(
      async () => (await promQuery(stack.prometheus.url, `${COUNTER}_total`))[0]?.value[1] === '75',
      { timeoutMillis: 30_000, description: `${COUNTER}_total == 75 after the Prometheus outage` },
    ).catch((error: Error) => {
      throw new Error(`${error.message}\ncollector log:\n${stack.collector.logs().slice(-3000)}`);
    });
    expect((await promQuery(stack.prometheus.url, `count_over_time(${COUNTER}_total[5m])`))[0]?.value[1]).toBe('4');
    expect((await promQuery(stack.prometheus.url, `${HISTOGRAM}_seconds_count`))[0]?.value[1]).toBe('6');
  });

  test('a span reaches Jaeger through the collector', async () => {
    const traceId = randomBytes(16).toString('hex');
    const spanId = randomBytes(8).toString('hex');
    const end = Date.now();
    const response = await push(
      '/v1/traces',
      {
        resourceSpans: [
          {
            resource: { attributes: [str('service.name', SERVICE), str('service.instance.id', INSTANCE)] },
            scopeSpans: [
              {
                scope: { name: 'astraguard-edge', version: '0.1.0' },
                spans: [
                  {
                    traceId,
                    spanId,
                    name: `GET /stacktest/${RUN}`,
                    kind: 2, // SERVER
                    startTimeUnixNano: nanos(end - 25),
                    endTimeUnixNano: nanos(end),
                    attributes: [str('http.request.method', 'GET'), { key: 'http.response.status_code', value: { intValue: '200' } }],
                    status: { code: 1 },
                  },
                ],
              },
            ],
          },
        ],
      },
      TOKEN,
    );
    expect(response.status, response.text).toBe(200);

    const trace = await waitFor(
      async () => (await jaegerTraces(stack.jaeger.url, SERVICE)).find((t) => t.traceID === traceId),
      { timeoutMillis: 30_000, description: `trace ${traceId} in Jaeger` },
    ).catch((error: Error) => {
      throw new Error(`${error.message}\ncollector log:\n${stack.collector.logs().slice(-3000)}`);
    });
    expect(trace.spans).toHaveLength(1);
    const span = trace.spans[0]!;
    expect(span.spanID).toBe(spanId);
    expect(span.operationName).toBe(`GET /stacktest/${RUN}`);
    expect(span.duration).toBe(25_000); // microseconds
    expect(trace.processes[span.processID]?.serviceName).toBe(SERVICE);
    expect(span.tags).toEqual(expect.arrayContaining([{ key: 'http.request.method', type: 'string', value: 'GET' }]));
  });
});
