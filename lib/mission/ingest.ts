/**
 * Telemetry ingest: admit each point's satellite through the fleet registry, detect each point
 * against its satellite's detector state, let each satellite's object apply the phase policy and
 * store its points (in parallel, one call per satellite), and shape the API's anomaly response.
 */
import { detect, detectorOf, type Detection, type DetectorState, type Reading } from "../domain/detector";
import { pointId } from "../domain/ids";
import { decide, type PolicyDecision } from "../domain/phase-policy";
import type { MissionPhase, TelemetryPointInput } from "../domain/schemas";
import type { Span } from "@opentelemetry/api";
import { ApiError } from "../http/errors";
import { instruments } from "../telemetry/instruments";
import { log } from "../telemetry/logger";
import { withSpan } from "../telemetry/spans";
import type { RecordedResult, RecordEntry, RecordOutcome } from "../objects/satellite-state";
import { fleetView } from "./fleet";
import { callSatellite, historyCache, rememberPhase, rememberState } from "./mission-client";

export const DEFAULT_SATELLITE_ID = "default";
/** The phase assumed when the object cannot be reached and no isolate has seen it yet. */
const FALLBACK_PHASE: MissionPhase = "NOMINAL_OPS";

export interface AnomalyResponse {
  id: string;
  satellite_id: string;
  is_anomaly: boolean;
  anomaly_score: number;
  anomaly_type: string;
  /** The check that found the anomaly (limit, rate, stuck, drift); null when nominal. */
  detector: string | null;
  severity_score: number;
  severity_level: string;
  mission_phase: MissionPhase;
  recommended_action: string;
  escalation_level: string;
  is_allowed: boolean;
  allowed_actions: readonly string[];
  should_escalate_to_safe_mode: boolean;
  confidence: number;
  reasoning: string[];
  recurrence_count: number;
  timestamp: string;
  /** False when storage was unreachable: the verdict stands, but it was not recorded. */
  persisted: boolean;
}

export interface IngestResult {
  responses: AnomalyResponse[];
  escalatedToSafeMode: boolean;
  /** True when every point was recorded. */
  persisted: boolean;
}

export interface IngestOptions {
  /** The field a refused point's satellite_id is reported under. Default `telemetry.<i>.satellite_id`. */
  fieldOf?: (index: number) => string;
  now?: number;
}

/** Anomaly log lines per request at most; the rest are counted in one more line. */
export const MAX_ANOMALY_LOGS = 20;
/** `anomaly` span events on `model_inference` at most (one per anomalous point). */
export const MAX_ANOMALY_EVENTS = 16;
const SEVERITY_RANK: Record<string, number> = { LOW: 1, MEDIUM: 2, HIGH: 3, CRITICAL: 4 };

/**
 * Detects and records points in order; points of one satellite see the earlier ones of the same
 * call. Traced as `anomaly_detection` (children: cache_operation, model_inference, one
 * database_query per satellite object), and each anomaly is logged (at most
 * {@link MAX_ANOMALY_LOGS} lines per call). A point of a satellite the registry refuses fails the
 * whole call with a 422 naming its field, before anything is recorded.
 */
export function ingestTelemetry(env: Env, points: readonly TelemetryPointInput[], options: IngestOptions = {}): Promise<IngestResult> {
  return withSpan("anomaly_detection", { "astra.telemetry.points": points.length }, async (span) => {
    const result = await detectAndRecord(env, points, options);
    describeIngest(span, result);
    logAnomalies(result.responses);
    return result;
  });
}

