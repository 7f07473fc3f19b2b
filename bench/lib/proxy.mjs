/**
 * A counting HTTP proxy in front of the real collector's OTLP/HTTP receiver: every variant gets
 * its own proxy port, so each OTLP export is attributed to the variant that sent it. It counts
 * requests and body bytes per path (/v1/metrics, /v1/traces) and forwards them unchanged; it also
 * gzips each body off the forwarding path and counts that size (`gzipBytes`: what the same
 * export would weigh with `Content-Encoding: gzip`, which the collector accepts). When
 * the collector is down, the proxy resets the connection (the sender sees a network error, as it
 * would with the collector's port closed).
 */
import { Agent, createServer, request } from 'node:http';
import { gzip } from 'node:zlib';

/** Starts a proxy on a free 127.0.0.1 port forwarding to `target` (e.g. http://127.0.0.1:4318). */
export async function startCountingProxy(target) {
  const upstream = new URL(target);
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const counts = {};
  const bucket = (path) => (counts[path] ??= { requests: 0, bytes: 0, gzipBytes: 0, ok: 0, failed: 0 });
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const b = bucket(path);
      b.requests++;
      b.bytes += body.length;
      if (req.headers['content-encoding'] === 'gzip') b.gzipBytes += body.length;
      else gzip(body, (err, z) => (b.gzipBytes += err ? body.length : z.length));
      const headers = { ...req.headers, host: upstream.host, 'content-length': String(body.length) };
      const out = request(
        { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers, agent, timeout: 10_000 },
        (up) => {
          if (up.statusCode && up.statusCode < 300) b.ok++;
          else b.failed++;
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      out.on('error', () => {
        b.failed++;
        req.socket.destroy();
      });
      out.on('timeout', () => out.destroy(new Error('upstream timeout')));
      out.end(body);
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  return {
    url: `http://127.0.0.1:${port}`,
    /** A deep copy of the counters: `{ '/v1/metrics': { requests, bytes, ok, failed }, ... }`. */
    snapshot: () => JSON.parse(JSON.stringify(counts)),
    close: () =>
      new Promise((resolve) => {
        agent.destroy();
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

/** `after - before` of two snapshots, for one path (zeros when absent). */
export function countDelta(before, after, path) {
  const zero = { requests: 0, bytes: 0, gzipBytes: 0, ok: 0, failed: 0 };
  const a = after[path] ?? zero;
  const b = before[path] ?? zero;
  return { requests: a.requests - b.requests, bytes: a.bytes - b.bytes, gzipBytes: a.gzipBytes - b.gzipBytes, ok: a.ok - b.ok, failed: a.failed - b.failed };
}
