#!/usr/bin/env node
/**
 * The local stack's alert receiver: Alertmanager (alertmanager/alertmanager.yml) posts its
 * webhook notifications here, and each alert in them is printed as one JSON line on stdout, so
 * `npm start` shows alerts firing and resolving beside the other logs.
 *
 *   node scripts/alert-webhook.mjs [--port 9095]
 *
 * POST /alerts takes Alertmanager's webhook payload (version 4); GET /alerts lists the last 100
 * alerts received (newest last), GET /health answers 200. Bodies over 1 MiB are refused (413).
 */
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string', default: '9095' }, host: { type: 'string', default: '127.0.0.1' } } });
const MAX_BODY_BYTES = 1 << 20;
const recent = [];

/** The line printed for one alert of a notification. */
function alertLine(alert, receivedAt = new Date()) {
  return {
    received_at: receivedAt.toISOString(),
    status: alert.status,
    alertname: alert.labels?.alertname,
    severity: alert.labels?.severity,
    labels: alert.labels ?? {},
    summary: alert.annotations?.summary,
    starts_at: alert.startsAt,
    ends_at: alert.status === 'resolved' ? alert.endsAt : undefined,
  };
}

const send = (res, status, body) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

const server = createServer((req, res) => {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  if (req.method === 'GET' && path === '/health') return send(res, 200, { status: 'ok' });
  if (req.method === 'GET' && path === '/alerts') return send(res, 200, { alerts: recent });
  if (path !== '/alerts') return send(res, 404, { error: { status: 404, message: `no route for ${path}`, field: 'path' } });
  if (req.method !== 'POST') return send(res, 405, { error: { status: 405, message: 'use POST', field: 'method' } });
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      send(res, 413, { error: { status: 413, message: 'body over 1 MiB', field: 'body' } });
      req.destroy();
    } else chunks.push(chunk);
  });
  req.on('end', () => {
    if (res.writableEnded) return;
    let payload;
    try {
      payload = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return send(res, 400, { error: { status: 400, message: 'malformed JSON', field: 'body' } });
    }
    if (!Array.isArray(payload?.alerts)) return send(res, 422, { error: { status: 422, message: 'alerts must be an array', field: 'alerts' } });
    for (const alert of payload.alerts) {
      const line = alertLine(alert);
      recent.push(line);
      process.stdout.write(JSON.stringify(line) + '\n');
    }
    if (recent.length > 100) recent.splice(0, recent.length - 100);
    send(res, 200, { received: payload.alerts.length });
  });
});

server.listen(Number(values.port), values.host, () => {
  process.stdout.write(`alert webhook listening on http://${values.host}:${values.port}/alerts\n`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => server.close(() => process.exit(0)));
