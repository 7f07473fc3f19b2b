/**
 * The production collector overlay (collector/production.yaml) for real: a self-signed
 * certificate made here (openssl), the collector started with
 * `--config otel-collector.yaml --config collector/production.yaml` on free ports (every
 * endpoint of the overlay is overridable by env), Prometheus and Jaeger from tools/stack.
 * OTLP/JSON over HTTPS (node:https with the test CA) without the token → 401, with it → 200;
 * the metric is found in Prometheus by PromQL and the span in Jaeger by its API. The collector
 * refuses to start without a token, a certificate or the remote-write credential.
 *
 * Not covered here (they need real infrastructure): remote write over TLS (it goes to the test
 * Prometheus over plain HTTP through a recording proxy, which checks the credential the collector
 * sends), the trace exporter over TLS (Jaeger is plain gRPC on loopback: JAEGER_OTLP_INSECURE=true),
 * a CA-signed certificate and its renewal (reload_interval), and a Worker on Cloudflare pushing
 * across the internet.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  COLLECTOR_CONFIG,
  freePort,
  jaegerTraces,
  portFree,
  promQuery,
  REPO_ROOT,
  stackBinaries,
  startCollector,
  startJaeger,
  startPrometheus,
  stopAll,
  waitFor,
  type CollectorHandle,
  type JaegerHandle,
  type PrometheusHandle,
} from '../support/stack';

const PRODUCTION_OVERLAY = join(REPO_ROOT, 'collector/production.yaml');
const TOKEN = `tls-test-${randomBytes(8).toString('hex')}`;
const REMOTE_WRITE_TOKEN = `rw-${randomBytes(8).toString('hex')}`;
const RUN = randomBytes(3).toString('hex');
const COUNTER = `astra_tlstest_${RUN}_requests`;
const SERVICE = 'astraguard-edge';

let dir: string;
let ca: Buffer;
let certFile: string;
let keyFile: string;
let prometheus: PrometheusHandle;
let jaeger: JaegerHandle;
let collector: CollectorHandle;
let proxy: Server;
const remoteWriteHeaders: IncomingHttpHeaders[] = [];

/** The env the overlay needs, with the test's files and tokens. */
function productionEnv(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    OTELCOL_TLS_CERT_FILE: certFile,
    OTELCOL_TLS_KEY_FILE: keyFile,
    PROMETHEUS_REMOTE_WRITE_TOKEN: REMOTE_WRITE_TOKEN,
    JAEGER_OTLP_INSECURE: 'true',
    OTELCOL_MEMORY_LIMIT_MIB: '400',
    OTELCOL_MEMORY_SPIKE_MIB: '80',
    ...overrides,
  };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'astraguard-tls-'));
  certFile = join(dir, 'otel.crt');
  keyFile = join(dir, 'otel.key');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    '-keyout', keyFile, '-out', certFile,
  ], { stdio: 'pipe' });
  ca = await readFile(certFile);

  const metricsPort = await freePort();
  prometheus = await startPrometheus({ scrapeCollector: `127.0.0.1:${metricsPort}`, scrapeInterval: '1s' });
  jaeger = await startJaeger();

  // Remote write passes through a recording proxy, so the test sees the credential the collector sends.
  const proxyPort = await freePort();
  proxy = createServer((req, res) => {
    remoteWriteHeaders.push(req.headers);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (const name of ['content-type', 'content-encoding', 'x-prometheus-remote-write-version', 'user-agent']) {
        const value = req.headers[name];
        if (typeof value === 'string') headers[name] = value;
      }
      fetch(prometheus.remoteWriteUrl, { method: 'POST', headers, body: Buffer.concat(chunks) })
        .then(async (r) => {
          res.writeHead(r.status);
          res.end(Buffer.from(await r.arrayBuffer()));
        })
        .catch(() => {
          res.writeHead(502);
          res.end();
        });
    });
  });
  await new Promise<void>((resolve) => proxy.listen(proxyPort, '127.0.0.1', resolve));

  collector = await startCollector({
    configFiles: [COLLECTOR_CONFIG, PRODUCTION_OVERLAY],
    token: TOKEN,
    remoteWriteUrl: `http://127.0.0.1:${proxyPort}/api/v1/write`,
    jaegerOtlpGrpcEndpoint: jaeger.otlpGrpcEndpoint,
    ports: { metrics: metricsPort },
    env: productionEnv(),
  });
}, 20 * 60_000);

afterAll(async () => {
  await stopAll();
  await new Promise<void>((resolve) => (proxy ? proxy.close(() => resolve()) : resolve()));
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

/** POST OTLP/JSON over HTTPS, trusting only the test's self-signed certificate. */
function pushTls(path: '/v1/metrics' | '/v1/traces', body: unknown, token?: string): Promise<{ status: number; text: string }> {
  const payload = JSON.stringify(body);
  const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port: collector.ports.otlpHttp, path, method: 'POST', headers, ca, timeout: 10_000 },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(payload);
  });
}

const nanos = (ms: number) => `${BigInt(ms) * 1_000_000n}`;
const str = (key: string, value: string) => ({ key, value: { stringValue: value } });
const resource = { attributes: [str('service.name', SERVICE), str('service.instance.id', 'tls-test-writer')] };

