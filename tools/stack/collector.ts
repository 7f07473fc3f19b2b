/**
 * The AstraGuard collector (`otelcol-astraguard` with otel-collector.yaml).
 * @module
 */
import { stackBinaries } from './binaries.ts';
import { COLLECTOR_AUTH_OVERLAY, COLLECTOR_CONFIG } from './paths.ts';
import { launch, type ProcessCommand, type ProcessOptions, type StackProcess } from './processes.ts';
import { freePort } from './wait.ts';

/** Ports of a collector. */
export interface CollectorPorts {
  otlpGrpc: number;
  otlpHttp: number;
  health: number;
  /** The collector's own metrics (Prometheus text format at /metrics). */
  metrics: number;
}

/** What {@link collectorCommand} needs: everything explicit. */
export interface CollectorCommandOptions {
  binary: string;
  ports: CollectorPorts;
  /** Bearer token the OTLP receiver requires (adds collector/auth.yaml); none: the receiver is open. */
  token?: string;
  /** Where metrics go (Prometheus's remote-write URL). */
  remoteWriteUrl: string;
  /** Jaeger's OTLP/gRPC `host:port`. */
  jaegerOtlpGrpcEndpoint: string;
  /** Config files, in merge order. Default otel-collector.yaml (+ auth.yaml with a token). */
  configFiles?: string[];
  /** Collector log level. Default `info`. */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

/**
 * How the collector is started, by `npm start` and the tests alike: the repository's configs,
 * every endpoint through the env variables otel-collector.yaml reads.
 *
 * @example
 * const spec = collectorCommand({
 *   binary, ports: { otlpGrpc: 4317, otlpHttp: 4318, health: 13133, metrics: 8888 },
 *   token, remoteWriteUrl: 'http://127.0.0.1:9090/api/v1/write', jaegerOtlpGrpcEndpoint: '127.0.0.1:4327',
 * });
 */
export function collectorCommand(options: CollectorCommandOptions): ProcessCommand {
  const { ports } = options;
  const configFiles =
    options.configFiles ?? (options.token ? [COLLECTOR_CONFIG, COLLECTOR_AUTH_OVERLAY] : [COLLECTOR_CONFIG]);
  return {
    name: 'collector',
    command: options.binary,
    args: configFiles.flatMap((file) => ['--config', file]),
    env: {
      OTELCOL_OTLP_GRPC_ENDPOINT: `127.0.0.1:${ports.otlpGrpc}`,
      OTELCOL_OTLP_HTTP_ENDPOINT: `127.0.0.1:${ports.otlpHttp}`,
      OTELCOL_HEALTH_ENDPOINT: `127.0.0.1:${ports.health}`,
      OTELCOL_METRICS_HOST: '127.0.0.1',
      OTELCOL_METRICS_PORT: String(ports.metrics),
      PROMETHEUS_REMOTE_WRITE_URL: options.remoteWriteUrl,
      JAEGER_OTLP_GRPC_ENDPOINT: options.jaegerOtlpGrpcEndpoint,
      OTELCOL_LOG_LEVEL: options.logLevel ?? 'info',
      OTEL_EXPORTER_OTLP_TOKEN: options.token ?? '',
    },
    readyUrl: `http://127.0.0.1:${ports.health}/`,
  };
}

/** Options of {@link startCollector}. */
export interface CollectorOptions extends ProcessOptions {
  /**
   * Bearer token the OTLP receiver requires (adds collector/auth.yaml). Default: none, the
   * receiver is open.
   */
  token?: string;
  /** Where metrics go. Default `http://127.0.0.1:1/api/v1/write` (nowhere: set it). */
  remoteWriteUrl?: string;
  /** Jaeger's OTLP/gRPC `host:port`. Default `127.0.0.1:1` (nowhere: set it). */
  jaegerOtlpGrpcEndpoint?: string;
  /** Fixed ports (e.g. chosen before Prometheus was told where to scrape); free ones otherwise. */
  ports?: Partial<CollectorPorts>;
  /** Config files, in merge order. Default otel-collector.yaml (+ auth.yaml with a token). */
  configFiles?: string[];
  /** Collector log level. Default `info`. */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

/** A running collector. */
export interface CollectorHandle extends StackProcess {
  ports: CollectorPorts;
  urls: {
    /** Base URL for OTLP/HTTP: POST `${otlpHttp}/v1/metrics`, `/v1/traces`. */
    otlpHttp: string;
    /** `127.0.0.1:port` for OTLP/gRPC. */
    otlpGrpc: string;
    /** health_check endpoint (200 when ready). */
    health: string;
    /** The collector's own metrics, Prometheus text format. */
    metrics: string;
  };
  /** The token the receiver requires, if any. */
  token: string | undefined;
  /** Parsed own metrics: `selfMetric('otelcol_receiver_refused_metric_points')` sums the samples of that name. */
  selfMetric(name: string, labels?: Record<string, string>): Promise<number>;
}

/**
 * Starts `otelcol-astraguard` with the repository's otel-collector.yaml (and collector/auth.yaml
 * when `token` is set) on free ports, and waits until its health_check answers 200.
 * `stop()`/`start()`/`restart({ downMillis })` keep the same ports and config.
 *
 * @example
 * const collector = await startCollector({
 *   token: 't0ken',
 *   remoteWriteUrl: prometheus.remoteWriteUrl,
 *   jaegerOtlpGrpcEndpoint: jaeger.otlpGrpcEndpoint,
 * });
 * await collector.restart({ downMillis: 10_000 }); // same ports afterwards
 */
export async function startCollector(options: CollectorOptions = {}): Promise<CollectorHandle> {
  const binary = options.binary ?? (await stackBinaries()).collector;
  const ports: CollectorPorts = {
    otlpGrpc: options.ports?.otlpGrpc ?? (await freePort()),
    otlpHttp: options.ports?.otlpHttp ?? (await freePort()),
    health: options.ports?.health ?? (await freePort()),
    metrics: options.ports?.metrics ?? (await freePort()),
  };
  const urls = {
    otlpHttp: `http://127.0.0.1:${ports.otlpHttp}`,
    otlpGrpc: `127.0.0.1:${ports.otlpGrpc}`,
    health: `http://127.0.0.1:${ports.health}/`,
    metrics: `http://127.0.0.1:${ports.metrics}/metrics`,
  };
  const managed = await launch(
    'collector',
    () =>
      collectorCommand({
        binary,
        ports,
        token: options.token,
        remoteWriteUrl: options.remoteWriteUrl ?? 'http://127.0.0.1:1/api/v1/write',
        jaegerOtlpGrpcEndpoint: options.jaegerOtlpGrpcEndpoint ?? '127.0.0.1:1',
        configFiles: options.configFiles,
        logLevel: options.logLevel,
      }),
    options,
  );
  return Object.assign(managed, {
    ports,
    urls,
    token: options.token,
    selfMetric: (name: string, labels: Record<string, string> = {}) => scrapeSum(urls.metrics, name, labels),
  });
}

/**
 * Sum of the samples named `name` (exactly; no suffix matching) in a Prometheus text-format
 * page whose labels include `labels`. 0 when there are none.
 *
 * @example
 * await scrapeSum(collector.urls.metrics, 'otelcol_receiver_accepted_spans', { transport: 'http' });
 */
export async function scrapeSum(url: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (!response.ok) throw new Error(`GET ${url}: ${response.status}`);
  const text = await response.text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = Object.fromEntries(
      [...(match[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(match[4]);
  }
  return sum;
}
