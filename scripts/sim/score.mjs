/**
 * Scoring of a simulator run against its ground truth. Pure: the simulator and its test call the
 * same function on the same records.
 *
 * A point's ground truth is the fault window (per satellite) it falls in, or nominal. A point's
 * verdict is the Worker's `is_anomaly`. Points without a response (refused, never sent) are not
 * scored and are counted apart.
 *
 * Definitions (point-wise unless said otherwise):
 * - overall: TP = detection inside any window, FP = detection at a nominal point, FN = a point inside
 *   a window without a detection; precision = TP/(TP+FP), recall = TP/(TP+FN), F1 their harmonic mean.
 * - per fault type T: TP_T = detections inside windows of type T; FN_T = undetected points inside
 *   windows of type T; FP_T = false positives (nominal points) whose `anomaly_type` is the detector's
 *   name for T (see ANOMALY_TYPE_TO_FAULT); false positives of other anomaly types (RATE_OF_CHANGE,
 *   THERMAL_LOW, ...) count in the overall figures only. precision_T = TP_T/(TP_T+FP_T),
 *   point recall_T = TP_T/(TP_T+FN_T), F1_T from those two.
 * - event recall_T: windows of type T with at least one detection / windows of type T (windows with
 *   at least one scored point).
 * - detection delay: simulated seconds from a window's first point to its first detected point
 *   (detected windows only).
 * - type agreement_T: share of TP_T whose `anomaly_type` is the detector's name for T.
 * - echoes: false positives at most ECHO_POINTS points (same satellite) after a window — the
 *   detector's history still holds the faulty readings (a stuck sensor that frees itself looks like a
 *   jump, a spike stays in the drift window). They stay false positives; they are also counted apart.
 * Undefined ratios (0/0) are null.
 */

import { FAULT_TYPES } from "./model.mjs";

export { FAULT_TYPES };

/** The detector's anomaly_type that names each fault type. */
export const ANOMALY_TYPE_TO_FAULT = Object.freeze({
  SENSOR_STUCK: "stuck_sensor",
  POWER_UNDERVOLTAGE: "voltage_collapse",
  THERMAL_HIGH: "thermal_runaway",
  ATTITUDE_RATE: "gyro_spike",
  DRIFT: "gradual_drift",
});

/** False positives this many points (same satellite) after a window are counted as "echoes". */
export const ECHO_POINTS = 8;

export const ratio = (num, den) => (den > 0 ? num / den : null);
export const f1 = (precision, recall) =>
  precision === null || recall === null ? null : precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);

function stats(values) {
  if (values.length === 0) return { count: 0, mean: null, median: null, min: null, max: null };
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return {
    count: sorted.length,
    mean: sorted.reduce((s, v) => s + v, 0) / sorted.length,
    median: sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2,
    min: sorted[0],
    max: sorted.at(-1),
  };
}

/**
 * The echo rule's clock: per satellite, how many points a point comes after the end of that
 * satellite's last fault window (0 inside one) and that window's fault type. Feed it every point in
 * send order.
 * @example const clock = faultClock(); clock.next(point).since // 0 inside a window, 1 just after
 */
export function faultClock() {
  const since = new Map();
  const last = new Map();
  return {
    next(p) {
      const inFault = p.fault_id !== null && p.fault_id !== undefined;
      const n = inFault ? 0 : (since.get(p.satellite_id) ?? Infinity) + 1;
      since.set(p.satellite_id, n);
      if (inFault) last.set(p.satellite_id, p.fault_type);
      return { since: n, faultType: last.get(p.satellite_id) ?? null };
    },
  };
}

/**
 * @param {{ points: Array<{satellite_id: string, time_ms: number, fault_id: string|null, fault_type: string|null,
 *   response: {id: string, is_anomaly: boolean, anomaly_type: string} | null}>,
 *   faults: Array<{id: string, type: string, start_ms: number}>, faultTypes?: string[] }} run
 */
