/**
 * The telemetry simulator (scripts/simulate.mjs) against the real Worker: `wrangler dev` on a free
 * port with its own state directory and tokens, a short seeded scenario through the real CLI, and
 * checks that the figures it reports are computed from the Worker's responses — every detection id
 * is one the Worker stored, the labels it sent are the Worker's label counts, and the scores are
 * the scoring function applied to those responses (so a detector that always says "nominal" would
 * score recall 0 on the same stream).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { generateScenario, payloadOf } from '../../scripts/sim/model.mjs';
import { scoreRun, type RunRecord, type SimulationResult } from '../../scripts/sim/score.mjs';
import { loadDetector, scoreOffline } from '../../scripts/sim/offline.mjs';
import { freePort, REPO_ROOT, sleep, waitFor } from '../support/stack';

const ADMIN_TOKEN = `sim-admin-${randomBytes(8).toString('hex')}`;
const OPERATOR_TOKEN = `sim-operator-${randomBytes(8).toString('hex')}`;
const SEED = 26; // a scenario with stuck_sensor, gyro_spike and voltage_collapse windows
const POINTS = 210; // 70 per satellite, 23 simulated minutes each
const FAULT_RATE = 8; // faults per satellite per simulated hour: a few windows in a short run
const RUN_TAG = 'stacktest';

let dir: string;
let url: string;
let worker: ChildProcess | undefined;
let workerLog = '';
let result: SimulationResult;

/** Ends the process group we spawned (wrangler, its node and workerd children), then waits. */
async function stopWorker(): Promise<void> {
  const child = worker;
  worker = undefined;
  if (!child?.pid || child.exitCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    return;
  }
  const done = await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]);
  if (!done) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await sleep(500);
  // workerd children may outlive the wrangler leader by a moment; the group signal reached them too.
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // group empty: all ended
  }
}

function run(command: string, args: string[], timeoutMillis: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${args.join(' ')} did not finish in ${timeoutMillis} ms\n${stderr.slice(-2000)}`));
    }, timeoutMillis);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolveRun({ code, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'astraguard-sim-'));
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  worker = spawn(
    'npx',
    [
      'wrangler', 'dev',
      '--port', String(port),
      '--ip', '127.0.0.1',
      '--persist-to', join(dir, 'state'),
      '--show-interactive-dev-session=false',
      '--var', `ADMIN_TOKEN:${ADMIN_TOKEN}`,
      '--var', `OPERATOR_TOKEN:${OPERATOR_TOKEN}`,
      '--var', 'REQUIRE_INGEST_KEY:false',
      '--var', 'OTEL_EXPORTER_OTLP_ENDPOINT:',
    ],
    { cwd: REPO_ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  for (const stream of [worker.stdout, worker.stderr]) stream?.on('data', (d) => (workerLog = (workerLog + d).slice(-20_000)));
  process.once('exit', () => {
    if (worker?.pid) {
      try {
        process.kill(-worker.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });
  try {
    await waitFor(
      async () => {
        if (worker?.exitCode !== null) throw new Error(`wrangler dev exited (${worker?.exitCode})`);
        const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) });
        await r.arrayBuffer();
        return r.status < 500 || undefined;
      },
      { timeoutMillis: 120_000, intervalMillis: 500, description: `wrangler dev on ${url}` },
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}\n--- wrangler dev output ---\n${workerLog.slice(-4000)}`, { cause: error });
  }

  const out = join(dir, 'simulation.json');
  const cli = await run(
    process.execPath,
    [
      'scripts/simulate.mjs',
      '--url', url,
      '--token', OPERATOR_TOKEN,
      '--seed', String(SEED),
      '--points', String(POINTS),
      '--rate', '200',
      '--fault-rate', String(FAULT_RATE),
      '--run-tag', RUN_TAG,
      '--out', out,
      '--quiet',
    ],
    180_000,
  );
  if (cli.code !== 0) throw new Error(`simulate exited ${cli.code}\n${cli.stderr.slice(-3000)}\n${cli.stdout.slice(-3000)}`);
  result = JSON.parse(await readFile(out, 'utf8')) as SimulationResult;
}, 300_000);

