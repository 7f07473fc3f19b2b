/**
 * MissionState: what is truly global, in one Durable Object with SQLite storage — the mission phase
 * and its transitions, the fleet registry (which satellites may have an object), the fleet index of
 * anomalies with their labels (for fleet-wide history and detection accuracy), and the fleet's
 * latest point. Each satellite's own state lives in its SatelliteState object; this object is
 * called on every isolate's 2 s sync, on a satellite's first point in an isolate, and by satellite
 * objects delivering anomalies and labels — never once per ingest request.
 *
 * Before per-satellite state this object held every satellite's readings, latest point and
 * anomalies. Those tables stay: the anomalies table is the fleet index as it was (labels kept), and
 * each satellite object takes its readings and latest point on first touch (`takeLegacy`).
 */
import { DurableObject } from "cloudflare:workers";
import { checkTransition, PHASE_POLICIES } from "../domain/phase-policy";
import type { MissionPhase } from "../domain/schemas";
import { log } from "../telemetry/logger";
import type { TracedResult } from "../telemetry/object-spans";
import type { TraceCarrier } from "../telemetry/spans";
import { ANOMALIES_DDL, RECURRENCE_WINDOW_MS, insertAnomaly, labelCounts, queryAnomalies, toAnomalyRecord, trimAnomalies, type AnomalyRecord, type HistoryQuery, type Row } from "./anomaly-rows";
import { callsServed, runTraced } from "./traced";

/** Anomalies kept in the fleet index; the oldest go first. */
export const MAX_ANOMALIES = 100_000;
/** Registry ids answered per sync at most; an isolate asks again for the rest. */
export const MAX_REGISTRY_DELTA = 5_000;
const INITIAL_PHASE: MissionPhase = "NOMINAL_OPS";
/** The fleet-wide row of the `latest` table ('*' is not a valid satellite_id). */
const FLEET_LATEST = "*";

/** What a satellite object tells the fleet (see SatelliteState's outbox). */
export type FleetItem =
  | { kind: "anomaly"; record: AnomalyRecord; escalate?: { reason: string } }
  | { kind: "label"; id: string; falsePositive: boolean };

export interface LabelTotals {
  labelled: number;
  false_positives: number;
  accuracy?: number;
}

export interface AbsorbAnswer {
  phase: MissionPhase;
  /** Set when an item of this call changed the phase to SAFE_MODE. */
  escalated?: { from: MissionPhase; anomalyId: string };
  /** Fleet label totals, when the call carried a label. */
  labels?: LabelTotals;
}

/** One satellite's rows in the single-object layout of earlier versions. */
export interface LegacySatelliteData {
  readings: Array<{ seq: number; time: number; reading: string }>;
  latest?: { received_at: number; point: string };
  anomalies: AnomalyRecord[];
}

export interface SyncAnswer {
  phase: MissionPhase;
  /** Registrations after `registrySeq`, in order; `more` when there are further ones. */
  registry: { seq: number; added: string[]; more: boolean };
}

export interface AdmitAnswer {
  admitted: string[];
  refused: Array<{ id: string; reason: "not_registered" | "fleet_full" }>;
}

export interface PhaseInfo {
  phase: MissionPhase;
  since: string;
  transitions: Array<{ from: MissionPhase; to: MissionPhase; reason: string; forced: boolean; at: string }>;
}

export interface RegistrationPolicy {
  /** "auto": a satellite's first point registers it (up to the cap); "admin": only the admin API does. */
  mode: "auto" | "admin";
  maxSatellites: number;
}

/** The RPC methods a caller may run through {@link MissionState.traced} (lib/mission/mission-client.ts). */
export const MISSION_OPERATIONS = ["ping", "sync", "admit", "register", "fleet", "getPhase", "setPhase", "locate", "history", "latest", "stats", "absorb"] as const;
export type MissionOperation = (typeof MISSION_OPERATIONS)[number];

