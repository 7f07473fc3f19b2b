/**
 * ChaosControl: the one Durable Object every isolate asks which faults are active, and where the
 * isolates pool their breaker states so the state gauge shows one fleet view.
 *
 * - Faults (SQLite): injected by POST /api/v1/chaos, each with a bounded lifetime; they end by
 *   expiry or DELETE; the first isolate that sees the target healthy after the end marks the
 *   fault recovered (exactly once, so the recovery time is recorded once across isolates).
 * - Breaker board (memory only): each isolate reports its breakers' states when it syncs
 *   (at most every ~1 s while it serves requests); the fleet state of a breaker is the worst
 *   state any isolate reported in the last {@link BOARD_TTL_MS} (OPEN > HALF_OPEN > CLOSED).
 *   Losing the board on eviction costs nothing: the next syncs rebuild it.
 *
 * - Run-time log level (SQLite): set by PUT /api/v1/log-level, handed to every isolate with its
 *   sync, so a level change reaches every isolate that serves requests within about a second.
 *
 * It is deliberately separate from MissionState: a storage fault (or a real MissionState outage)
 * must not hide the faults and breaker states that describe it.
 */
import { DurableObject } from "cloudflare:workers";
import type { BreakerState } from "../reliability/circuit-breaker";
import type { ChaosTarget, ChaosType, Fault, FaultSpec, SyncResult } from "../reliability/faults";

/** Faults active at once, at most. */
export const MAX_ACTIVE_FAULTS = 10;
/** Ended faults are listed (and can still recover) for this long. */
export const RECENT_FAULT_MS = 60 * 60 * 1000;
/** A board entry older than this no longer counts (its isolate stopped reporting). */
export const BOARD_TTL_MS = 10_000;
/** Isolates tracked on the board at most. */
const MAX_BOARD_ENTRIES = 1000;

const SEVERITY: Record<BreakerState, number> = { CLOSED: 0, HALF_OPEN: 1, OPEN: 2 };

type FaultRow = {
  id: string;
  type: string;
  target: string;
  latency_ms: number | null;
  error_rate: number | null;
  injected_at: number;
  expires_at: number;
  ended_at: number | null;
  end_reason: string | null;
  recovered_at: number | null;
};

const toFault = (r: FaultRow): Fault => ({
  id: r.id,
  type: r.type as ChaosType,
  target: r.target as ChaosTarget,
  latencyMs: r.latency_ms,
  errorRate: r.error_rate,
  injectedAtMs: r.injected_at,
  expiresAtMs: r.expires_at,
  endedAtMs: r.ended_at,
  endReason: r.end_reason as Fault["endReason"],
  recoveredAtMs: r.recovered_at,
});

