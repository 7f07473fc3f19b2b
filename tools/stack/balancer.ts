/**
 * A round-robin HTTP load balancer for the local stack: stands where a cloud load balancer
 * stands in front of gateway collectors (README, Production layout), so tests can show that
 * pushes landing on different collectors in turn still give one exact series per label set.
 * Each request goes to the next upstream; an upstream that refuses the connection is skipped
 * (as a health-checked balancer would), and the request fails only when every upstream does.
 * @module
 */
import { createServer, type Server } from 'node:http';
import { freePort } from './wait.ts';

/** A running balancer. */
export interface BalancerHandle {
  /** Base URL, e.g. `http://127.0.0.1:40123`. */
  url: string;
  /** Requests answered by each upstream, in the order given (its index). */
  readonly answered: number[];
  /** Requests no upstream took (every one refused the connection). */
  readonly failed: number;
  close(): Promise<void>;
}

/**
 * Starts a round-robin balancer on a free 127.0.0.1 port in front of `upstreams` (base URLs).
 *
 * @example
 * const lb = await startBalancer([collectorA.urls.otlpHttp, collectorB.urls.otlpHttp]);
 * // point OTEL_EXPORTER_OTLP_ENDPOINT at lb.url; lb.answered → [pushes via A, pushes via B]
 */
export async function startBalancer(upstreams: string[]): Promise<BalancerHandle> {
  if (!upstreams.length) throw new Error('startBalancer: no upstream');
  const answered = upstreams.map(() => 0);
  let failed = 0;
  let turn = 0;
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host' && k !== 'content-length') headers[k] = v;
    const first = turn++ % upstreams.length;
    for (let attempt = 0; attempt < upstreams.length; attempt++) {
      const index = (first + attempt) % upstreams.length;
      try {
        const upstream = await fetch(`${upstreams[index]}${req.url ?? '/'}`, {
          method: req.method,
          headers,
          body: req.method === 'GET' || req.method === 'HEAD' ? undefined : body,
          signal: AbortSignal.timeout(10_000),
        });
        const payload = Buffer.from(await upstream.arrayBuffer());
        answered[index]!++;
        res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/octet-stream' });
        res.end(payload);
        return;
      } catch {
        // Refused or timed out: the next upstream takes it.
      }
    }
    failed++;
    res.writeHead(503, { 'content-type': 'application/json' });
    res.end('{"error":"no upstream available"}');
  });
  const port = await freePort();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    url: `http://127.0.0.1:${port}`,
    answered,
    get failed() {
      return failed;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