function metrics(value: number) {
  return {
    resourceMetrics: [{
      resource,
      scopeMetrics: [{
        scope: { name: 'astraguard-edge' },
        metrics: [{
          name: COUNTER,
          sum: {
            aggregationTemporality: 2,
            isMonotonic: true,
            dataPoints: [{ attributes: [str('route', '/tls')], startTimeUnixNano: nanos(Date.now() - 60_000), timeUnixNano: nanos(Date.now()), asInt: String(value) }],
          },
        }],
      }],
    }],
  };
}

describe('production collector overlay (TLS, mandatory auth)', () => {
  test('HTTPS only: plain HTTP on the OTLP port is refused, the certificate must be trusted, gRPC is off', async () => {
    const plain = await fetch(`http://127.0.0.1:${collector.ports.otlpHttp}/v1/metrics`, { method: 'POST', body: '{}' });
    expect(plain.status).toBe(400); // Go: "Client sent an HTTP request to an HTTPS server."
    // Without the CA, the self-signed certificate is not trusted.
    await expect(fetch(`https://127.0.0.1:${collector.ports.otlpHttp}/v1/metrics`, { method: 'POST', body: '{}' })).rejects.toThrow();
    expect(await portFree(collector.ports.otlpGrpc)).toBe(true);
  });

  test('without the token (or with a wrong one) → 401; nothing arrives', async () => {
    expect((await pushTls('/v1/metrics', metrics(1))).status).toBe(401);
    expect((await pushTls('/v1/metrics', metrics(1), 'wrong')).status).toBe(401);
    expect((await pushTls('/v1/traces', { resourceSpans: [] })).status).toBe(401);
  });

  test('with the token → 200, and the metric reaches Prometheus with the remote-write credential', async () => {
    const pushed = await pushTls('/v1/metrics', metrics(42), TOKEN);
    expect(pushed.status, pushed.text).toBe(200);
    const rows = await waitFor(
      async () => {
        const r = await promQuery(prometheus.url, `${COUNTER}_total`);
        return r[0]?.value[1] === '42' ? r : undefined;
      },
      { timeoutMillis: 30_000, description: `${COUNTER}_total == 42` },
    ).catch((error: Error) => {
      throw new Error(`${error.message}\ncollector log:\n${collector.logs().slice(-3000)}`);
    });
    expect(rows[0]!.metric).toEqual({ __name__: `${COUNTER}_total`, job: SERVICE, instance: 'tls-test-writer', route: '/tls' });
    expect(remoteWriteHeaders.length).toBeGreaterThan(0);
    expect(remoteWriteHeaders.every((h) => h.authorization === `Bearer ${REMOTE_WRITE_TOKEN}`)).toBe(true);
  });

  test('with the token → 200, and the span reaches Jaeger', async () => {
    const traceId = randomBytes(16).toString('hex');
    const end = Date.now();
    const pushed = await pushTls(
      '/v1/traces',
      {
        resourceSpans: [{
          resource,
          scopeSpans: [{
            scope: { name: 'astraguard-edge' },
            spans: [{ traceId, spanId: randomBytes(8).toString('hex'), name: `POST /tls/${RUN}`, kind: 2, startTimeUnixNano: nanos(end - 10), endTimeUnixNano: nanos(end), status: { code: 1 } }],
          }],
        }],
      },
      TOKEN,
    );
    expect(pushed.status, pushed.text).toBe(200);
    const trace = await waitFor(
      async () => (await jaegerTraces(jaeger.url, SERVICE)).find((t) => t.traceID === traceId),
      { timeoutMillis: 30_000, description: `trace ${traceId} in Jaeger` },
    ).catch((error: Error) => {
      throw new Error(`${error.message}\ncollector log:\n${collector.logs().slice(-3000)}`);
    });
    expect(trace.spans.map((s) => s.operationName)).toEqual([`POST /tls/${RUN}`]);
  });

  test('refuses to start without the OTLP token, the certificate or the remote-write credential', async () => {
    const binary = (await stackBinaries()).collector;
    const validate = (env: Record<string, string>) =>
      spawnSync(binary, ['validate', '--config', COLLECTOR_CONFIG, '--config', PRODUCTION_OVERLAY], {
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, OTEL_EXPORTER_OTLP_TOKEN: TOKEN, ...productionEnv(), ...env },
      });
    expect(validate({}).status).toBe(0);
    const noToken = validate({ OTEL_EXPORTER_OTLP_TOKEN: '' });
    expect(noToken.status).not.toBe(0);
    expect(noToken.stderr).toContain('extensions::bearertokenauth: no bearer token provided');
    const noCert = validate({ OTELCOL_TLS_CERT_FILE: '' });
    expect(noCert.status).not.toBe(0);
    expect(noCert.stderr).toContain('TLS configuration must include both certificate and key');
    const noRemoteWriteToken = validate({ PROMETHEUS_REMOTE_WRITE_TOKEN: '' });
    expect(noRemoteWriteToken.status).not.toBe(0);
    expect(noRemoteWriteToken.stderr).toContain('bearertokenauth/remote_write: no bearer token provided');
    // Not only validate: the process itself exits before it is ready.
    await expect(
      startCollector({
        configFiles: [COLLECTOR_CONFIG, PRODUCTION_OVERLAY],
        token: '',
        env: productionEnv(),
        readyTimeoutMillis: 20_000,
      }),
    ).rejects.toThrow(/exited|ready/);
  }, 120_000);
});
