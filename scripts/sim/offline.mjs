#!/usr/bin/env node
/**
 * Offline detection harness: the simulator's seeded scenario (model.mjs) scored (score.mjs) against
 * `detect()` of lib/domain/detector.ts called directly, one satellite state threaded point by point
 * in send order, exactly as the Worker's ingest does. No Worker, no HTTP: a tuning loop of seconds.
 * The real simulator (`npm run simulate`) must then confirm the figures against the Worker.
 *
 *   node scripts/sim/offline.mjs --seeds 1001,1003 --points 12000 --satellites 3 --fault-rate 1.5
 *   node scripts/sim/offline.mjs --seeds 2002 --points 12000 --json      # one JSON line per seed
 *   node scripts/sim/offline.mjs --seeds 1001 --echoes   # false positives just after faults, by class
 *
 * The detector is bundled with esbuild (the lib tsconfig imports without extensions, which Node's
 * type stripping cannot resolve) into a temp file and imported from there.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";
import { generateScenario } from "./model.mjs";
import { ECHO_POINTS, faultClock, formatTable, scoreRun } from "./score.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** Bundles lib/domain/detector.ts and imports it: `{ detect, ... }`. */
export async function loadDetector(entry = join(root, "lib/domain/detector.ts")) {
  const dir = await mkdtemp(join(tmpdir(), "astraguard-offline-"));
  const outfile = join(dir, "detector.mjs");
  try {
    await build({ entryPoints: [entry], bundle: true, format: "esm", platform: "neutral", outfile, logLevel: "error" });
    return await import(pathToFileURL(outfile).href);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The reading the Worker builds from a point's body (lib/mission/ingest.ts toReading). */
const readingOf = (p) => ({ ...p.values, time: p.time_ms });

/**
 * Runs `detect` over one scenario and scores it like the simulator does.
 * @example scoreOffline(detector, { seed: 1001, satellites: 3, pointsPerSatellite: 4000, faultRatePerHour: 1.5 }).overall.f1
 */
export function scoreOffline(detector, scenarioOptions) {
  const scenario = generateScenario(scenarioOptions);
  const states = new Map();
  const records = scenario.points.map((p) => {
    const { detection, state } = detector.detect(readingOf(p), states.get(p.satellite_id));
    states.set(p.satellite_id, state);
    return {
      satellite_id: p.satellite_id,
      time_ms: p.time_ms,
      fault_id: p.fault_id,
      fault_type: p.fault_type,
      response: { id: "", is_anomaly: detection.isAnomaly, anomaly_type: detection.type, reason: detection.findings[0]?.reason },
    };
  });
  const scores = scoreRun({ points: records, faults: scenario.faults, faultTypes: scenario.options.faultTypes });
  return { scenario, records, scores, states };
}

/**
 * The false positives at most ECHO_POINTS points (same satellite) after a fault window, each with
 * its class: the fault type before it and the anomaly type flagged ("stuck_sensor -> SENSOR_STUCK").
 * @example echoClasses(scoreOffline(detector, options).records).counts // { "stuck_sensor -> SENSOR_STUCK": 1 }
 */
export function echoClasses(records) {
  const clock = faultClock();
  const list = [];
  const counts = {};
  for (const r of records) {
    const { since: n, faultType } = clock.next(r);
    if (n === 0 || !r.response.is_anomaly || n > ECHO_POINTS) continue;
    const cls = `${faultType} -> ${r.response.anomaly_type}`;
    counts[cls] = (counts[cls] ?? 0) + 1;
    list.push({ satellite_id: r.satellite_id, time_ms: r.time_ms, since: n, class: cls, reason: r.response.reason ?? "" });
  }
  return { list, counts };
}

function parse(argv) {
  const opts = { seeds: [1001], points: 12000, satellites: 3, faultRate: 1.5, step: 20, json: false, fps: false, misses: false, echoes: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => argv[++i];
    if (a === "--seeds") opts.seeds = next().split(",").map(Number);
    else if (a === "--points") opts.points = Number(next());
    else if (a === "--satellites") opts.satellites = Number(next());
    else if (a === "--fault-rate") opts.faultRate = Number(next());
    else if (a === "--step") opts.step = Number(next());
    else if (a === "--json") opts.json = true;
    else if (a === "--fps") opts.fps = true;
    else if (a === "--misses") opts.misses = true;
    else if (a === "--echoes") opts.echoes = true;
    else throw new Error(`unknown option ${a}`);
  }
  return opts;
}

async function main() {
  const opts = parse(process.argv.slice(2));
  const detector = await loadDetector();
  for (const seed of opts.seeds) {
    const started = performance.now();
    const { scores, records, scenario } = scoreOffline(detector, {
      seed,
      satellites: opts.satellites,
      pointsPerSatellite: Math.ceil(opts.points / opts.satellites),
      stepSeconds: opts.step,
      faultRatePerHour: opts.faultRate,
    });
    const ms = performance.now() - started;
    if (opts.json) {
      process.stdout.write(`${JSON.stringify({ seed, ...opts, scores })}\n`);
      continue;
    }
    const fp = scores.false_positives;
    process.stdout.write(
      `seed ${seed}: ${scenario.points.length} points, ${opts.satellites} satellites, fault rate ${opts.faultRate}/h (${ms.toFixed(0)} ms)\n${formatTable(scores)}\n` +
        `false positives ${fp.total} (echoes within ${fp.echo_points} points: ${fp.within_echo_of_window}) by type ${JSON.stringify(fp.by_anomaly_type)}\n\n`,
    );
    if (opts.fps) {
      for (const r of records) if (r.response.is_anomaly && !r.fault_id) process.stdout.write(`  FP ${r.satellite_id} ${new Date(r.time_ms).toISOString()} ${r.response.anomaly_type}: ${r.response.reason}\n`);
    }
    if (opts.echoes) {
      const classes = echoClasses(records);
      for (const e of classes.list) process.stdout.write(`  ECHO ${e.satellite_id} ${new Date(e.time_ms).toISOString()} +${e.since} ${e.class}: ${e.reason}\n`);
      process.stdout.write(`  echoes by class ${JSON.stringify(classes.counts)}\n`);
    }
    if (opts.misses) {
      const detected = new Set(records.filter((r) => r.fault_id && r.response.is_anomaly).map((r) => r.fault_id));
      for (const f of scenario.faults) if (!detected.has(f.id)) process.stdout.write(`  MISS ${f.id} ${f.type} ${f.points} pts ${JSON.stringify(f.params)}\n`);
    }
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    process.stderr.write(`${error.stack ?? error}\n`);
    process.exit(1);
  });
}
