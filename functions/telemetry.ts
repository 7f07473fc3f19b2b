/**
 * The isolate's telemetry flush, composed here (the composition root) so that telemetry never
 * imports reliability: the flusher's two transports go through the dependencies' breakers and
 * chaos faults, with tracing suppressed, so /health shows their real state and a dead collector
 * fails fast instead of holding every flush for the export timeout.
 */
import { guardTransport } from "../lib/reliability/guard";
import { otlpExportSpans, rpcSendPoints, TelemetryFlusher } from "../lib/telemetry/export/flush";

/** The isolate's flusher: one export in flight, at most one started per second. */
export const telemetryFlusher = new TelemetryFlusher({
  sendPoints: guardTransport("metrics_aggregator", rpcSendPoints),
  exportSpans: guardTransport("collector", otlpExportSpans),
});

/**
 * Flushes the isolate's metrics, spans and held log lines: answers the promise for `waitUntil`
 * when this call scheduled the export, undefined when it joined one another request keeps alive
 * (`TelemetryFlusher.schedule`). Never throws; the promise never rejects.
 *
 * @example
 * const pending = flushTelemetry(c.env);
 * if (pending) c.executionCtx.waitUntil(pending);
 */
export function flushTelemetry(env: Env): Promise<void> | undefined {
  try {
    return telemetryFlusher.schedule(env)?.catch(() => undefined);
  } catch {
    return undefined;
  }
}
