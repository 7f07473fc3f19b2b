/**
 * SatelliteState: one Durable Object per satellite (named by lib/objects/names.ts) holding what only
 * that satellite's points touch — its detector state, latest point, recurrence memory and
 * anomalies with their labels. Each RPC runs alone in the object, so a satellite's points are
 * recorded in order whichever isolates send them, and a batch's points of this satellite are
 * recorded whole or not at all.
 *
 * What the fleet needs to know (anomalies for the fleet index, labels for accuracy, escalations)
 * goes to the mission object through an outbox written in the same transaction: delivered at once
 * when an anomaly asks for SAFE_MODE or an operator labels one, otherwise by an alarm at most once
 * per {@link FLEET_DELIVERY_DELAY_MS}, retried with backoff until the mission has it.
 */
import { DurableObject } from "cloudflare:workers";
import { alarmNoLaterThan } from "./alarms";
import { context, ROOT_CONTEXT, SpanKind } from "@opentelemetry/api";
import { suppressTracing } from "@opentelemetry/core";
import { ATTR_DB_COLLECTION_NAME, ATTR_DB_NAMESPACE, ATTR_DB_OPERATION_NAME, ATTR_DB_SYSTEM_NAME } from "@opentelemetry/semantic-conventions";
import { detect, detectorOf, usableState, type Detection, type DetectorState, type Reading } from "../domain/detector";
import { pointId } from "../domain/ids";
import { decide, type PolicyDecision } from "../domain/phase-policy";
import type { MissionPhase } from "../domain/schemas";
import { log, errorFields } from "../telemetry/logger";
import { adoptSpans, type TracedResult } from "../telemetry/object-spans";
import { injectTraceContext, withSpan, type TraceCarrier } from "../telemetry/spans";
import { ANOMALIES_DDL, RECURRENCE_WINDOW_MS, insertAnomaly, labelCounts, queryAnomalies, toAnomalyRecord, trimAnomalies, type AnomalyRecord, type HistoryQuery, type Row } from "./anomaly-rows";
import type { AbsorbAnswer, FleetItem, LabelTotals, LegacySatelliteData, MissionState } from "./mission-state";
import { MISSION_OBJECT_NAME } from "./names";
import { callsServed, runTraced } from "./traced";

/** Anomalies kept per satellite; the oldest go first (the fleet index keeps its own bound). */
export const MAX_SATELLITE_ANOMALIES = 10_000;
/** Anomalies reach the fleet index at most this long after they are recorded (when the mission is up). */
export const FLEET_DELIVERY_DELAY_MS = 1000;
/** Longest wait between two delivery attempts while the mission is unreachable. */
const MAX_DELIVERY_BACKOFF_MS = 30_000;
/** Items sent to the mission per delivery call at most (the rest follow in the next). */
const MAX_ITEMS_PER_DELIVERY = 500;

export interface RecordEntry {
  reading: Reading;
  detection: Detection;
  /** The satellite's detector state after this reading (the last entry's is kept). */
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
  /** Set when an anomaly in this call took the mission to SAFE_MODE (the mission decided it). */
  escalatedToSafeMode?: { from: MissionPhase; anomalyId: string };
  /** The mission's phase after this call when the mission was asked (an escalation), else undefined. */
  missionPhase?: MissionPhase;
  /** The satellite's latest point as stored (JSON), for the fleet's `latest`. */
  latest: string;
}

export interface FeedbackOutcome {
  status: "labelled" | "unchanged" | "conflict" | "not_found";
  anomaly?: AnomalyRecord;
  /** Fleet-wide label totals from the mission; absent when it could not be reached (the label is kept and delivered later). */
  totals?: LabelTotals;
}

export interface SatelliteStats {
  satellite_id: string;
  anomalies: number;
  recent_anomalies: number;
  /** Size of the detector state kept (JSON bytes; 0 before the first point). */
  detector_state_bytes: number;
  labelled: number;
  false_positives: number;
  accuracy?: number;
  /** Items recorded here and not yet in the mission's fleet index. */
  pending_fleet_items: number;
  /** Calls this object served since it started, by operation (its share of the load). */
  calls_since_start: Record<string, number>;
}

/** The RPC methods a caller may run through {@link SatelliteState.traced} (lib/mission/mission-client.ts). */
export const SATELLITE_OPERATIONS = ["context", "record", "latest", "history", "feedback", "stats"] as const;
export type SatelliteOperation = (typeof SATELLITE_OPERATIONS)[number];

