/**
 * Telemetry ingest: detect each point against its source's detector state, let the MissionState
 * object apply the phase policy and store it, and shape the API's anomaly response.
 */
import { detect, detectorOf, type Detection, type Reading } from "../domain/detector";
import { decide, type PolicyDecision } from "../domain/phase-policy";
import type { MissionPhase, TelemetryPointInput } from "../domain/schemas";
import type { Span } from "@opentelemetry/api";
import { instruments } from "../telemetry/instruments";
import { log } from "../telemetry/logger";
import { withSpan } from "../telemetry/spans";
import type { RecordedResult, RecordOutcome } from "../objects/mission-state";
import { callMission, detectionContext, rememberPhase, rememberState } from "./mission-client";

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
  persisted: boolean;
}

/** Anomaly log lines per request at most; the rest are counted in one more line. */
export const MAX_ANOMALY_LOGS = 20;
/** `anomaly` span events on `model_inference` at most (one per anomalous point). */
export const MAX_ANOMALY_EVENTS = 16;
const SEVERITY_RANK: Record<string, number> = { LOW: 1, MEDIUM: 2, HIGH: 3, CRITICAL: 4 };

/**
 * Detects and records points in order; points of one source see the earlier ones of the same call.
 * Traced as `anomaly_detection` (children: cache_operation, model_inference, database_query), and
 * each anomaly is logged (at most {@link MAX_ANOMALY_LOGS} lines per call).
 */
export function ingestTelemetry(env: Env, points: readonly TelemetryPointInput[], now = Date.now()): Promise<IngestResult> {
  return withSpan("anomaly_detection", { "astra.telemetry.points": points.length }, async (span) => {
    const result = await detectAndRecord(env, points, now);
    describeIngest(span, result);
    logAnomalies(result.responses);
    return result;
  });
}

async function detectAndRecord(env: Env, points: readonly TelemetryPointInput[], now: number): Promise<IngestResult> {
  const satelliteIds = points.map((p) => p.satellite_id ?? DEFAULT_SATELLITE_ID);
  const context = await detectionContext(env, satelliteIds);
  // One span for the whole batch (not one per point): spans per request stay constant.
  const entries = withSpan("model_inference", { "astra.detector.points": points.length, "astra.detector.checks": "limit,rate,stuck,drift" }, (span) => {
    const list = points.map((point, i) => {
      const satelliteId = satelliteIds[i]!;
      const reading = toReading(point, now);
      const started = performance.now();
      const { detection, state } = detect(reading, context.states.get(satelliteId));
      // Workers advance clocks only on I/O in production, so this is ~0 there; see README (tracing).
      instruments.detectionLatency.record((performance.now() - started) / 1000);
      // The next point of the same source in this batch sees this one, as sequential requests would.
      context.states.set(satelliteId, state);
      return { satelliteId, reading, detection, state };
    });
    describeInference(span, list);
    return list;
  });

  let outcome: RecordOutcome | undefined;
  try {
    outcome = await callMission(env, (s) => s.record(entries, now));
  } catch {
    instruments.recoveryActions.add(1, { action_type: "fallback_isolate_cache", status: "success" });
  }
  const phase = outcome?.results.at(-1)?.phase ?? context.phase ?? FALLBACK_PHASE;
  for (const [satelliteId, state] of context.states) if (state) rememberState(satelliteId, state);
  if (outcome) rememberPhase(outcome.escalatedToSafeMode ? "SAFE_MODE" : phase);
  if (outcome?.escalatedToSafeMode) {
    instruments.recoveryActions.add(1, { action_type: "escalate_safe_mode", status: "success" });
  }

  const responses = entries.map((entry, i) => {
    const recorded: RecordedResult = outcome?.results[i] ?? localResult(entry.detection, phase);
    // {detector, severity} on both this and astra_false_positives_total: the dashboard divides one
    // by the other one-to-one, which only matches when the two carry the same label set.
    if (entry.detection.isAnomaly) {
      instruments.anomaliesDetected.add(1, { severity: recorded.decision.severityLevel, detector: detectorOf(entry.detection) });
    }
    return toResponse(entry.satelliteId, entry.reading, entry.detection, recorded, outcome !== undefined);
  });
  return { responses, escalatedToSafeMode: outcome?.escalatedToSafeMode !== undefined, persisted: outcome !== undefined };
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
function localResult(detection: Detection, phase: MissionPhase): RecordedResult {
  const decision: PolicyDecision = decide(detection, phase, 0);
  return { id: `${detection.isAnomaly ? "an" : "tp"}_${crypto.randomUUID().replaceAll("-", "")}`, phase, recurrenceCount: 0, decision };
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
