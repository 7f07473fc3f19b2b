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
 * Flushes the isolate's metrics and spans; for `waitUntil`. Never rejects.
 *
 * @example
 * c.executionCtx.waitUntil(flushTelemetry(c.env));
 */
export function flushTelemetry(env: Env): Promise<void> {
  try {
    return telemetryFlusher.flush(env).catch(() => undefined);
  } catch {
    return Promise.resolve();
  }
}
