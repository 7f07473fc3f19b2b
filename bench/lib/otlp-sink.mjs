/**
 * A stand-in OTLP/HTTP receiver for the profiler: answers every export 200 `{}` at once and counts
 * requests and body bytes per path, so a profiled variant takes its export success path without
 * a collector's CPU on the machine. Listens on a free 127.0.0.1 port.
 *
 * @example
 * const sink = await startOtlpSink();
 * // ... OTEL_EXPORTER_OTLP_ENDPOINT = sink.url ...
 * sink.counts['/v1/traces'] // { requests, bytes }
 * await sink.close();
 */
import { createServer } from 'node:http';

export async function startOtlpSink() {
  const counts = {};
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const c = (counts[path] ??= { requests: 0, bytes: 0 });
    req.on('data', (chunk) => (c.bytes += chunk.length));
    req.on('end', () => {
      c.requests++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    counts,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