export class SatelliteState extends DurableObject<Env> {
  readonly #sql: SqlStorage;
  /** Set once the points this satellite had in the single mission object (before the change) are here. */
  #legacy: Promise<void> | undefined;
  #backoffMillis = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#sql.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS detector_state (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS latest (id INTEGER PRIMARY KEY CHECK (id = 1), received_at INTEGER NOT NULL, point TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, item TEXT NOT NULL);
      ${ANOMALIES_DDL}
    `);
  }

  /** Runs operation `op` under the caller's trace (see lib/objects/traced.ts). */
  traced<K extends SatelliteOperation>(carrier: TraceCarrier, op: K, args: Parameters<SatelliteState[K]>): Promise<TracedResult<Awaited<ReturnType<SatelliteState[K]>>>> {
    return runTraced(this, "SatelliteState", SATELLITE_OPERATIONS, carrier, op, args);
  }

  /** The detector state, for detection (absent before the satellite's first point). */
  async context(satelliteId: string): Promise<{ state?: DetectorState }> {
    await this.#ready(satelliteId);
    const state = this.#state();
    return state ? { state } : {};
  }

  /**
   * Stores one request's detections of this satellite in order, applying the phase policy with
   * `phase` (the caller's view, at most the isolate cache's TTL old) and this satellite's
   * recurrence counts. An anomaly the policy would escalate is sent to the mission at once; the
   * mission decides on its own phase, so a fleet escalates exactly once.
   */
  async record(satelliteId: string, entries: RecordEntry[], phase: MissionPhase, now = Date.now()): Promise<RecordOutcome> {
    await this.#ready(satelliteId);
    const results: RecordedResult[] = [];
    let escalatedToSafeMode: RecordOutcome["escalatedToSafeMode"];
    let missionPhase: MissionPhase | undefined;
    let latest = "";
    const last = entries.at(-1);
    if (last) this.#setState(last.state);
    for (const { reading, detection } of entries) {
      const recurrenceCount = detection.isAnomaly ? this.#recurrences(detection.type, reading.time) : 0;
      const decision = decide(detection, phase, recurrenceCount);
      const id = pointId(detection.isAnomaly, satelliteId);
      results.push({ id, phase, recurrenceCount, decision });
      latest = JSON.stringify({ id, satellite_id: satelliteId, reading, is_anomaly: detection.isAnomaly, anomaly_type: detection.type, anomaly_score: detection.score, severity_level: decision.severityLevel, mission_phase: phase });
      this.#sql.exec("INSERT INTO latest (id, received_at, point) VALUES (1, ?, ?) ON CONFLICT(id) DO UPDATE SET received_at = excluded.received_at, point = excluded.point", now, latest);
      if (!detection.isAnomaly) continue;
      const record: AnomalyRecord = {
        id, satellite_id: satelliteId, timestamp: new Date(reading.time).toISOString(), received_at: new Date(now).toISOString(),
        anomaly_type: detection.type, anomaly_score: detection.score, severity_score: decision.severityScore,
        severity_level: decision.severityLevel, mission_phase: phase, recurrence_count: recurrenceCount,
        recommended_action: decision.recommendedAction, detector: detectorOf(detection), false_positive: null,
      };
      insertAnomaly(this.#sql, record);
      if (!decision.shouldEscalateToSafeMode || escalatedToSafeMode) {
        this.#enqueue({ kind: "anomaly", record });
        continue;
      }
      // The mission decides on its own phase, at once; later points of this call see its answer.
      this.#enqueue({ kind: "anomaly", record, escalate: { reason: `auto: ${decision.severityLevel} ${detection.type} anomaly ${id}` } });
      const answer = await this.#deliver(now);
      if (answer?.escalated?.anomalyId === id) escalatedToSafeMode = { from: answer.escalated.from, anomalyId: id };
      if (answer) phase = missionPhase = answer.phase;
    }
    trimAnomalies(this.#sql, MAX_SATELLITE_ANOMALIES);
    await this.#scheduleDelivery(now + FLEET_DELIVERY_DELAY_MS);
    return { results, latest, ...(escalatedToSafeMode && { escalatedToSafeMode }), ...(missionPhase && { missionPhase }) };
  }

  /** This satellite's latest point with its verdict (`point`: the JSON as stored). */
  async latest(satelliteId: string): Promise<{ received_at: number; point: string } | undefined> {
    await this.#ready(satelliteId);
    return this.#sql.exec<{ received_at: number; point: string }>("SELECT received_at, point FROM latest WHERE id = 1").toArray()[0];
  }

  async history(satelliteId: string, query: HistoryQuery): Promise<AnomalyRecord[]> {
    await this.#ready(satelliteId);
    return queryAnomalies(this.#sql, query);
  }

  /** Labels one of this satellite's detections; a label is final (a different second label is a conflict). */
  async feedback(satelliteId: string, id: string, falsePositive: boolean, now = Date.now()): Promise<FeedbackOutcome> {
    await this.#ready(satelliteId);
    const row = this.#sql.exec<Row>("SELECT * FROM anomalies WHERE id = ?", id).toArray()[0];
    if (!row) return { status: "not_found" };
    if (row.false_positive !== null) {
      const same = (row.false_positive === 1) === falsePositive;
      return { status: same ? "unchanged" : "conflict", anomaly: toAnomalyRecord(row) };
    }
    this.#sql.exec("UPDATE anomalies SET false_positive = ? WHERE id = ?", falsePositive ? 1 : 0, id);
    this.#enqueue({ kind: "label", id, falsePositive });
    const answer = await this.#deliver(now);
    const anomaly = toAnomalyRecord({ ...row, false_positive: falsePositive ? 1 : 0 });
    return { status: "labelled", anomaly, ...(answer && { totals: answer.labels }) };
  }

  async stats(satelliteId: string, now = Date.now()): Promise<SatelliteStats> {
    await this.#ready(satelliteId);
    const count = (sql: string, ...args: SqlStorageValue[]) => this.#sql.exec<{ n: number }>(sql, ...args).one().n;
    return {
      satellite_id: satelliteId,
      anomalies: count("SELECT COUNT(*) AS n FROM anomalies"),
      recent_anomalies: count("SELECT COUNT(*) AS n FROM anomalies WHERE received_at > ?", now - RECURRENCE_WINDOW_MS),
      detector_state_bytes: this.#sql.exec<{ n: number | null }>("SELECT length(state) AS n FROM detector_state WHERE id = 1").toArray()[0]?.n ?? 0,
      ...labelCounts(this.#sql),
      pending_fleet_items: count("SELECT COUNT(*) AS n FROM outbox"),
      calls_since_start: callsServed(this),
    };
  }

  /** Delivers the outbox; while the mission is unreachable, tries again with backoff. Untraced: housekeeping, not a request. */
  override async alarm(): Promise<void> {
    await context.with(suppressTracing(ROOT_CONTEXT), () => this.#deliver(Date.now()));
  }

  // ---------------------------------------------------------------------------------------------

  #mission(): DurableObjectStub<MissionState> {
    return this.env.MISSION_STATE.get(this.env.MISSION_STATE.idFromName(MISSION_OBJECT_NAME));
  }

  /**
   * Before the first operation of this object: the satellite's readings, latest point and anomalies
   * from the single mission object of earlier versions are copied here (idempotent: rows keep
   * their ids), then dropped there. Until that succeeds every operation fails (and retries it).
   */
  #ready(satelliteId: string): Promise<void> {
    if (this.#meta("legacy_adopted") !== undefined) return Promise.resolve();
    this.#legacy ??= this.#adoptLegacy(satelliteId).catch((err: unknown) => {
      this.#legacy = undefined;
      throw err;
    });
    return this.#legacy;
  }

  async #adoptLegacy(satelliteId: string): Promise<void> {
    const mission = this.#mission();
    const legacy: LegacySatelliteData = await mission.takeLegacy(satelliteId);
    this.ctx.storage.transactionSync(() => {
      // The old layout kept the last 8 readings: replayed through the detector, they are its state.
      if (legacy.readings.length > 0 && this.#state() === undefined) {
        let state: DetectorState | undefined;
        for (const r of legacy.readings) state = detect(JSON.parse(r.reading) as Reading, state).state;
        if (state) this.#setState(state);
      }
      if (legacy.latest) {
        this.#sql.exec("INSERT INTO latest (id, received_at, point) VALUES (1, ?, ?) ON CONFLICT(id) DO NOTHING", legacy.latest.received_at, legacy.latest.point);
      }
      for (const a of legacy.anomalies) insertAnomaly(this.#sql, a);
      this.#setMeta("satellite_id", satelliteId);
      this.#setMeta("legacy_adopted", String(legacy.readings.length + legacy.anomalies.length));
    });
    if (legacy.readings.length + legacy.anomalies.length > 0 || legacy.latest) {
      log("info", "satellite_state_migrated", { satellite_id: satelliteId, readings: legacy.readings.length, anomalies: legacy.anomalies.length });
      // Copied here for good; the mission may drop its copy (its fleet index keeps the anomalies).
      await mission.dropLegacy(satelliteId).catch(() => undefined);
    }
  }

  #meta(key: string): string | undefined {
    return this.#sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0]?.value;
  }

  #setMeta(key: string, value: string): void {
    this.#sql.exec("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", key, value);
  }

  #state(): DetectorState | undefined {
    const row = this.#sql.exec<{ state: string }>("SELECT state FROM detector_state WHERE id = 1").toArray()[0];
    // A state an older detector wrote is replaced by a fresh one (usableState).
    return row ? usableState(JSON.parse(row.state)) : undefined;
  }

  #setState(state: DetectorState): void {
    this.#sql.exec("INSERT INTO detector_state (id, state) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET state = excluded.state", JSON.stringify(state));
  }

  #recurrences(type: string, time: number): number {
    return this.#sql
      .exec<{ n: number }>("SELECT COUNT(*) AS n FROM anomalies WHERE anomaly_type = ? AND time > ? AND time <= ?", type, time - RECURRENCE_WINDOW_MS, time)
      .one().n;
  }

  #enqueue(item: FleetItem): void {
    this.#sql.exec("INSERT INTO outbox (item) VALUES (?)", JSON.stringify(item));
  }

  async #scheduleDelivery(at: number): Promise<void> {
    const pending = this.#sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM outbox").one().n;
    if (pending > 0) await alarmNoLaterThan(this.ctx.storage, at);
  }

  /**
   * Sends the outbox to the mission in order (at most {@link MAX_ITEMS_PER_DELIVERY} per call) and
   * deletes what it acknowledged. Returns the mission's last answer, or undefined when it could not
   * be reached (the items stay; an alarm tries again). Never throws.
   */
  async #deliver(now: number): Promise<AbsorbAnswer | undefined> {
    const satelliteId = this.#meta("satellite_id") ?? "";
    let answer: AbsorbAnswer | undefined;
    try {
      for (;;) {
        const rows = this.#sql.exec<{ seq: number; item: string }>("SELECT seq, item FROM outbox ORDER BY seq LIMIT ?", MAX_ITEMS_PER_DELIVERY).toArray();
        if (rows.length === 0) break;
        const items = rows.map((r) => JSON.parse(r.item) as FleetItem);
        answer = await withSpan(
          "database_query",
          { [ATTR_DB_SYSTEM_NAME]: "cloudflare_durable_object", [ATTR_DB_NAMESPACE]: MISSION_OBJECT_NAME, [ATTR_DB_COLLECTION_NAME]: "MissionState", [ATTR_DB_OPERATION_NAME]: "absorb", "astra.fleet.items": items.length },
          async () => {
            // Under the request's trace when there is one (an escalation, a label): the mission's
            // span and its phase_changed line join it; from the alarm, untraced.
            const answer: unknown = await this.#mission().traced(injectTraceContext(), "absorb", [satelliteId, items]);
            const { result, spans } = answer as TracedResult<AbsorbAnswer>;
            adoptSpans(spans);
            return result;
          },
          { kind: SpanKind.CLIENT },
        );
        this.#sql.exec("DELETE FROM outbox WHERE seq <= ?", rows.at(-1)!.seq);
        if (rows.length < MAX_ITEMS_PER_DELIVERY) break;
      }
      this.#backoffMillis = 0;
      return answer;
    } catch (err) {
      this.#backoffMillis = Math.min(MAX_DELIVERY_BACKOFF_MS, Math.max(FLEET_DELIVERY_DELAY_MS, this.#backoffMillis * 2));
      log("warn", "fleet_delivery_failed", { satellite_id: satelliteId, retry_in_ms: this.#backoffMillis, ...errorFields(err) });
      // Set unconditionally: inside alarm() the running alarm no longer counts as scheduled.
      await this.ctx.storage.setAlarm(now + this.#backoffMillis).catch(() => undefined);
      return answer;
    }
  }
}