export function scoreRun({ points, faults, faultTypes = FAULT_TYPES }) {
  const overall = { tp: 0, fp: 0, fn: 0, tn: 0 };
  const perType = Object.fromEntries(faultTypes.map((t) => [t, { tp: 0, fn: 0, fp: 0, typed_tp: 0, windows: new Set(), detected: new Map() }]));
  const fpByAnomalyType = {};
  let echoes = 0;
  let unscored = 0;
  const clock = faultClock();
  const faultById = new Map(faults.map((f) => [f.id, f]));

  for (const p of points) {
    const { since } = clock.next(p);
    const inFault = since === 0;
    const r = p.response;
    if (!r) {
      unscored++;
      continue;
    }
    const detected = r.is_anomaly === true;
    if (inFault) {
      const t = perType[p.fault_type] ?? (perType[p.fault_type] = { tp: 0, fn: 0, fp: 0, typed_tp: 0, windows: new Set(), detected: new Map() });
      t.windows.add(p.fault_id);
      if (detected) {
        overall.tp++;
        t.tp++;
        if (ANOMALY_TYPE_TO_FAULT[r.anomaly_type] === p.fault_type) t.typed_tp++;
        if (!t.detected.has(p.fault_id)) t.detected.set(p.fault_id, p.time_ms);
      } else {
        overall.fn++;
        t.fn++;
      }
    } else if (detected) {
      overall.fp++;
      fpByAnomalyType[r.anomaly_type] = (fpByAnomalyType[r.anomaly_type] ?? 0) + 1;
      const named = ANOMALY_TYPE_TO_FAULT[r.anomaly_type];
      if (named && perType[named]) perType[named].fp++;
      if (since <= ECHO_POINTS) echoes++;
    } else {
      overall.tn++;
    }
  }

  const byFaultType = {};
  let windows = 0;
  let windowsDetected = 0;
  const allDelays = [];
  for (const [type, t] of Object.entries(perType)) {
    const delays = [...t.detected].map(([id, firstMs]) => (firstMs - (faultById.get(id)?.start_ms ?? firstMs)) / 1000);
    allDelays.push(...delays);
    windows += t.windows.size;
    windowsDetected += t.detected.size;
    const precision = ratio(t.tp, t.tp + t.fp);
    const pointRecall = ratio(t.tp, t.tp + t.fn);
    byFaultType[type] = {
      windows: t.windows.size,
      windows_detected: t.detected.size,
      event_recall: ratio(t.detected.size, t.windows.size),
      fault_points: t.tp + t.fn,
      tp: t.tp,
      fn: t.fn,
      fp: t.fp,
      precision,
      point_recall: pointRecall,
      f1: f1(precision, pointRecall),
      type_agreement: ratio(t.typed_tp, t.tp),
      detection_delay_s: stats(delays),
    };
  }
  const precision = ratio(overall.tp, overall.tp + overall.fp);
  const recall = ratio(overall.tp, overall.tp + overall.fn);
  return {
    points: { total: points.length, scored: points.length - unscored, unscored },
    overall: {
      ...overall,
      detections: overall.tp + overall.fp,
      fault_points: overall.tp + overall.fn,
      nominal_points: overall.fp + overall.tn,
      precision,
      recall,
      f1: f1(precision, recall),
      false_positive_rate: ratio(overall.fp, overall.fp + overall.tn),
      windows,
      windows_detected: windowsDetected,
      event_recall: ratio(windowsDetected, windows),
      detection_delay_s: stats(allDelays),
    },
    by_fault_type: byFaultType,
    false_positives: {
      total: overall.fp,
      by_anomaly_type: fpByAnomalyType,
      within_echo_of_window: echoes,
      echo_points: ECHO_POINTS,
      /** Overall precision if the echoes (false positives just after a window) were not counted. */
      precision_excluding_echoes: ratio(overall.tp, overall.tp + overall.fp - echoes),
    },
  };
}

/** Latency summary (milliseconds) of a list of request durations. */
export function latencyStats(millis) {
  if (millis.length === 0) return { count: 0, mean: null, p50: null, p90: null, p99: null, max: null };
  const sorted = [...millis].sort((a, b) => a - b);
  const q = (p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
  const round = (x) => Math.round(x * 100) / 100;
  return {
    count: sorted.length,
    mean: round(sorted.reduce((s, v) => s + v, 0) / sorted.length),
    p50: round(q(0.5)),
    p90: round(q(0.9)),
    p99: round(q(0.99)),
    max: round(sorted.at(-1)),
  };
}

const pct = (x) => (x === null || x === undefined ? "   -  " : `${(100 * x).toFixed(1).padStart(5)}%`);
const num = (x, digits = 0) => (x === null || x === undefined ? "-" : x.toFixed(digits));

/** The per-fault-type table as Markdown (also readable in a terminal). */
export function formatTable(scores) {
  const rows = [
    "| fault type | windows | event recall | fault points | TP | FN | FP | precision | point recall | F1 | delay s (median / max) |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const [type, s] of Object.entries(scores.by_fault_type)) {
    rows.push(
      `| ${type} | ${s.windows} | ${pct(s.event_recall)} | ${s.fault_points} | ${s.tp} | ${s.fn} | ${s.fp} | ${pct(s.precision)} | ${pct(s.point_recall)} | ${pct(s.f1)} | ${num(s.detection_delay_s.median)} / ${num(s.detection_delay_s.max)} |`,
    );
  }
  const o = scores.overall;
  rows.push(
    `| **overall** | ${o.windows} | ${pct(o.event_recall)} | ${o.fault_points} | ${o.tp} | ${o.fn} | ${o.fp} | ${pct(o.precision)} | ${pct(o.recall)} | ${pct(o.f1)} | ${num(o.detection_delay_s.median)} / ${num(o.detection_delay_s.max)} |`,
  );
  return rows.join("\n");
}
