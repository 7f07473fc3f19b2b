/**
 * MissionState: the state every isolate must agree on — mission phase, each source's detector
 * state, anomaly history and operator labels — in one Durable Object with SQLite storage.
 * Each RPC runs atomically (the object's input gate), so a batch is recorded whole or not at all.
 */
import { DurableObject } from "cloudflare:workers";
import { detectorOf, usableState, type Detection, type DetectorState, type Reading } from "../domain/detector";
import { checkTransition, decide, type PolicyDecision } from "../domain/phase-policy";
import type { MissionPhase } from "../domain/schemas";
import { ATTR_DB_OPERATION_NAME, ATTR_DB_SYSTEM_NAME } from "@opentelemetry/semantic-conventions";
import { log } from "../telemetry/logger";
import { continueTrace, type TracedResult } from "../telemetry/object-spans";
import type { TraceCarrier } from "../telemetry/spans";

/** Earlier anomalies of the same type and source within this window raise recurrence_count. */
export const RECURRENCE_WINDOW_MS = 60 * 60 * 1000;
/** Anomalies kept; the oldest go first. */
export const MAX_ANOMALIES = 100_000;
const INITIAL_PHASE: MissionPhase = "NOMINAL_OPS";
/** The `latest` row of whichever source reported last ('*' is not a valid satellite_id). */
const ANY_SOURCE = "*";

export interface RecordEntry {
  satelliteId: string;
  reading: Reading;
  detection: Detection;
  /** The source's detector state after this reading (the last entry of a source is kept). */
  state: DetectorState;
}

export interface RecordedResult {
  id: string;
  phase: MissionPhase;
  recurrenceCount: number;
  decision: PolicyDecision;
}

export interface RecordOutcome {
  results: RecordedResult[];
  /** Set when an anomaly in this call took the mission to SAFE_MODE. */
  escalatedToSafeMode?: { from: MissionPhase; anomalyId: string };
}

export interface AnomalyRecord {
  id: string;
  satellite_id: string;
  timestamp: string;
  received_at: string;
  anomaly_type: string;
  anomaly_score: number;
  severity_score: number;
  severity_level: string;
  mission_phase: MissionPhase;
  recurrence_count: number;
  recommended_action: string;
  /** The check that found it: limit, rate, stuck or drift. */
  detector: string;
  false_positive: boolean | null;
}

export interface HistoryQuery {
  startTime?: number;
  endTime?: number;
  limit: number;
  severityMin?: number;
}

export interface PhaseInfo {
  phase: MissionPhase;
  since: string;
  transitions: Array<{ from: MissionPhase; to: MissionPhase; reason: string; forced: boolean; at: string }>;
}

export interface FeedbackOutcome {
  status: "labelled" | "unchanged" | "conflict" | "not_found";
  anomaly?: AnomalyRecord;
  accuracy?: number;
  labelled: number;
  false_positives: number;
}

type Row = Record<string, SqlStorageValue>;

/** The RPC methods a caller may run through {@link MissionState.traced} (lib/mission/mission-client.ts). */
export const MISSION_OPERATIONS = ["ping", "context", "record", "latest", "getPhase", "setPhase", "history", "feedback", "stats"] as const;
export type MissionOperation = (typeof MISSION_OPERATIONS)[number];

