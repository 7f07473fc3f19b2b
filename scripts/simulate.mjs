#!/usr/bin/env node
/**
 * `npm run simulate`: a seeded satellite telemetry simulator with ground truth. Streams physically
 * plausible telemetry of N satellites with injected faults to a running Worker (wrangler dev, the
 * full stack, or a deployment), labels the Worker's detections through the feedback endpoint, and
 * prints and writes precision / recall / F1 / detection delay per fault type, computed from the
 * Worker's real responses.
 *
 *   npm run simulate -- --seed 7 --rate 20 --duration 120
 *   npm run simulate -- --url https://edge.example.com --token "$OPERATOR_TOKEN" --api-key "$KEY"
 *
 * Modules: sim/model.mjs (signals, faults), sim/score.mjs (metrics), sim/run.mjs (HTTP run),
 * sim/cli.mjs (flags; `--help`). Exit code 0 when the run completed, 1 when it could not (Worker
 * unreachable, nothing answered), 2 on a usage error.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, UsageError, USAGE } from "./sim/cli.mjs";
import { runSimulation } from "./sim/run.mjs";
import { formatTable } from "./sim/score.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2), process.env, root);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`simulate: ${error.message}\n\n${USAGE}\n`);
      return 2;
    }
    throw error;
  }
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const tty = process.stderr.isTTY && !opts.quiet;
  let lastPlain = 0;
  const progress = (line) => {
    if (opts.quiet) return;
    if (tty) {
      const width = process.stderr.columns || 160;
      process.stderr.write(`\r${line.slice(0, width - 1).padEnd(width - 1)}`);
    } else if (Date.now() - lastPlain > 5000) {
      lastPlain = Date.now();
      process.stderr.write(`${line}\n`);
    }
  };
  const log = (line) => process.stderr.write(`${tty ? "\n" : ""}[sim] ${line}\n`);
  process.stderr.write(
    `[sim] ${opts.points} points from ${opts.satellites} satellites (seed ${opts.seed}, tag ${opts.runTag}) -> ${opts.url} ` +
      `at ${opts.rate} pts/s, batch ${opts.batch}; token: ${opts.tokenSource}${opts.apiKey ? ", X-API-Key set" : ""}\n`,
  );

  let result;
  try {
    result = await runSimulation(opts, { progress, log });
  } catch (error) {
    process.stderr.write(`${tty ? "\n" : ""}simulate: ${error.message}\n`);
    return 1;
  }
  if (tty) process.stderr.write("\n");

  const out = resolve(root, opts.out);
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify(result, null, opts.omitPoints ? 2 : undefined)}\n`);
  process.stdout.write(summary(result, out));
  return result.ingest.points_answered > 0 ? 0 : 1;
}

const pct = (x) => (x === null || x === undefined ? "-" : `${(100 * x).toFixed(1)}%`);

function summary(r, out) {
  const o = r.scores.overall;
  const lines = [
    "",
    `Simulation seed ${r.run.seed} against ${r.run.url}: ${r.scores.points.scored} of ${r.scenario.points} points scored ` +
      `(${r.scenario.satellites.length} satellites, ${(r.scenario.simulated_seconds_per_satellite / 3600).toFixed(1)} h simulated each, ` +
      `${r.scenario.faults.length} fault windows, ${r.scenario.fault_points} fault points), ${r.run.wall_seconds.toFixed(1)} s wall`,
    "",
    formatTable(r.scores),
    "",
    `overall: precision ${pct(o.precision)}, recall ${pct(o.recall)}, F1 ${pct(o.f1)}, event recall ${pct(o.event_recall)}, ` +
      `false positive rate ${pct(o.false_positive_rate)} (${o.fp} of ${o.nominal_points} nominal points)`,
    `false positives by anomaly_type: ${JSON.stringify(r.scores.false_positives.by_anomaly_type)} ` +
      `(${r.scores.false_positives.within_echo_of_window} within ${r.scores.false_positives.echo_points} points after a fault window; ` +
      `precision without those ${pct(r.scores.false_positives.precision_excluding_echoes)})`,
    `labels: ${r.feedback.disabled_reason ? `off (${r.feedback.disabled_reason}); ` : ""}sent ${r.feedback.sent} of ${r.feedback.queued} ` +
      `${JSON.stringify(r.feedback.outcomes)}; server now reports detection_accuracy ${r.feedback.server.detection_accuracy ?? "-"} ` +
      `over ${r.feedback.server.labelled ?? "-"} labels (${r.feedback.server.false_positives ?? "-"} false positives)`,
    `phase: initial ${r.phase.initial ?? "-"}, SAFE_MODE seen ${r.phase.safe_mode_seen}x, reset to NOMINAL_OPS ${r.phase.resets}x` +
      `${r.phase.disabled_reason ? ` (resets off: ${r.phase.disabled_reason})` : ""}`,
  ];
  for (const [kind, s] of Object.entries(r.requests)) {
    const l = s.latency_ms;
    lines.push(`${kind} requests: ${s.requests} ${JSON.stringify(s.status)}; latency ms mean ${l.mean ?? "-"} p50 ${l.p50 ?? "-"} p90 ${l.p90 ?? "-"} p99 ${l.p99 ?? "-"} max ${l.max ?? "-"}`);
  }
  for (const note of r.run.notes) lines.push(`note: ${note}`);
  lines.push(`results: ${out}`, "");
  return lines.join("\n");
}

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`simulate: ${error.stack ?? error}\n`);
    process.exit(1);
  },
);