async function detectAndRecord(env: Env, points: readonly TelemetryPointInput[], options: IngestOptions): Promise<IngestResult> {
  const now = options.now ?? Date.now();
  const satelliteIds = points.map((p) => p.satellite_id ?? DEFAULT_SATELLITE_ID);
  const { refused, unreachable } = await fleetView.admit(env, satelliteIds);
  if (refused.length > 0) throw refusal(refused[0]!, satelliteIds, options.fieldOf ?? ((i) => `telemetry.${i}.satellite_id`));
  const unrecorded = new Set(unreachable);
  const [phase, states] = await Promise.all([fleetView.phase(env), detectorStates(env, satelliteIds, unrecorded)]);

  // One span for the whole batch (not one per point): spans per request stay constant.
  const entries = withSpan("model_inference", { "astra.detector.points": points.length, "astra.detector.checks": "limit,rate,stuck,drift" }, (span) => {
    const list = points.map((point, i) => {
      const satelliteId = satelliteIds[i]!;
      const reading = toReading(point, now);
      const started = performance.now();
      const { detection, state } = detect(reading, states.get(satelliteId));
      // Workers advance clocks only on I/O in production, so this is ~0 there; see README (tracing).
      instruments.detectionLatency.record((performance.now() - started) / 1000);
      // The next point of the same satellite in this batch sees this one, as sequential requests would.
      states.set(satelliteId, state);
      return { satelliteId, reading, detection, state };
    });
    describeInference(span, list);
    return list;
  }, { leaf: true });

  const outcomes = await recordPerSatellite(env, entries, phase ?? FALLBACK_PHASE, now, unrecorded);
  let escalated = false;
  for (const outcome of outcomes.values()) {
    if (outcome.escalatedToSafeMode) escalated = true;
    if (outcome.missionPhase) rememberPhase(outcome.missionPhase);
  }
  if (escalated) {
    rememberPhase("SAFE_MODE");
    instruments.recoveryActions.add(1, { action_type: "escalate_safe_mode", status: "success" });
  }
  if (outcomes.size < new Set(satelliteIds).size) {
    instruments.recoveryActions.add(1, { action_type: "fallback_isolate_cache", status: "success" });
  }
  for (const [satelliteId, state] of states) if (state && outcomes.has(satelliteId)) rememberState(satelliteId, state);

  const used = new Map<string, number>();
  const responses = entries.map((entry) => {
    const outcome = outcomes.get(entry.satelliteId);
    const n = used.get(entry.satelliteId) ?? 0;
    used.set(entry.satelliteId, n + 1);
    const recorded: RecordedResult = outcome?.results[n] ?? localResult(entry.satelliteId, entry.detection, phase ?? FALLBACK_PHASE);
    // {detector, severity} on both this and astra_false_positives_total: the dashboard divides one
    // by the other one-to-one, which only matches when the two carry the same label set.
    if (entry.detection.isAnomaly) {
      instruments.anomaliesDetected.add(1, { severity: recorded.decision.severityLevel, detector: detectorOf(entry.detection) });
    }
    return toResponse(entry.satelliteId, entry.reading, entry.detection, recorded, outcome !== undefined);
  });
  const newest = outcomes.get(entries.at(-1)!.satelliteId)?.latest;
  if (newest) fleetView.noteRecorded({ received_at: now, point: newest });
  return { responses, escalatedToSafeMode: escalated, persisted: outcomes.size === new Set(satelliteIds).size };
}

function refusal(first: { id: string; reason: string }, satelliteIds: readonly string[], fieldOf: (index: number) => string): ApiError {
  const field = fieldOf(satelliteIds.indexOf(first.id));
  return first.reason === "fleet_full"
    ? new ApiError(422, "fleet_full", `satellite ${first.id} is not registered and the fleet is at its MAX_SATELLITES cap`, field)
    : new ApiError(422, "unknown_satellite", `satellite ${first.id} is not registered; an admin registers it with PUT /api/v1/fleet/satellites`, field);
}

/** Each satellite's detector state: from the cache where live, else one call per satellite object, in parallel. */
async function detectorStates(env: Env, satelliteIds: readonly string[], unrecorded: ReadonlySet<string>): Promise<Map<string, DetectorState | undefined>> {
  const states = new Map<string, DetectorState | undefined>();
  const ids = new Set(satelliteIds);
  const missing: string[] = [];
  withSpan("cache_operation", { "astra.cache.store_type": "history", "astra.cache.operation": "get", "astra.cache.keys": ids.size }, (span) => {
    for (const id of ids) {
      const cached = historyCache.get(id);
      if (cached) states.set(id, cached);
      else missing.push(id);
    }
    span.setAttributes({ "astra.cache.hits": ids.size - missing.length, "astra.cache.hit": missing.length === 0 });
  }, { leaf: true });
  await Promise.all(
    missing.map(async (id) => {
      if (unrecorded.has(id)) return void states.set(id, undefined);
      try {
        const { state } = await callSatellite(env, id, (s) => s.context(id), { retry: "satellite.context" });
        // A satellite without a state yet is not cached: its first record writes one.
        if (state) historyCache.set(id, state);
        states.set(id, state);
      } catch {
        states.set(id, undefined);
      }
    }),
  );
  return states;
}

/** One `record` call per satellite, in parallel; a satellite whose call failed is absent from the answer. */
async function recordPerSatellite(
  env: Env,
  entries: ReadonlyArray<{ satelliteId: string } & RecordEntry>,
  phase: MissionPhase,
  now: number,
  unrecorded: ReadonlySet<string>,
): Promise<Map<string, RecordOutcome>> {
  const bySatellite = new Map<string, RecordEntry[]>();
  for (const { satelliteId, reading, detection, state } of entries) {
    if (unrecorded.has(satelliteId)) continue;
    let list = bySatellite.get(satelliteId);
    if (!list) bySatellite.set(satelliteId, (list = []));
    list.push({ reading, detection, state });
  }
  const outcomes = new Map<string, RecordOutcome>();
  await Promise.all(
    [...bySatellite].map(async ([satelliteId, list]) => {
      try {
        outcomes.set(satelliteId, await callSatellite(env, satelliteId, (s) => s.record(satelliteId, list, phase, now)));
      } catch {
        // Judged but not recorded: the response says persisted=false for this satellite's points.
      }
    }),
  );
  return outcomes;
}

