/**
 * Command line of `npm run simulate` (scripts/simulate.mjs): flags, defaults, and the tokens a
 * local run takes from .dev.vars.
 */
import { join } from "node:path";
import { readDevVars } from "../../tools/stack/index.ts";
import { FAULT_TYPES } from "./model.mjs";

// Kept importable from here (the reader is tools/stack/dev-vars.ts: .dev.vars, else the example).
export { readDevVars };

export const USAGE = `Usage: npm run simulate -- [options]

Streams seeded, physically plausible telemetry of N satellites (with injected faults as ground
truth) to an AstraGuard Edge Worker, labels its detections through the feedback endpoint, and
reports precision / recall / F1 / detection delay per fault type.

  --url URL             Worker base URL (default http://127.0.0.1:8787)
  --token TOKEN         operator or admin bearer token, for feedback (admin also resets the phase)
                        (default: $ASTRAGUARD_TOKEN, else ADMIN_TOKEN from .dev.vars for a local URL)
  --api-key KEY         ingest key sent as X-API-Key (default: $ASTRAGUARD_API_KEY, else the first
                        INGEST_API_KEYS entry of .dev.vars for a local URL)
  --satellites N        number of satellites (default 3)
  --rate R              points per second, all satellites together (default 8: with --batch 1 that stays
                        under the shipped ingest limit of 600 requests a minute)
  --duration S          seconds of sending (default 60); points = rate x duration
  --points N            total points instead (rounded up to a multiple of --satellites)
  --seed N              PRNG seed (default 1); the same seed gives the same stream
  --batch N             points per request: 1 uses POST /api/v1/telemetry, more the batch endpoint (default 1).
                        The Worker threads each satellite's detector state through a batch, so any batch
                        size judges every point as sequential requests would (lib/mission/ingest.ts)
  --step S              simulated seconds between two points of a satellite (default 20)
  --fault-rate F        faults per satellite per simulated hour (default 3)
  --faults LIST         comma-separated fault types (default all: ${FAULT_TYPES.join(",")})
  --epoch ISO           simulated start time (default 2026-01-01T00:00:00Z)
  --run-tag TAG         part of the satellite ids (default: derived from the wall clock, so a rerun
                        does not meet the previous run's history in the Worker); ids are sim<seed>-<tag>-<n>
  --feedback-concurrency N  feedback requests in flight (default 4)
  --no-feedback         do not label detections
  --no-phase-reset      do not set the phase back to NOMINAL_OPS
  --max-wall S          hard limit on the run's wall time (default 2 x duration + 300)
  --out PATH            JSON results (default bench/results/simulation-<seed>.json)
  --omit-points         leave the per-point records out of the JSON
  --quiet               no progress line
  --help`;

const FLAGS = {
  url: "string",
  token: "string",
  "api-key": "string",
  satellites: "int",
  rate: "number",
  duration: "number",
  points: "int",
  seed: "int",
  batch: "int",
  step: "number",
  "fault-rate": "number",
  faults: "string",
  epoch: "string",
  "run-tag": "string",
  "feedback-concurrency": "int",
  "max-wall": "number",
  out: "string",
  feedback: "bool",
  "phase-reset": "bool",
  "omit-points": "bool",
  quiet: "bool",
  help: "bool",
};

export class UsageError extends Error {}