export class MissionState extends DurableObject<Env> {
  readonly #sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#migrate();
  }

  #migrate(): void {
    this.#sql.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS phase_transitions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, from_phase TEXT NOT NULL, to_phase TEXT NOT NULL,
        reason TEXT NOT NULL, forced INTEGER NOT NULL, at INTEGER NOT NULL);
      DROP TABLE IF EXISTS readings;
      CREATE TABLE IF NOT EXISTS detector_states (satellite_id TEXT PRIMARY KEY, state TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS latest (
        satellite_id TEXT PRIMARY KEY, received_at INTEGER NOT NULL, point TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS anomalies (
        id TEXT PRIMARY KEY, satellite_id TEXT NOT NULL, time INTEGER NOT NULL, received_at INTEGER NOT NULL,
        anomaly_type TEXT NOT NULL, anomaly_score REAL NOT NULL, severity_score REAL NOT NULL,
        severity_level TEXT NOT NULL, mission_phase TEXT NOT NULL, recurrence_count INTEGER NOT NULL,
        recommended_action TEXT NOT NULL, detector TEXT NOT NULL, false_positive INTEGER);
      CREATE INDEX IF NOT EXISTS anomalies_by_time ON anomalies (time);
      CREATE INDEX IF NOT EXISTS anomalies_by_source ON anomalies (satellite_id, anomaly_type, time);
    `);
    if (this.#meta("phase") === undefined) {
      this.#setMeta("phase", INITIAL_PHASE);
      this.#setMeta("phase_since", String(Date.now()));
    }
  }

  #meta(key: string): string | undefined {
    const row = this.#sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0];
    return row?.value;
  }

  #setMeta(key: string, value: string): void {
    this.#sql.exec("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", key, value);
  }

  #phase(): MissionPhase {
    return (this.#meta("phase") ?? INITIAL_PHASE) as MissionPhase;
  }

  /**
   * Runs operation `op` with `args` under the caller's trace (W3C `carrier`), in a SERVER span
   * `MissionState.<op>` that is answered with the result, so it leaves in the caller's flush
   * (lib/telemetry/object-spans.ts: continueTrace, adoptSpans).
   */
  async traced<K extends MissionOperation>(carrier: TraceCarrier, op: K, args: Parameters<MissionState[K]>): Promise<TracedResult<ReturnType<MissionState[K]>>> {
    if (!(MISSION_OPERATIONS as readonly string[]).includes(op)) throw new TypeError(`not a MissionState operation: ${String(op).slice(0, 40)}`);
    const method = this[op] as unknown as (...a: unknown[]) => ReturnType<MissionState[K]>;
    return continueTrace(carrier, `MissionState.${op}`, { [ATTR_DB_SYSTEM_NAME]: "sqlite", [ATTR_DB_OPERATION_NAME]: op }, () => method.apply(this, args));
  }

  /** A cheap read for health checks. */
  ping(): { ok: true; phase: MissionPhase } {
    return { ok: true, phase: this.#phase() };
  }

  /** Phase and the detector state of each source that has one, for detection. */
  context(satelliteIds: string[]): { phase: MissionPhase; states: Record<string, DetectorState> } {
    const states: Record<string, DetectorState> = {};
    for (const id of new Set(satelliteIds)) {
      const state = this.#state(id);
      // Own properties even for ids such as "__proto__" (an assignment would set the prototype and
      // make the answer unserializable over RPC): a source id is a key like any other.
      if (state) Object.defineProperty(states, id, { value: state, enumerable: true, writable: true, configurable: true });
    }
    return { phase: this.#phase(), states };
  }

  #state(satelliteId: string): DetectorState | undefined {
    const row = this.#sql.exec<{ state: string }>("SELECT state FROM detector_states WHERE satellite_id = ?", satelliteId).toArray()[0];
    // A state an older detector wrote is replaced by a fresh one (usableState).
    return row ? usableState(JSON.parse(row.state)) : undefined;
  }

  /**
   * Stores the detections of one request, applies the phase policy with the authoritative phase and
   * recurrence counts, and escalates to SAFE_MODE when the policy says so.
   */
  record(entries: RecordEntry[], now = Date.now()): RecordOutcome {
    let phase = this.#phase();
    const results: RecordedResult[] = [];
    let escalatedToSafeMode: RecordOutcome["escalatedToSafeMode"];
    for (const { satelliteId, reading, detection, state } of entries) {
      const recurrenceCount = detection.isAnomaly ? this.#recurrences(satelliteId, detection.type, reading.time) : 0;
      const decision = decide(detection, phase, recurrenceCount);
      const id = `${detection.isAnomaly ? "an" : "tp"}_${crypto.randomUUID().replaceAll("-", "")}`;
      this.#sql.exec(
        "INSERT INTO detector_states (satellite_id, state) VALUES (?, ?) ON CONFLICT(satellite_id) DO UPDATE SET state = excluded.state",
        satelliteId, JSON.stringify(state),
      );
      if (detection.isAnomaly) {
        this.#sql.exec(
          `INSERT INTO anomalies (id, satellite_id, time, received_at, anomaly_type, anomaly_score, severity_score,
             severity_level, mission_phase, recurrence_count, recommended_action, detector, false_positive)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
          id, satelliteId, reading.time, now, detection.type, detection.score, decision.severityScore,
          decision.severityLevel, phase, recurrenceCount, decision.recommendedAction, detectorOf(detection),
        );
      }
      results.push({ id, phase, recurrenceCount, decision });
      const latest = JSON.stringify({ id, satellite_id: satelliteId, reading, is_anomaly: detection.isAnomaly, anomaly_type: detection.type, anomaly_score: detection.score, severity_level: decision.severityLevel, mission_phase: phase });
      // One row per source, and ANY_SOURCE for whichever reported last.
      for (const key of [satelliteId, ANY_SOURCE]) {
        this.#sql.exec(
          "INSERT INTO latest (satellite_id, received_at, point) VALUES (?, ?, ?) ON CONFLICT(satellite_id) DO UPDATE SET received_at = excluded.received_at, point = excluded.point",
          key, now, latest,
        );
      }
      if (decision.shouldEscalateToSafeMode && phase !== "SAFE_MODE") {
        this.#changePhase(phase, "SAFE_MODE", `auto: ${decision.severityLevel} ${detection.type} anomaly ${id}`, false, now);
        escalatedToSafeMode = { from: phase, anomalyId: id };
        phase = "SAFE_MODE";
      }
    }
    this.#trimAnomalies();
    return { results, ...(escalatedToSafeMode && { escalatedToSafeMode }) };
  }

  #recurrences(satelliteId: string, type: string, time: number): number {
    const row = this.#sql
      .exec<{ n: number }>(
        "SELECT COUNT(*) AS n FROM anomalies WHERE satellite_id = ? AND anomaly_type = ? AND time > ? AND time <= ?",
        satelliteId, type, time - RECURRENCE_WINDOW_MS, time,
      )
      .one();
    return row.n;
  }

  #trimAnomalies(): void {
    const { n } = this.#sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM anomalies").one();
    if (n > MAX_ANOMALIES) {
      this.#sql.exec("DELETE FROM anomalies WHERE id IN (SELECT id FROM anomalies ORDER BY received_at ASC LIMIT ?)", n - MAX_ANOMALIES);
    }
  }

  /** The latest point of one source, or of whichever source reported last. */
  latest(satelliteId?: string): { received_at: string; point: unknown } | undefined {
    const row = this.#sql
      .exec<{ received_at: number; point: string }>("SELECT received_at, point FROM latest WHERE satellite_id = ?", satelliteId ?? ANY_SOURCE)
      .toArray()[0];
    return row && { received_at: new Date(row.received_at).toISOString(), point: JSON.parse(row.point) };
  }

  getPhase(): PhaseInfo {
    const transitions = this.#sql
      .exec<{ from_phase: string; to_phase: string; reason: string; forced: number; at: number }>(
        "SELECT from_phase, to_phase, reason, forced, at FROM phase_transitions ORDER BY seq DESC LIMIT 20",
      )
      .toArray()
      .map((t) => ({ from: t.from_phase as MissionPhase, to: t.to_phase as MissionPhase, reason: t.reason, forced: t.forced === 1, at: new Date(t.at).toISOString() }));
    return { phase: this.#phase(), since: new Date(Number(this.#meta("phase_since"))).toISOString(), transitions };
  }

  /** Changes the phase when the transition is valid (or forced); otherwise says why not. */
  setPhase(to: MissionPhase, force: boolean, reason?: string): { changed: boolean; from: MissionPhase; phase: MissionPhase; reason: string } {
    const from = this.#phase();
    const check = checkTransition(from, to, force);
    if (!check.allowed) return { changed: false, from, phase: from, reason: check.reason };
    const why = reason ? `${check.reason}: ${reason}` : check.reason;
    this.#changePhase(from, to, why, force, Date.now());
    return { changed: true, from, phase: to, reason: why };
  }

  #changePhase(from: MissionPhase, to: MissionPhase, reason: string, forced: boolean, now: number): void {
    this.#setMeta("phase", to);
    this.#setMeta("phase_since", String(now));
    this.#sql.exec("INSERT INTO phase_transitions (from_phase, to_phase, reason, forced, at) VALUES (?, ?, ?, ?, ?)", from, to, reason, forced ? 1 : 0, now);
    log(to === "SAFE_MODE" ? "warn" : "info", "phase_changed", { from_phase: from, to_phase: to, forced, automatic: reason.startsWith("auto:") });
  }

  history(query: HistoryQuery): AnomalyRecord[] {
    const rows = this.#sql
      .exec<Row>(
        `SELECT * FROM anomalies WHERE time >= ? AND time <= ? AND severity_score >= ? ORDER BY time DESC, received_at DESC LIMIT ?`,
        query.startTime ?? 0, query.endTime ?? Number.MAX_SAFE_INTEGER, query.severityMin ?? 0, query.limit,
      )
      .toArray();
    return rows.map(toAnomalyRecord);
  }

  /** Labels a detection; a label is final (a different second label is a conflict). */
  feedback(id: string, falsePositive: boolean): FeedbackOutcome {
    const row = this.#sql.exec<Row>("SELECT * FROM anomalies WHERE id = ?", id).toArray()[0];
    if (!row) return { status: "not_found", ...this.#labelCounts() };
    if (row.false_positive !== null) {
      const same = (row.false_positive === 1) === falsePositive;
      return { status: same ? "unchanged" : "conflict", anomaly: toAnomalyRecord(row), ...this.#labelCounts() };
    }
    this.#sql.exec("UPDATE anomalies SET false_positive = ? WHERE id = ?", falsePositive ? 1 : 0, id);
    return { status: "labelled", anomaly: toAnomalyRecord({ ...row, false_positive: falsePositive ? 1 : 0 }), ...this.#labelCounts() };
  }

  #labelCounts(): { labelled: number; false_positives: number; accuracy?: number } {
    const r = this.#sql
      .exec<{ labelled: number; fp: number | null }>("SELECT COUNT(false_positive) AS labelled, SUM(false_positive) AS fp FROM anomalies")
      .one();
    const fp = r.fp ?? 0;
    return { labelled: r.labelled, false_positives: fp, ...(r.labelled > 0 && { accuracy: (r.labelled - fp) / r.labelled }) };
  }

  /** Sizes for /api/v1/memory/stats: what the recurrence memory holds. */
  stats(now = Date.now()): { anomalies: number; recent_anomalies: number; sources: number; detector_states: number; labelled: number; false_positives: number; accuracy?: number } {
    const count = (sql: string, ...args: SqlStorageValue[]) => this.#sql.exec<{ n: number }>(sql, ...args).one().n;
    return {
      anomalies: count("SELECT COUNT(*) AS n FROM anomalies"),
      recent_anomalies: count("SELECT COUNT(*) AS n FROM anomalies WHERE received_at > ?", now - RECURRENCE_WINDOW_MS),
      sources: count("SELECT COUNT(*) AS n FROM latest WHERE satellite_id != ?", ANY_SOURCE),
      detector_states: count("SELECT COUNT(*) AS n FROM detector_states"),
      ...this.#labelCounts(),
    };
  }
}

function toAnomalyRecord(row: Row): AnomalyRecord {
  return {
    id: String(row.id),
    satellite_id: String(row.satellite_id),
    timestamp: new Date(Number(row.time)).toISOString(),
    received_at: new Date(Number(row.received_at)).toISOString(),
    anomaly_type: String(row.anomaly_type),
    anomaly_score: Number(row.anomaly_score),
    severity_score: Number(row.severity_score),
    severity_level: String(row.severity_level),
    mission_phase: String(row.mission_phase) as MissionPhase,
    recurrence_count: Number(row.recurrence_count),
    recommended_action: String(row.recommended_action),
    detector: String(row.detector),
    false_positive: row.false_positive === null ? null : row.false_positive === 1,
  };
}