/** Counts on the inference span (its duration is ~0 in production: CPU only, see README tracing). */
function describeInference(span: Span, entries: ReadonlyArray<{ satelliteId: string; detection: Detection }>): void {
  let anomalies = 0;
  let findings = 0;
  let maxScore = 0;
  entries.forEach(({ satelliteId, detection }, index) => {
    findings += detection.findings.length;
    maxScore = Math.max(maxScore, detection.score);
    if (!detection.isAnomaly) return;
    if (anomalies++ < MAX_ANOMALY_EVENTS) {
      span.addEvent("anomaly", { "astra.point.index": index, "astra.satellite.id": satelliteId, "astra.anomaly.type": detection.type, "astra.anomaly.score": detection.score });
    }
  });
  span.setAttributes({ "astra.detector.anomalies": anomalies, "astra.detector.findings": findings, "astra.anomaly.score": maxScore });
}

/** The verdict of the request on the `anomaly_detection` span: strongest anomaly, highest severity. */
function describeIngest(span: Span, result: IngestResult): void {
  let strongest: AnomalyResponse | undefined;
  let severity: string | undefined;
  let count = 0;
  for (const r of result.responses) {
    if (!r.is_anomaly) continue;
    count++;
    if (!strongest || r.anomaly_score > strongest.anomaly_score) strongest = r;
    if (!severity || (SEVERITY_RANK[r.severity_level] ?? 0) > (SEVERITY_RANK[severity] ?? 0)) severity = r.severity_level;
  }
  span.setAttributes({
    "astra.anomaly.count": count,
    "astra.anomaly.score": strongest?.anomaly_score ?? 0,
    "astra.anomaly.type": strongest?.anomaly_type ?? "NONE",
    ...(severity !== undefined && { "astra.anomaly.severity": severity }),
    "astra.mission.phase": result.responses.at(-1)?.mission_phase ?? FALLBACK_PHASE,
    "astra.persisted": result.persisted,
    "astra.escalated_to_safe_mode": result.escalatedToSafeMode,
  });
}

function logAnomalies(responses: readonly AnomalyResponse[]): void {
  let logged = 0;
  for (const r of responses) {
    if (!r.is_anomaly) continue;
    if (logged++ >= MAX_ANOMALY_LOGS) continue;
    log(r.severity_level === "CRITICAL" || r.severity_level === "HIGH" ? "warn" : "info", "anomaly_detected", {
      anomaly_id: r.id,
      satellite_id: r.satellite_id,
      anomaly_type: r.anomaly_type,
      anomaly_score: r.anomaly_score,
      severity: r.severity_level,
      mission_phase: r.mission_phase,
      recurrence_count: r.recurrence_count,
      escalate_to_safe_mode: r.should_escalate_to_safe_mode,
      persisted: r.persisted,
    });
  }
  if (logged > MAX_ANOMALY_LOGS) log("warn", "anomalies_not_logged", { count: logged - MAX_ANOMALY_LOGS, logged: MAX_ANOMALY_LOGS });
}

function toReading(point: TelemetryPointInput, now: number): Reading {
  return {
    voltage: point.voltage,
    temperature: point.temperature,
    gyro: point.gyro,
    ...(point.current !== undefined && { current: point.current }),
    ...(point.wheel_speed !== undefined && { wheel_speed: point.wheel_speed }),
    time: point.timestamp ? Date.parse(point.timestamp) : now,
  };
}

/** The verdict when storage is down: same detector and policy, no recurrence memory. */
function localResult(satelliteId: string, detection: Detection, phase: MissionPhase): RecordedResult {
  const decision: PolicyDecision = decide(detection, phase, 0);
  return { id: pointId(detection.isAnomaly, satelliteId), phase, recurrenceCount: 0, decision };
}

function toResponse(satelliteId: string, reading: Reading, detection: Detection, r: RecordedResult, persisted: boolean): AnomalyResponse {
  const d = r.decision;
  return {
    id: r.id,
    satellite_id: satelliteId,
    is_anomaly: detection.isAnomaly,
    anomaly_score: detection.score,
    anomaly_type: detection.type,
    detector: detection.isAnomaly ? detectorOf(detection) : null,
    severity_score: d.severityScore,
    severity_level: d.severityLevel,
    mission_phase: r.phase,
    recommended_action: d.recommendedAction,
    escalation_level: d.escalationLevel,
    is_allowed: d.isAllowed,
    allowed_actions: d.allowedActions,
    should_escalate_to_safe_mode: d.shouldEscalateToSafeMode,
    confidence: detection.confidence,
    reasoning: d.reasoning,
    recurrence_count: r.recurrenceCount,
    timestamp: new Date(reading.time).toISOString(),
    persisted,
  };
}
