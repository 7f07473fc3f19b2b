/**
 * The anomaly row as stored by a satellite object (its own anomalies) and by the mission object
 * (the bounded fleet index): one table shape, one mapping to the API's record.
 */
import type { MissionPhase } from "../domain/schemas";

/** Earlier anomalies of the same type and satellite within this window raise recurrence_count. */
export const RECURRENCE_WINDOW_MS = 60 * 60 * 1000;

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

export type Row = Record<string, SqlStorageValue>;

/** The `anomalies` table (the same in both objects; the mission's predates per-satellite state). */
export const ANOMALIES_DDL = `
  CREATE TABLE IF NOT EXISTS anomalies (
    id TEXT PRIMARY KEY, satellite_id TEXT NOT NULL, time INTEGER NOT NULL, received_at INTEGER NOT NULL,
    anomaly_type TEXT NOT NULL, anomaly_score REAL NOT NULL, severity_score REAL NOT NULL,
    severity_level TEXT NOT NULL, mission_phase TEXT NOT NULL, recurrence_count INTEGER NOT NULL,
    recommended_action TEXT NOT NULL, detector TEXT NOT NULL, false_positive INTEGER);
  CREATE INDEX IF NOT EXISTS anomalies_by_time ON anomalies (time);
  CREATE INDEX IF NOT EXISTS anomalies_by_source ON anomalies (satellite_id, anomaly_type, time);`;

/** Inserts `r` unless a row with its id exists (a re-delivered or re-migrated row counts once). */
export function insertAnomaly(sql: SqlStorage, r: AnomalyRecord): void {
  sql.exec(
    `INSERT OR IGNORE INTO anomalies (id, satellite_id, time, received_at, anomaly_type, anomaly_score, severity_score,
       severity_level, mission_phase, recurrence_count, recommended_action, detector, false_positive)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    r.id, r.satellite_id, Date.parse(r.timestamp), Date.parse(r.received_at), r.anomaly_type, r.anomaly_score, r.severity_score,
    r.severity_level, r.mission_phase, r.recurrence_count, r.recommended_action, r.detector,
    r.false_positive === null ? null : r.false_positive ? 1 : 0,
  );
}

/** Newest first, filtered as the history endpoint asks. */
export function queryAnomalies(sql: SqlStorage, query: HistoryQuery): AnomalyRecord[] {
  return sql
    .exec<Row>(
      "SELECT * FROM anomalies WHERE time >= ? AND time <= ? AND severity_score >= ? ORDER BY time DESC, received_at DESC LIMIT ?",
      query.startTime ?? 0, query.endTime ?? Number.MAX_SAFE_INTEGER, query.severityMin ?? 0, query.limit,
    )
    .toArray()
    .map(toAnomalyRecord);
}

/** Keeps the newest `max` rows (by arrival). */
export function trimAnomalies(sql: SqlStorage, max: number): void {
  const { n } = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM anomalies").one();
  if (n > max) sql.exec("DELETE FROM anomalies WHERE id IN (SELECT id FROM anomalies ORDER BY received_at ASC LIMIT ?)", n - max);
}

export function labelCounts(sql: SqlStorage): { labelled: number; false_positives: number; accuracy?: number } {
  const r = sql.exec<{ labelled: number; fp: number | null }>("SELECT COUNT(false_positive) AS labelled, SUM(false_positive) AS fp FROM anomalies").one();
  const fp = r.fp ?? 0;
  return { labelled: r.labelled, false_positives: fp, ...(r.labelled > 0 && { accuracy: (r.labelled - fp) / r.labelled }) };
}

export function toAnomalyRecord(row: Row): AnomalyRecord {
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