/** Parses argv (without node and the script) into options; throws UsageError on bad input. */
export function parseArgs(argv, env = process.env, root = process.cwd()) {
  const raw = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) throw new UsageError(`unexpected argument ${arg}`);
    let [name, value] = arg.slice(2).split(/=(.*)/s, 2);
    let negated = false;
    if (name.startsWith("no-") && FLAGS[name.slice(3)] === "bool") {
      name = name.slice(3);
      negated = true;
    }
    const kind = FLAGS[name];
    if (!kind) throw new UsageError(`unknown option --${name}`);
    if (kind === "bool") {
      raw[name] = !negated;
      continue;
    }
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
    }
    if (kind === "string") raw[name] = value;
    else {
      const n = Number(value);
      if (!Number.isFinite(n) || (kind === "int" && !Number.isInteger(n))) throw new UsageError(`--${name} must be ${kind === "int" ? "an integer" : "a number"}`);
      raw[name] = n;
    }
  }
  if (raw.help) return { help: true };

  const url = (raw.url ?? "http://127.0.0.1:8787").replace(/\/+$/, "");
  let parsedUrl;
  try {
    parsedUrl = new URL(url);
  } catch {
    throw new UsageError(`--url ${url} is not a URL`);
  }
  const local = ["127.0.0.1", "localhost", "[::1]"].includes(parsedUrl.hostname);
  const devVars = local ? readDevVars(root) : {};
  const satellites = raw.satellites ?? 3;
  const rate = raw.rate ?? 8;
  const seed = raw.seed ?? 1;
  const batch = raw.batch ?? 1;
  if (satellites < 1 || satellites > 1000) throw new UsageError("--satellites must be 1..1000");
  if (!(rate > 0)) throw new UsageError("--rate must be > 0");
  if (batch < 1 || batch > 1000) throw new UsageError("--batch must be 1..1000");
  if (seed < 0 || seed > 0xffffffff) throw new UsageError("--seed must be 0..4294967295");
  let duration = raw.duration ?? 60;
  let points = raw.points;
  if (points !== undefined) {
    if (points < 1 || points > 5_000_000) throw new UsageError("--points must be 1..5000000");
    duration = points / rate;
  } else {
    if (!(duration > 0) || duration > 7 * 86400) throw new UsageError("--duration must be > 0 (at most a week)");
    points = Math.max(1, Math.round(rate * duration));
  }
  const step = raw.step ?? 20;
  if (!(step > 0) || step > 3600) throw new UsageError("--step must be in (0, 3600] seconds");
  const faultRate = raw["fault-rate"] ?? 3;
  if (!(faultRate >= 0)) throw new UsageError("--fault-rate must be >= 0");
  const faults = raw.faults === undefined ? [...FAULT_TYPES] : raw.faults.split(",").map((s) => s.trim()).filter(Boolean);
  for (const f of faults) if (!FAULT_TYPES.includes(f)) throw new UsageError(`unknown fault type ${f} (known: ${FAULT_TYPES.join(", ")})`);
  const runTag = raw["run-tag"] ?? Date.now().toString(36).slice(-6);
  if (!/^[A-Za-z0-9._]{1,20}$/.test(runTag)) throw new UsageError("--run-tag must be 1-20 characters of A-Z a-z 0-9 . _");
  const feedbackConcurrency = raw["feedback-concurrency"] ?? 4;
  if (feedbackConcurrency < 1 || feedbackConcurrency > 64) throw new UsageError("--feedback-concurrency must be 1..64");
  const apiKey = raw["api-key"] ?? env.ASTRAGUARD_API_KEY ?? (devVars.INGEST_API_KEYS ?? "").split(",")[0]?.trim() ?? "";
  return {
    help: false,
    url,
    token: raw.token ?? env.ASTRAGUARD_TOKEN ?? devVars.ADMIN_TOKEN ?? undefined,
    tokenSource: raw.token !== undefined ? "--token" : env.ASTRAGUARD_TOKEN ? "$ASTRAGUARD_TOKEN" : devVars.ADMIN_TOKEN ? ".dev.vars ADMIN_TOKEN" : "none",
    apiKey: apiKey || undefined,
    satellites,
    rate,
    duration,
    points,
    pointsPerSatellite: Math.ceil(points / satellites),
    seed,
    batch,
    step,
    faultRate,
    faults,
    epoch: raw.epoch ?? "2026-01-01T00:00:00Z",
    runTag,
    feedback: raw.feedback ?? true,
    feedbackConcurrency,
    phaseReset: raw["phase-reset"] ?? true,
    maxWall: raw["max-wall"] ?? 2 * duration + 300,
    out: raw.out ?? join("bench", "results", `simulation-${seed}.json`),
    omitPoints: raw["omit-points"] ?? false,
    quiet: raw.quiet ?? false,
  };
}