export class MissionState extends DurableObject<Env> {
  readonly #sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.upgradeLayout();
  }

  /**
   * Creates the tables, and once (meta `layout`) registers every satellite that data from the
   * single-object layout names. Run by the constructor; idempotent. Not an RPC operation of `traced`.
   */
  upgradeLayout(): void {
    this.#sql.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS phase_transitions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, from_phase TEXT NOT NULL, to_phase TEXT NOT NULL,
        reason TEXT NOT NULL, forced INTEGER NOT NULL, at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS readings (
        satellite_id TEXT NOT NULL, seq INTEGER NOT NULL, time INTEGER NOT NULL, reading TEXT NOT NULL,
        PRIMARY KEY (satellite_id, seq));
      CREATE TABLE IF NOT EXISTS latest (
        satellite_id TEXT PRIMARY KEY, received_at INTEGER NOT NULL, point TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS fleet (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, satellite_id TEXT NOT NULL UNIQUE, registered_at INTEGER NOT NULL, source TEXT NOT NULL);
      ${ANOMALIES_DDL}
    `);
    if (this.#meta("phase") === undefined) {
      this.#setMeta("phase", INITIAL_PHASE);
      this.#setMeta("phase_since", String(Date.now()));
    }
    if (this.#meta("layout") === undefined) {
      // Data from the single-object layout: every satellite it knew is registered (whatever the
      // policy and cap), so an existing fleet keeps ingesting after the upgrade.
      const known = this.#sql
        .exec<{ id: string }>(
          `SELECT satellite_id AS id FROM readings UNION SELECT satellite_id FROM latest WHERE satellite_id != ?
           UNION SELECT satellite_id FROM anomalies ORDER BY 1`,
          FLEET_LATEST,
        )
        .toArray();
      for (const { id } of known) this.#sql.exec("INSERT OR IGNORE INTO fleet (satellite_id, registered_at, source) VALUES (?, ?, 'migrated')", id, Date.now());
      this.#setMeta("layout", "per-satellite");
      if (known.length > 0) log("info", "fleet_registry_migrated", { satellites: known.length });
    }
  }

  #meta(key: string): string | undefined {
    return this.#sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0]?.value;
  }

  #setMeta(key: string, value: string): void {
    this.#sql.exec("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", key, value);
  }

  #phase(): MissionPhase {
    return (this.#meta("phase") ?? INITIAL_PHASE) as MissionPhase;
  }

  /** Runs operation `op` under the caller's trace (see lib/objects/traced.ts). */
  traced<K extends MissionOperation>(carrier: TraceCarrier, op: K, args: Parameters<MissionState[K]>): Promise<TracedResult<ReturnType<MissionState[K]>>> {
    return runTraced(this, "MissionState", MISSION_OPERATIONS, carrier, op, args);
  }

  /** A cheap read for health checks. */
  ping(): { ok: true; phase: MissionPhase } {
    return { ok: true, phase: this.#phase() };
  }

  /**
   * An isolate's periodic view of the mission: the phase, the registrations after `registrySeq`,
   * and (written) the newest point the isolate recorded since its last sync, kept when it is the
   * fleet's newest.
   */
  sync(registrySeq: number, latest?: { received_at: number; point: string }): SyncAnswer {
    if (latest) {
      this.#sql.exec(
        `INSERT INTO latest (satellite_id, received_at, point) VALUES (?, ?, ?)
         ON CONFLICT(satellite_id) DO UPDATE SET received_at = excluded.received_at, point = excluded.point WHERE excluded.received_at >= latest.received_at`,
        FLEET_LATEST, latest.received_at, latest.point,
      );
    }
    const rows = this.#sql
      .exec<{ seq: number; id: string }>("SELECT seq, satellite_id AS id FROM fleet WHERE seq > ? ORDER BY seq LIMIT ?", registrySeq, MAX_REGISTRY_DELTA + 1)
      .toArray();
    const more = rows.length > MAX_REGISTRY_DELTA;
    const added = rows.slice(0, MAX_REGISTRY_DELTA);
    return { phase: this.#phase(), registry: { seq: added.at(-1)?.seq ?? registrySeq, added: added.map((r) => r.id), more } };
  }

  /** Which of `ids` may have an object: registered ones, and under "auto" new ones up to the cap (registered now). */
  admit(ids: string[], policy: RegistrationPolicy, now = Date.now()): AdmitAnswer {
    const admitted: string[] = [];
    const refused: AdmitAnswer["refused"] = [];
    for (const id of new Set(ids)) {
      if (this.#registered(id)) admitted.push(id);
      else if (policy.mode === "admin") refused.push({ id, reason: "not_registered" });
      else if (this.#fleetSize() >= policy.maxSatellites) refused.push({ id, reason: "fleet_full" });
      else {
        this.#sql.exec("INSERT INTO fleet (satellite_id, registered_at, source) VALUES (?, ?, 'auto')", id, now);
        admitted.push(id);
      }
    }
    if (refused.length > 0) log("warn", "satellites_refused", { count: refused.length, first: refused[0]!.id, reason: refused[0]!.reason });
    return { admitted, refused };
  }

  /** The admin API's registration: up to the cap; already registered ids are unchanged. */
  register(ids: string[], maxSatellites: number, now = Date.now()): { registered: string[]; existing: string[]; refused: string[]; satellites: number; max_satellites: number } {
    const registered: string[] = [];
    const existing: string[] = [];
    const refused: string[] = [];
    for (const id of new Set(ids)) {
      if (this.#registered(id)) existing.push(id);
      else if (this.#fleetSize() >= maxSatellites) refused.push(id);
      else {
        this.#sql.exec("INSERT INTO fleet (satellite_id, registered_at, source) VALUES (?, ?, 'admin')", id, now);
        registered.push(id);
      }
    }
    return { registered, existing, refused, satellites: this.#fleetSize(), max_satellites: maxSatellites };
  }

  /** The registry, oldest registration first. */
  fleet(limit: number, after = 0): { satellites: Array<{ satellite_id: string; registered_at: string; source: string }>; total: number; next_after: number | null } {
    const rows = this.#sql
      .exec<{ satellite_id: string; registered_at: number; source: string; seq: number }>("SELECT * FROM fleet WHERE seq > ? ORDER BY seq LIMIT ?", after, limit)
      .toArray();
    return {
      satellites: rows.map((r) => ({ satellite_id: r.satellite_id, registered_at: new Date(r.registered_at).toISOString(), source: r.source })),
      total: this.#fleetSize(),
      // The cursor of the next page (`after=`), or null on the last one.
      next_after: rows.length === limit ? rows.at(-1)!.seq : null,
    };
  }

  #registered(id: string): boolean {
    return this.#sql.exec("SELECT 1 FROM fleet WHERE satellite_id = ?", id).toArray().length > 0;
  }

  #fleetSize(): number {
    return this.#sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM fleet").one().n;
  }

  /**
   * What satellite objects deliver, in their order: anomalies into the fleet index (once each),
   * labels onto them, and escalation requests — decided here on the mission's own phase, so
   * concurrent escalations from several satellites change the phase exactly once.
   */
  absorb(satelliteId: string, items: FleetItem[], now = Date.now()): AbsorbAnswer {
    let escalated: AbsorbAnswer["escalated"];
    let labelled = false;
    for (const item of items) {
      if (item.kind === "anomaly") {
        insertAnomaly(this.#sql, item.record);
        const phase = this.#phase();
        if (item.escalate && phase !== "SAFE_MODE" && PHASE_POLICIES[phase].canEscalateToSafeMode) {
          this.#changePhase(phase, "SAFE_MODE", item.escalate.reason, false, now);
          escalated = { from: phase, anomalyId: item.record.id };
        }
      } else {
        this.#sql.exec("UPDATE anomalies SET false_positive = ? WHERE id = ? AND satellite_id = ? AND false_positive IS NULL", item.falsePositive ? 1 : 0, item.id, satelliteId);
        labelled = true;
      }
    }
    trimAnomalies(this.#sql, MAX_ANOMALIES);
    return { phase: this.#phase(), ...(escalated && { escalated }), ...(labelled && { labels: labelCounts(this.#sql) }) };
  }

  /** A satellite's rows from the single-object layout (anomalies with ids of that time), for its object to adopt. */
  takeLegacy(satelliteId: string): LegacySatelliteData {
    const readings = this.#sql
      .exec<{ seq: number; time: number; reading: string }>("SELECT seq, time, reading FROM readings WHERE satellite_id = ? ORDER BY seq", satelliteId)
      .toArray();
    const latest = this.#sql.exec<{ received_at: number; point: string }>("SELECT received_at, point FROM latest WHERE satellite_id = ?", satelliteId).toArray()[0];
    // Ids of that time are "an_" + 32 hex (35 characters); later ones name their satellite.
    const anomalies = this.#sql.exec<Row>("SELECT * FROM anomalies WHERE satellite_id = ? AND length(id) = 35", satelliteId).toArray().map(toAnomalyRecord);
    return { readings, ...(latest && { latest }), anomalies };
  }

  /** Drops what a satellite object adopted (its anomalies stay here, in the fleet index). */
  dropLegacy(satelliteId: string): void {
    this.#sql.exec("DELETE FROM readings WHERE satellite_id = ?", satelliteId);
    this.#sql.exec("DELETE FROM latest WHERE satellite_id = ?", satelliteId);
  }

  /** The satellite of an anomaly in the fleet index (how ids minted before the change are routed). */
  locate(id: string): string | undefined {
    return this.#sql.exec<{ satellite_id: string }>("SELECT satellite_id FROM anomalies WHERE id = ?", id).toArray()[0]?.satellite_id;
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

  /** Fleet-wide anomaly history from the index (eventually consistent: see README, State). */
  history(query: HistoryQuery): AnomalyRecord[] {
    return queryAnomalies(this.#sql, query);
  }

  /** The fleet's newest point as isolates reported it on their syncs (`point`: the JSON as stored). */
  latest(): { received_at: number; point: string } | undefined {
    return this.#sql.exec<{ received_at: number; point: string }>("SELECT received_at, point FROM latest WHERE satellite_id = ?", FLEET_LATEST).toArray()[0];
  }

  /** Fleet sizes for /api/v1/memory/stats. */
  stats(now = Date.now()): { satellites: number; anomalies: number; recent_anomalies: number; legacy_readings: number; calls_since_start: Record<string, number> } & LabelTotals {
    const count = (sql: string, ...args: SqlStorageValue[]) => this.#sql.exec<{ n: number }>(sql, ...args).one().n;
    return {
      satellites: this.#fleetSize(),
      anomalies: count("SELECT COUNT(*) AS n FROM anomalies"),
      recent_anomalies: count("SELECT COUNT(*) AS n FROM anomalies WHERE received_at > ?", now - RECURRENCE_WINDOW_MS),
      legacy_readings: count("SELECT COUNT(*) AS n FROM readings"),
      ...labelCounts(this.#sql),
      calls_since_start: callsServed(this),
    };
  }
}
