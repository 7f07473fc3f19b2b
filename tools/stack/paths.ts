/**
 * Where things are in the repository, and the fixed ports `npm start` uses.
 * @module
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (this file is tools/stack/paths.ts). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** The collector config and its bearer-token overlay. */
export const COLLECTOR_CONFIG = join(REPO_ROOT, 'otel-collector.yaml');
export const COLLECTOR_AUTH_OVERLAY = join(REPO_ROOT, 'collector/auth.yaml');
export const PROMETHEUS_CONFIG = join(REPO_ROOT, 'prometheus/prometheus.yml');
export const JAEGER_CONFIG = join(REPO_ROOT, 'jaeger/config.yaml');
export const PROMETHEUS_RULES = join(REPO_ROOT, 'prometheus/rules/*.yml');
export const ALERTMANAGER_CONFIG = join(REPO_ROOT, 'alertmanager/alertmanager.yml');
export const ALERT_WEBHOOK_SCRIPT = join(REPO_ROOT, 'scripts/alert-webhook.mjs');

/**
 * The ports `npm start` (scripts/start.mjs) listens on: the defaults of otel-collector.yaml,
 * jaeger/config.yaml, prometheus/prometheus.yml and alertmanager/alertmanager.yml.
 * {@link freePort} never hands one of them out, so tests can run next to `npm start`.
 */
export const NPM_START_PORTS = {
  worker: 8787,
  collector: { otlpGrpc: 4317, otlpHttp: 4318, health: 13133, metrics: 8888 },
  prometheus: 9090,
  alertmanager: 9093,
  alertWebhook: 9095,
  jaeger: { otlpGrpc: 4327, otlpHttp: 4328, queryHttp: 16686, queryGrpc: 16685, health: 13134, metrics: 8889 },
} as const;
