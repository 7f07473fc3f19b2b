/**
 * The three telemetry backends wired like `npm start` wires them, on free ports.
 * @module
 */
import { stackBinaries } from './binaries.ts';
import { startCollector, type CollectorHandle, type CollectorOptions, type CollectorPorts } from './collector.ts';
import { startJaeger, type JaegerHandle, type JaegerOptions } from './jaeger.ts';
import { startPrometheus, type PrometheusHandle, type PrometheusOptions } from './prometheus.ts';
import type { StackProcess } from './processes.ts';
import { freePort } from './wait.ts';

/** The three backends, wired like `npm start` wires them, on free ports. */
export interface Stack {
  collector: CollectorHandle;
  prometheus: PrometheusHandle;
  jaeger: JaegerHandle;
  /** Disposes all three. */
  stop(): Promise<void>;
}

/** Options of {@link startStack}. */
export interface StackOptions {
  /** Bearer token the collector requires (recommended: the Worker side sends one). */
  token?: string;
  /** Prometheus scrape interval for the collector's own metrics. Default `'2s'`. */
  scrapeInterval?: string;
  collector?: Omit<CollectorOptions, 'token' | 'remoteWriteUrl' | 'jaegerOtlpGrpcEndpoint'>;
  prometheus?: Omit<PrometheusOptions, 'scrapeCollector' | 'scrapeInterval'>;
  jaeger?: JaegerOptions;
}

/**
 * Builds what is missing, then starts Prometheus and Jaeger, then the collector exporting to
 * them (Prometheus scrapes the collector's own metrics as job `otelcol`). On failure, whatever
 * did start is disposed.
 *
 * @example
 * const stack = await startStack({ token: 'test-token' });
 * await fetch(`${stack.collector.urls.otlpHttp}/v1/metrics`, { method: 'POST', ... });
 * await stack.stop();
 */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  await stackBinaries();
  const collectorPorts: CollectorPorts = {
    otlpGrpc: await freePort(),
    otlpHttp: await freePort(),
    health: await freePort(),
    metrics: await freePort(),
    ...options.collector?.ports,
  };
  const started: StackProcess[] = [];
  try {
    const [p, j] = await Promise.allSettled([
      startPrometheus({
        ...options.prometheus,
        scrapeCollector: `127.0.0.1:${collectorPorts.metrics}`,
        scrapeInterval: options.scrapeInterval ?? '2s',
      }),
      startJaeger(options.jaeger),
    ]);
    if (p.status === 'fulfilled') started.push(p.value);
    if (j.status === 'fulfilled') started.push(j.value);
    if (p.status === 'rejected') throw p.reason;
    if (j.status === 'rejected') throw j.reason;
    const prometheus = p.value;
    const jaeger = j.value;
    const collector = await startCollector({
      ...options.collector,
      ports: collectorPorts,
      token: options.token,
      remoteWriteUrl: prometheus.remoteWriteUrl,
      jaegerOtlpGrpcEndpoint: jaeger.otlpGrpcEndpoint,
    });
    started.push(collector);
    return {
      collector,
      prometheus,
      jaeger,
      stop: async () => {
        await Promise.all([collector.dispose(), prometheus.dispose(), jaeger.dispose()]);
      },
    };
  } catch (error) {
    await Promise.all(started.map((p) => p.dispose()));
    throw error;
  }
}
