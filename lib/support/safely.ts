/**
 * Runs `fn` and swallows what it throws, with a warning: recording telemetry never fails the work
 * it observes (the OpenTelemetry SDK's rule).
 *
 * @example
 * safely(() => instruments.httpRequests.add(1, labels));
 */
export function safely(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    console.warn("telemetry: recording failed", String(err));
  }
}
