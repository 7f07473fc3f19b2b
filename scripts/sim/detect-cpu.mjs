#!/usr/bin/env node
/**
 * CPU cost of `detect()` per point on workerd (Miniflare), so the detector's cost is measured in
 * the runtime that runs it. Workers' clocks do not advance during pure CPU work, so the time is
 * taken from outside: a request that runs `detect()` over K passes of a seeded scenario, minus the
 * same request with K = 0, divided by the points judged; median of interleaved rounds.
 *
 *   node scripts/sim/detect-cpu.mjs                       # the working tree's detector
 *   node scripts/sim/detect-cpu.mjs --baseline 244a724    # and the history-based one of a commit, side by side
 *
 * A baseline from before the state contract (detect(reading, history)) is driven as ingest drove
 * it: the satellite's last 8 readings, copied per point.
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { Miniflare, NoOpLog, convertV4MiniflareOptions } from "miniflare";
import { generateScenario } from "./model.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

function parse(argv) {
  const opts = { baseline: undefined, passes: 40, rounds: 7, seed: 1001 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--baseline") opts.baseline = argv[++i];
    else if (a === "--passes") opts.passes = Number(argv[++i]);
    else if (a === "--rounds") opts.rounds = Number(argv[++i]);
    else if (a === "--seed") opts.seed = Number(argv[++i]);
    else throw new Error(`unknown option ${a}`);
  }
  return opts;
}

/** The detector at `entry` bundled as one ES module's source. */
async function bundle(entry) {
  const result = await build({ entryPoints: [entry], bundle: true, format: "esm", platform: "neutral", write: false, logLevel: "error" });
  return result.outputFiles[0].text;
}

/** lib/domain of commit `rev` extracted to a temp dir; returns its detector.ts path. */
async function checkout(rev, dir) {
  const files = execFileSync("git", ["ls-tree", "--name-only", rev, "lib/domain/"], { cwd: root, encoding: "utf8" }).split("\n").filter(Boolean);
  for (const file of files) {
    await writeFile(join(dir, file.split("/").pop()), execFileSync("git", ["show", `${rev}:${file}`], { cwd: root }));
  }
  return join(dir, "detector.ts");
}

/** A Worker that judges every reading `n` times over; `stateful` selects the contract. */
function workerSource(detectorModule, readings, stateful) {
  return `${detectorModule.replace(/^export \{[^}]*\};?\s*$/m, "")}
const READINGS = ${JSON.stringify(readings)};
export default {
  async fetch(request) {
    const n = Number(new URL(request.url).searchParams.get("n"));
    let anomalies = 0;
    for (let pass = 0; pass < n; pass++) {
      const memory = new Map();
      for (const { id, reading } of READINGS) {
        ${
          stateful
            ? "const r = detect(reading, memory.get(id)); memory.set(id, r.state); if (r.detection.isAnomaly) anomalies++;"
            : "const h = memory.get(id) ?? []; const d = detect(reading, h); memory.set(id, [...h, reading].slice(-8)); if (d.isAnomaly) anomalies++;"
        }
      }
    }
    return new Response(String(anomalies));
  },
};`;
}

async function timeOnce(mf, n) {
  const started = process.hrtime.bigint();
  const response = await mf.dispatchFetch(`http://detect.local/?n=${n}`);
  await response.text();
  return Number(process.hrtime.bigint() - started) / 1000;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const opts = parse(process.argv.slice(2));
  const scenario = generateScenario({ seed: opts.seed, satellites: 3, pointsPerSatellite: 1000, faultRatePerHour: 1.5 });
  const readings = scenario.points.map((p) => ({ id: p.satellite_id, reading: { ...p.values, time: p.time_ms } }));
  const variants = [{ name: "working tree", source: await bundle(join(root, "lib/domain/detector.ts")) }];
  const dir = await mkdtemp(join(tmpdir(), "astraguard-detect-cpu-"));
  try {
    if (opts.baseline) variants.push({ name: `baseline ${opts.baseline}`, source: await bundle(await checkout(opts.baseline, dir)) });
    for (const v of variants) {
      const stateful = /function detect\([^)]*\)\s*\{[\s\S]*?usableState/.test(v.source);
      v.stateful = stateful;
      v.mf = new Miniflare(
        convertV4MiniflareOptions({
          log: new NoOpLog(),
          workers: [{ name: "detect-cpu", modules: true, script: workerSource(v.source, readings, stateful), compatibilityDate: "2025-09-01" }],
        }),
      );
      await timeOnce(v.mf, 2); // warm up (JIT)
      v.samples = [];
    }
    for (let round = 0; round < opts.rounds; round++) {
      for (const v of variants) {
        const empty = await timeOnce(v.mf, 0);
        const full = await timeOnce(v.mf, opts.passes);
        v.samples.push((full - empty) / (opts.passes * readings.length));
      }
    }
    for (const v of variants) {
      process.stdout.write(`${v.name}${v.stateful ? " (state)" : " (history)"}: ${median(v.samples).toFixed(2)} µs per point (median of ${opts.rounds} rounds, ${opts.passes} x ${readings.length} points; range ${Math.min(...v.samples).toFixed(2)}-${Math.max(...v.samples).toFixed(2)})\n`);
    }
  } finally {
    for (const v of variants) await v.mf?.dispose();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  process.stderr.write(`${error.stack ?? error}\n`);
  process.exit(1);
});
