/**
 * Jaeger v2 with jaeger/config.yaml (in-memory storage), and a traces helper.
 * @module
 */
import { stackBinaries } from './binaries.ts';
import { JAEGER_CONFIG } from './paths.ts';
import { launch, type ProcessCommand, type ProcessOptions, type StackProcess } from './processes.ts';
import { freePort } from './wait.ts';

/** Ports of a Jaeger. */
export interface JaegerPorts {
  otlpGrpc: number;
  otlpHttp: number;
  queryHttp: number;
  queryGrpc: number;
  health: number;
  metrics: number;
}

/**
 * How Jaeger is started, by `npm start` and the tests alike: the repository's config, every
 * endpoint through the env variables jaeger/config.yaml reads.
 *
 * @example
 * const spec = jaegerCommand({ binary, ports: { otlpGrpc: 4327, otlpHttp: 4328, queryHttp: 16686, queryGrpc: 16685, health: 13134, metrics: 8889 } });
 */
export function jaegerCommand(options: { binary: string; ports: JaegerPorts }): ProcessCommand {
  const { ports } = options;
  return {
    name: 'jaeger',
    command: options.binary,
    args: ['--config', JAEGER_CONFIG],
    env: {
      JAEGER_OTLP_GRPC_ENDPOINT: `127.0.0.1:${ports.otlpGrpc}`,
      JAEGER_OTLP_HTTP_ENDPOINT: `127.0.0.1:${ports.otlpHttp}`,
      JAEGER_QUERY_HTTP_ENDPOINT: `127.0.0.1:${ports.queryHttp}`,
      JAEGER_QUERY_GRPC_ENDPOINT: `127.0.0.1:${ports.queryGrpc}`,
      JAEGER_HEALTH_ENDPOINT: `127.0.0.1:${ports.health}`,
      JAEGER_METRICS_HOST: '127.0.0.1',
      JAEGER_METRICS_PORT: String(ports.metrics),
    },
    readyUrl: `http://127.0.0.1:${ports.queryHttp}/api/services`,
  };
}

/** Options of {@link startJaeger}. */
export interface JaegerOptions extends ProcessOptions {
  ports?: Partial<JaegerPorts>;
}

/** A running Jaeger. */
export interface JaegerHandle extends StackProcess {
  ports: JaegerPorts;
  /** Query UI/API base URL, e.g. `http://127.0.0.1:41235`. */
  url: string;
  /** `127.0.0.1:port` of its OTLP/gRPC receiver, for the collector. */
  otlpGrpcEndpoint: string;
}

/**
 * Starts Jaeger v2 with the repository's jaeger/config.yaml (in-memory storage) on free ports and
 * waits until its query API answers. Its traces are lost on `restart()` (in-memory).
 *
 * @example
 * const jaeger = await startJaeger();
 * await jaegerTraces(jaeger.url, 'astraguard-edge');
 */
export async function startJaeger(options: JaegerOptions = {}): Promise<JaegerHandle> {
  const binary = options.binary ?? (await stackBinaries()).jaeger;
  const ports: JaegerPorts = {
    otlpGrpc: options.ports?.otlpGrpc ?? (await freePort()),
    otlpHttp: options.ports?.otlpHttp ?? (await freePort()),
    queryHttp: options.ports?.queryHttp ?? (await freePort()),
    queryGrpc: options.ports?.queryGrpc ?? (await freePort()),
    health: options.ports?.health ?? (await freePort()),
    metrics: options.ports?.metrics ?? (await freePort()),
  };
  const managed = await launch('jaeger', () => jaegerCommand({ binary, ports }), options);
  return Object.assign(managed, {
    ports,
    url: `http://127.0.0.1:${ports.queryHttp}`,
    otlpGrpcEndpoint: `127.0.0.1:${ports.otlpGrpc}`,
  });
}

/** A span as Jaeger's HTTP API (`/api/traces`) returns it. */
export interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  startTime: number;
  duration: number;
  processID: string;
  references: { refType: string; traceID: string; spanID: string }[];
  tags: { key: string; type: string; value: unknown }[];
}

/** A trace as Jaeger's HTTP API returns it. */
export interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string; tags: { key: string; type: string; value: unknown }[] }>;
}

/**
 * Traces of `service` (`GET /api/traces?service=...`), newest first as Jaeger returns them.
 * An unknown service gives `[]`.
 *
 * @example
 * const traces = await jaegerTraces(jaeger.url, 'astraguard-edge', { operation: 'GET /health' });
 */
export async function jaegerTraces(
  url: string,
  service: string,
  options: { operation?: string; limit?: number; lookback?: string } = {},
): Promise<JaegerTrace[]> {
  const params = new URLSearchParams({ service, limit: String(options.limit ?? 100), lookback: options.lookback ?? '1h' });
  if (options.operation) params.set('operation', options.operation);
  const response = await fetch(`${url}/api/traces?${params}`, { signal: AbortSignal.timeout(10_000) });
  const body = (await response.json()) as { data: JaegerTrace[] | null; errors?: { msg: string }[] | null };
  // Jaeger answers an unknown service with 404 / an error entry: that is "no traces yet".
  if (!response.ok && !(response.status === 404 || body.errors?.some((e) => /not found/i.test(e.msg)))) {
    throw new Error(`GET /api/traces?service=${service}: ${response.status} ${JSON.stringify(body.errors)}`);
  }
  return body.data ?? [];
}
