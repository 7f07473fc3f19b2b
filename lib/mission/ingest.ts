/**
 * Telemetry ingest: detect each point against its source's recent history, let the MissionState
 * object apply the phase policy and store it, and shape the API's anomaly response.
 */
import { detect, type Detection, type Reading } from "../domain/detector";
import { decide, type PolicyDecision } from "../domain/phase-policy";
import type { MissionPhase, TelemetryPointInput } from "../domain/schemas";
import type { Env } from "../env";
import { instruments } from "../telemetry/instruments";
import type { RecordedResult, RecordOutcome } from "../state/mission-state";
import { callMission, detectionContext, rememberPhase, rememberReadings } from "./mission-client";

export const DEFAULT_SATELLITE_ID = "default";
/** The phase assumed when the object cannot be reached and no isolate has seen it yet. */
const FALLBACK_PHASE: MissionPhase = "NOMINAL_OPS";

export interface AnomalyResponse {
  id: string;
  satellite_id: string;
  is_anomaly: boolean;
  anomaly_score: number;
  anomaly_type: string;
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

/** Detects and records points in order; points of one source see the earlier ones of the same call. */
export async function ingestTelemetry(env: Env, points: readonly TelemetryPointInput[], now = Date.now()): Promise<IngestResult> {
  const satelliteIds = points.map((p) => p.satellite_id ?? DEFAULT_SATELLITE_ID);
  const context = await detectionContext(env, satelliteIds);
  const entries = points.map((point, i) => {
    const satelliteId = satelliteIds[i]!;
    const reading = toReading(point, now);
    const history = context.histories.get(satelliteId) ?? [];
    const started = performance.now();
    const detection = detect(reading, history);
    // Workers advance clocks only on I/O in production, so this is ~0 there; see README (tracing).
    instruments.detectionLatency.record((performance.now() - started) / 1000);
    context.histories.set(satelliteId, [...history, reading]);
    return { satelliteId, reading, detection };
  });

  let outcome: RecordOutcome | undefined;
  try {
    outcome = await callMission(env, (s) => s.record(entries, now));
  } catch {
    instruments.recoveryActions.add(1, { action_type: "fallback_isolate_cache", status: "success" });
  }
  const phase = outcome?.results.at(-1)?.phase ?? context.phase ?? FALLBACK_PHASE;
  for (const [satelliteId, history] of context.histories) rememberReadings(satelliteId, history);
  if (outcome) rememberPhase(outcome.escalatedToSafeMode ? "SAFE_MODE" : phase);
  if (outcome?.escalatedToSafeMode) {
    instruments.recoveryActions.add(1, { action_type: "escalate_safe_mode", status: "success" });
  }

  const responses = entries.map((entry, i) => {
    const recorded: RecordedResult = outcome?.results[i] ?? localResult(entry.detection, phase);
    if (entry.detection.isAnomaly) instruments.anomaliesDetected.add(1, { severity: recorded.decision.severityLevel });
    return toResponse(entry.satelliteId, entry.reading, entry.detection, recorded, outcome !== undefined);
  });
  return { responses, escalatedToSafeMode: outcome?.escalatedToSafeMode !== undefined, persisted: outcome !== undefined };
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