export class ChaosControl extends DurableObject<Env> {
  readonly #sql: SqlStorage;
  readonly #board = new Map<string, { atMs: number; states: Record<string, BreakerState> }>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#sql.exec(`
      CREATE TABLE IF NOT EXISTS faults (
        id TEXT PRIMARY KEY, type TEXT NOT NULL, target TEXT NOT NULL, latency_ms INTEGER, error_rate REAL,
        injected_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, ended_at INTEGER, end_reason TEXT, recovered_at INTEGER);
    `);
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, set_at INTEGER NOT NULL)`);
  }

  /** Read from SQLite once per object instance, then kept: every isolate's ~1 s sync answers it. */
  #level: { level: string | null; setAtMs: number | null } | undefined;

  #logLevel(): { level: string | null; setAtMs: number | null } {
    if (!this.#level) {
      const row = this.#sql.exec<{ value: string; set_at: number }>(`SELECT value, set_at FROM settings WHERE key = 'log_level'`).toArray()[0];
      this.#level = { level: row?.value ?? null, setAtMs: row?.set_at ?? null };
    }
    return this.#level;
  }

  /** Sets the run-time log level (null clears it: LOG_LEVEL applies again); answers the previous one. */
  setLogLevel(level: string | null, now = Date.now()): { level: string | null; previous: string | null; setAtMs: number } {
    const previous = this.#logLevel().level;
    if (level === null) this.#sql.exec(`DELETE FROM settings WHERE key = 'log_level'`);
    else this.#sql.exec(`INSERT INTO settings (key, value, set_at) VALUES ('log_level', ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, set_at = excluded.set_at`, level, now);
    this.#level = { level, setAtMs: level === null ? null : now };
    return { level, previous, setAtMs: now };
  }

  /** The run-time log level and when it was set (null: none, LOG_LEVEL applies). */
  getLogLevel(): { level: string | null; setAtMs: number | null } {
    return this.#logLevel();
  }

  /** Ends faults whose time is up, and forgets faults older than a day. */
  #expire(now: number): void {
    this.#sql.exec("UPDATE faults SET ended_at = expires_at, end_reason = 'expired' WHERE ended_at IS NULL AND expires_at <= ?", now);
    this.#sql.exec("DELETE FROM faults WHERE injected_at < ?", now - 24 * 60 * 60 * 1000);
  }

  /** Faults matching `where` (a fixed SQL fragment, values bound), newest first, at most 100. */
  #select(where: string, ...args: SqlStorageValue[]): Fault[] {
    return this.#sql.exec<FaultRow>(`SELECT * FROM faults WHERE ${where} ORDER BY injected_at DESC, id LIMIT 100`, ...args).toArray().map(toFault);
  }

  #active(now: number): Fault[] {
    return this.#select("ended_at IS NULL AND expires_at > ?", now);
  }

  /** Starts a fault; refuses when MAX_ACTIVE_FAULTS are active. */
  inject(spec: FaultSpec, now = Date.now()): { fault: Fault } | { error: "too_many_faults" } {
    this.#expire(now);
    if (this.#active(now).length >= MAX_ACTIVE_FAULTS) return { error: "too_many_faults" };
    const id = `ch_${crypto.randomUUID().replaceAll("-", "")}`;
    this.#sql.exec(
      "INSERT INTO faults (id, type, target, latency_ms, error_rate, injected_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      id, spec.type, spec.target, spec.latency_ms ?? null, spec.error_rate ?? null, now, now + spec.duration_s * 1000,
    );
    return { fault: this.#select("id = ?", id)[0]! };
  }

  /** Active faults, and the recent ended ones (newest first, at most 100). */
  list(now = Date.now()): { active: Fault[]; recent: Fault[] } {
    this.#expire(now);
    return {
      active: this.#active(now),
      recent: this.#select("ended_at IS NOT NULL AND ended_at > ?", now - RECENT_FAULT_MS),
    };
  }

  /** Ends one active fault (by id) or all of them; says which ended, or that the id is unknown. */
  cancel(id: string | undefined, now = Date.now()): { cancelled: Fault[]; found: boolean; fault?: Fault } {
    this.#expire(now);
    const targets = id === undefined ? this.#active(now) : this.#select("id = ?", id);
    if (id !== undefined && targets.length === 0) return { cancelled: [], found: false };
    const cancelled = targets.filter((f) => f.endedAtMs === null);
    for (const f of cancelled) {
      this.#sql.exec("UPDATE faults SET ended_at = ?, end_reason = 'cancelled' WHERE id = ? AND ended_at IS NULL", now, f.id);
    }
    const after = id === undefined ? undefined : this.#select("id = ?", id)[0];
    return {
      cancelled: cancelled.map((f) => ({ ...f, endedAtMs: now, endReason: "cancelled" as const })),
      found: true,
      ...(after && { fault: after }),
    };
  }

  /**
   * One isolate's periodic sync: records its breaker states on the board and answers the active
   * faults, the ended-but-unrecovered ones and the fleet state of every breaker.
   */
  sync(isolateId: string, breakers: Record<string, BreakerState>, now = Date.now()): SyncResult {
    this.#expire(now);
    if (Object.keys(breakers).length > 0) {
      this.#board.delete(isolateId); // re-insert: the Map's order is then oldest report first
      this.#board.set(isolateId, { atMs: now, states: breakers });
    }
    const fleet: Record<string, BreakerState> = {};
    for (const [key, entry] of this.#board) {
      if (now - entry.atMs > BOARD_TTL_MS || this.#board.size > MAX_BOARD_ENTRIES) {
        this.#board.delete(key);
        continue;
      }
      for (const [name, state] of Object.entries(entry.states)) {
        const seen = fleet[name];
        if (seen === undefined || SEVERITY[state] > SEVERITY[seen]) fleet[name] = state;
      }
    }
    return {
      nowMs: now,
      active: this.#active(now),
      unrecovered: this.#select("ended_at IS NOT NULL AND recovered_at IS NULL AND ended_at > ?", now - RECENT_FAULT_MS),
      fleet,
      logLevel: this.#logLevel().level,
    };
  }

  /**
   * Marks an ended fault recovered at `atMs` (the first healthy call after its end). Only the
   * first caller gets `recorded: true`, so the recovery is counted once across isolates.
   */
  markRecovered(id: string, atMs: number, now = Date.now()): { recorded: boolean; fault?: Fault } {
    this.#expire(now);
    const cursor = this.#sql.exec(
      "UPDATE faults SET recovered_at = ? WHERE id = ? AND recovered_at IS NULL AND ended_at IS NOT NULL AND ended_at <= ?",
      atMs, id, atMs,
    );
    const fault = this.#select("id = ?", id)[0];
    return { recorded: cursor.rowsWritten > 0, ...(fault && { fault }) };
  }
}