afterAll(async () => {
  await stopWorker();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('simulator against wrangler dev', () => {
  test('the same seed gives the same stream, a different seed another', () => {
    const options = { seed: SEED, satellites: 3, pointsPerSatellite: POINTS / 3, faultRatePerHour: FAULT_RATE };
    const a = generateScenario(options);
    const b = generateScenario(options);
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    expect(a.points).toHaveLength(POINTS);
    expect(a.faults.length).toBeGreaterThan(0);
    const c = generateScenario({ ...options, seed: SEED + 1 });
    expect(c.points.map((p) => p.values)).not.toEqual(a.points.map((p) => p.values));
    // Bodies the API accepts: the five fields, a zoned timestamp, a valid satellite_id.
    for (const p of a.points) {
      const body = payloadOf(p);
      expect(Object.keys(body).sort()).toEqual(['current', 'gyro', 'satellite_id', 'temperature', 'timestamp', 'voltage', 'wheel_speed']);
      expect(body.satellite_id).toMatch(/^[A-Za-z0-9._-]{1,64}$/);
      expect(body.voltage).toBeGreaterThanOrEqual(0);
      expect(body.voltage).toBeLessThanOrEqual(50);
    }
  });

  test('the run sent that stream and got one real response per point', async () => {
    const expected = generateScenario({
      seed: SEED,
      satellites: 3,
      pointsPerSatellite: POINTS / 3,
      faultRatePerHour: FAULT_RATE,
      satellitePrefix: `sim${SEED}-${RUN_TAG}`,
    });
    const points = result.points!;
    expect(points).toHaveLength(POINTS);
    expect(points.map((p) => [p.satellite_id, p.time_ms, p.fault_id, p.fault_type])).toEqual(
      expected.points.map((p) => [p.satellite_id, p.time_ms, p.fault_id, p.fault_type]),
    );
    expect(result.scenario.faults).toEqual(expected.faults);
    // One POST /api/v1/telemetry per point (batch 1), each answered 200 with an id of its own.
    expect(result.requests.ingest.status).toEqual({ 200: POINTS });
    expect(result.ingest.points_answered).toBe(POINTS);
    const ids = points.map((p) => p.response!.id);
    expect(new Set(ids).size).toBe(POINTS);
    for (const p of points) {
      expect(p.response!.id).toMatch(p.response!.is_anomaly ? /^an_[0-9a-f]{32}_[A-Za-z0-9._-]+$/ : /^tp_[0-9a-f]{32}_[A-Za-z0-9._-]+$/);
    }
    // Every detection is one the Worker stored: its anomaly history holds exactly these ids.
    const detections = points.filter((p) => p.response!.is_anomaly);
    expect(detections.length).toBeGreaterThan(0);
    const history = (await (await fetch(`${url}/api/v1/history/anomalies?limit=1000`)).json()) as { anomalies: { id: string; false_positive: boolean | null }[] };
    expect(new Set(history.anomalies.map((a) => a.id))).toEqual(new Set(detections.map((p) => p.response!.id)));
  });

  test('each detection was labelled through the feedback endpoint, as the ground truth says', async () => {
    const points = result.points!;
    const detections = points.filter((p) => p.response!.is_anomaly);
    const falsePositives = detections.filter((p) => p.fault_id === null);
    expect(result.feedback.outcomes).toEqual({ labelled: detections.length });
    const history = (await (await fetch(`${url}/api/v1/history/anomalies?limit=1000`)).json()) as { anomalies: { id: string; false_positive: boolean | null }[] };
    const labelOf = new Map(history.anomalies.map((a) => [a.id, a.false_positive]));
    for (const p of detections) expect(labelOf.get(p.response!.id)).toBe(p.fault_id === null);
    const stats = (await (await fetch(`${url}/api/v1/memory/stats`)).json()) as { recurrence_memory: { labelled: number; false_positives: number } };
    expect(stats.recurrence_memory.labelled).toBe(detections.length);
    expect(stats.recurrence_memory.false_positives).toBe(falsePositives.length);
    expect(result.feedback.server.labelled).toBe(detections.length);
    expect(result.scores.overall.fp).toBe(falsePositives.length);
  });

  test('the figures are the scoring function applied to the responses, consistent with the counts', () => {
    const points = result.points!;
    const rescored = scoreRun({ points, faults: result.scenario.faults });
    expect(rescored).toEqual(result.scores);
    const o = result.scores.overall;
    const inFault = points.filter((p) => p.fault_id !== null);
    expect(o.tp).toBe(inFault.filter((p) => p.response!.is_anomaly).length);
    expect(o.fn).toBe(inFault.filter((p) => !p.response!.is_anomaly).length);
    expect(o.tp + o.fp).toBe(points.filter((p) => p.response!.is_anomaly).length);
    expect(o.tp + o.fn + o.fp + o.tn).toBe(POINTS);
    expect(o.fault_points).toBe(result.scenario.fault_points);
    expect(o.precision).toBeCloseTo(o.tp / (o.tp + o.fp), 12);
    expect(o.recall).toBeCloseTo(o.tp / (o.tp + o.fn), 12);
    expect(o.f1).toBeCloseTo((2 * o.precision! * o.recall!) / (o.precision! + o.recall!), 12);
    const types = Object.values(result.scores.by_fault_type);
    expect(types.reduce((s, t) => s + t.tp, 0)).toBe(o.tp);
    expect(types.reduce((s, t) => s + t.fault_points, 0)).toBe(o.fault_points);
    expect(types.reduce((s, t) => s + t.windows, 0)).toBe(result.scenario.faults.length);
    for (const t of types) {
      if (t.tp + t.fp > 0) expect(t.precision).toBeCloseTo(t.tp / (t.tp + t.fp), 12);
      if (t.fault_points > 0) expect(t.point_recall).toBeCloseTo(t.tp / t.fault_points, 12);
      if (t.windows > 0) expect(t.event_recall).toBeCloseTo(t.windows_detected / t.windows, 12);
      expect(t.detection_delay_s.count).toBe(t.windows_detected);
    }
    // The real detector finds something in this scenario.
    expect(o.tp).toBeGreaterThan(0);
  });

  test('the Worker answers exactly as detect() over the stream offline (state kept per satellite in storage)', async () => {
    const detector = await loadDetector();
    const offline = scoreOffline(detector, { seed: SEED, satellites: 3, pointsPerSatellite: POINTS / 3, faultRatePerHour: FAULT_RATE, satellitePrefix: `sim${SEED}-${RUN_TAG}` });
    expect(result.points!.map((p) => [p.response!.is_anomaly, p.response!.anomaly_type])).toEqual(offline.records.map((r) => [r.response.is_anomaly, r.response.anomaly_type]));
    expect(offline.scores).toEqual(result.scores);
  });

  test('a detector that always says "nominal" scores recall 0 on the same stream', () => {
    const nominal: RunRecord[] = result.points!.map((p) => ({ ...p, response: { ...p.response!, is_anomaly: false, anomaly_type: 'NONE' } }));
    const scores = scoreRun({ points: nominal, faults: result.scenario.faults });
    expect(scores.overall.fault_points).toBeGreaterThan(0);
    expect(scores.overall.tp).toBe(0);
    expect(scores.overall.recall).toBe(0);
    expect(scores.overall.event_recall).toBe(0);
    expect(scores.overall.precision).toBeNull();
    for (const t of Object.values(scores.by_fault_type)) {
      if (t.fault_points > 0) expect(t.point_recall).toBe(0);
      if (t.windows > 0) expect(t.event_recall).toBe(0);
    }
  });
});
