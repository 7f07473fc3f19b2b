/**
 * MetricsLeaf: the first tier of metric aggregation. Each export of an isolate sends all its
 * delta points to ONE leaf (`metrics-leaf-N`, N < METRICS_AGGREGATOR_LEAVES; the isolate moves to
 * the next leaf at each export, starting from its own hash, so leaves share the load evenly);
 * the leaf merges
 * them into pending deltas per stream and, once per `forwardIntervalMillis`, forwards to each
 * owner shard (MetricsAggregator) what it gathered for that shard. So a leaf takes
 * isolates/leaves batches per second, and an owner shard takes at most
 * leaves × 1000/forwardIntervalMillis (5 × leaves) forwards per second — whatever the number of isolates.
 *
 *   isolates ──ingest(batchId)──▶ MetricsLeaf ×K ──forward(leaf, seq)──▶ MetricsAggregator ×S ──OTLP──▶ collector
 *             (one leaf per export)    SQLite: pending deltas,            cumulative streams
 *                                      per-isolate sequence, outbox       (one writer per series)
 *
 * Exactly once, end to end, with O(isolates + leaves) bookkeeping instead of a row per batch:
 * - An isolate sends its batches to a leaf one at a time, oldest first, and re-sends a failed
 *   one with the same id (../telemetry/export/flush.ts), so a batch whose sequence is not above
 *   the isolate's last one accepted HERE is a re-send: acknowledged, not merged.
 * - A forward is cut in one transaction (pending → outbox, with the next sequence) and re-sent,
 *   unchanged, until the owner acknowledges it; the owner accepts each (leaf, sequence) once.
 *   Meanwhile new batches merge into pending, so a leaf's state stays bounded by its streams
 *   however long an owner is unreachable.
 * - Everything is in SQLite and changes only inside transactions: a leaf evicted or restarted at
 *   any await loses nothing and duplicates nothing; its alarm (or the next ingest) resumes.
 * - UpDownCounter deltas stay per isolate (the owner drops a dead isolate's contribution), and
 *   each forward names the isolates heard from since the last one, with when.
 */
import { DurableObject } from "cloudflare:workers";
import { alarmNoLaterThan, nextAfterQuiet } from "./alarms";
import { addHistograms, isValidPoint, parseBatchId, shardCount, shardName, shardOf, streamKey, type HistogramValue, type MetricPoint } from "../telemetry/export/points";
import type { BatchIngestResult } from "./metrics-aggregator";
import type { LeafStats } from "./aggregation-stats";

/** Timing and bounds of a leaf (fixed per deployment). */
export const leafConfig = {
  /** Shortest time between forwards (to each shard), and the most a pending point waits. */
  forwardIntervalMillis: 200,
  /** Longest wait between retries of a failed forward. */
  maxRetryMillis: 10_000,
  /** Pending streams kept at most (the owner's own bound is 20,000); beyond it points are dropped and counted. */
  maxPendingStreams: 20_000,
  /** Isolates not heard from for this long are forgotten (their next batch starts a new sequence check). */
  senderForgetMillis: 60 * 60_000,
};

interface PendingRow {
  key: string;
  point: string;
  [column: string]: SqlStorageValue;
}

interface OutboxRow {
  shard: number;
  sequence: number;
  points: string;
  senders: string;
  [column: string]: SqlStorageValue;
}

/**
 * One leaf aggregator. Isolates call `ingest` by RPC when METRICS_AGGREGATOR_LEAVES ≥ 1.
 *
 * @example
 * const ns = env.METRICS_LEAF;
 * await ns.get(ns.idFromName(leafName(leafOf(isolateId(), 4)))).ingest(`${isolateId()}-0`, points);
 */
export class MetricsLeaf extends DurableObject<Env> {
  readonly #sql: SqlStorage;
  /** When this instance last started forwarding (memory only: a fresh instance waits the full interval). */
  #lastForwardMs: number | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS pending (key TEXT PRIMARY KEY, point TEXT NOT NULL)`);
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS senders (sender TEXT PRIMARY KEY, sequence INTEGER NOT NULL, seen_ms INTEGER NOT NULL)`);
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS outbox (shard INTEGER PRIMARY KEY, sequence INTEGER NOT NULL, points TEXT NOT NULL, senders TEXT NOT NULL)`);
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value REAL NOT NULL)`);
  }

  #meta(key: string): number {
    return this.#sql.exec<{ value: number }>(`SELECT value FROM meta WHERE key = ?`, key).toArray()[0]?.value ?? 0;
  }

  #setMeta(key: string, value: number): void {
    this.#sql.exec(`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`, key, value);
  }

  #bumpMeta(key: string, by = 1): void {
    this.#sql.exec(`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = value + excluded.value`, key, by);
  }

  /**
   * Merges one isolate batch (`${isolateId}-${sequence}`) into the pending deltas, once: a
   * sequence not above the isolate's last accepted one is a re-send (acknowledged, ignored).
   * A malformed id is refused (acknowledged, counted) rather than thrown on, so a broken sender
   * cannot make an isolate retry forever.
   */
  async ingest(batchId: string, points: MetricPoint[]): Promise<BatchIngestResult> {
    const now = Date.now();
    const id = parseBatchId(batchId);
    if (!id) {
      this.#bumpMeta("batches_refused");
      return { accepted: false, merged: 0 };
    }
    const result = this.ctx.storage.transactionSync((): BatchIngestResult => {
      const last = this.#sql.exec<{ sequence: number }>(`SELECT sequence FROM senders WHERE sender = ?`, id.sender).toArray()[0]?.sequence;
      if (last !== undefined && id.sequence <= last) {
        this.#bumpMeta("batches_duplicate");
        return { accepted: false, merged: 0 };
      }
      this.#sql.exec(
        `INSERT INTO senders (sender, sequence, seen_ms) VALUES (?, ?, ?) ON CONFLICT(sender) DO UPDATE SET sequence = excluded.sequence, seen_ms = excluded.seen_ms`,
        id.sender,
        id.sequence,
        now,
      );
      let merged = 0;
      for (const point of Array.isArray(points) ? points : []) {
        if (isValidPoint(point) && this.#merge(point, id.sender, now)) merged++;
        else this.#bumpMeta("points_dropped");
      }
      this.#bumpMeta("batches_accepted");
      return { accepted: true, merged };
    });
    await alarmNoLaterThan(this.ctx.storage, this.#nextForwardAt(now));
    return result;
  }

  /** Adds one delta to its pending stream (UpDownCounters per isolate). False: dropped. */
  #merge(p: MetricPoint, sender: string, now: number): boolean {
    const point: MetricPoint = { ...p, timeMs: Number.isFinite(p.timeMs) ? p.timeMs : now };
    delete point.sender;
    if (p.kind === "updowncounter") point.sender = sender;
    const key = p.kind === "updowncounter" ? `${streamKey(p)}|${sender}` : streamKey(p);
    const row = this.#sql.exec<PendingRow>(`SELECT * FROM pending WHERE key = ?`, key).toArray()[0];
    if (!row) {
      if (this.#sql.exec<{ n: number }>(`SELECT count(*) AS n FROM pending`).one().n >= leafConfig.maxPendingStreams) return false;
      this.#sql.exec(`INSERT INTO pending (key, point) VALUES (?, ?)`, key, JSON.stringify(point));
      return true;
    }
    const current = JSON.parse(row.point) as MetricPoint;
    let next: MetricPoint;
    switch (p.kind) {
      case "counter":
      case "updowncounter":
        next = { ...current, value: (current.value ?? 0) + (p.value as number), timeMs: Math.max(current.timeMs, point.timeMs) };
        break;
      case "gauge":
        if (point.timeMs < current.timeMs) return true; // an older sample: the newer one stays
        next = { ...current, value: p.value, timeMs: point.timeMs };
        break;
      case "histogram": {
        const sum = addHistograms(current.histogram as HistogramValue, p.histogram!);
        if (!sum) {
          console.warn(`metrics leaf: ${p.name} changed its buckets; point dropped`);
          return false;
        }
        next = { ...current, histogram: sum, timeMs: Math.max(current.timeMs, point.timeMs) };
        break;
      }
    }
    this.#sql.exec(`UPDATE pending SET point = ? WHERE key = ?`, JSON.stringify(next), key);
    return true;
  }

  /**
   * When pending points should be forwarded: at once when this instance has not forwarded for a
   * whole interval (a quiet leaf adds no delay), else one interval after the last forward (≤ 1
   * forward per interval per shard under load). A fresh instance waits the interval.
   */
  #nextForwardAt(now: number): number {
    return nextAfterQuiet(this.#lastForwardMs, now, leafConfig.forwardIntervalMillis);
  }

  /**
   * Cuts a forward for every shard that has pending points and no forward waiting, then sends
   * each shard's forward (new or re-sent), shards in parallel. Re-arms itself while anything is
   * pending or unacknowledged (backing off after failures); otherwise the next ingest arms it.
   */
  override async alarm(): Promise<void> {
    this.#lastForwardMs = Date.now();
    let failed = false;
    try {
      this.#cut();
      const outbox = this.#sql.exec<OutboxRow>(`SELECT * FROM outbox ORDER BY shard`).toArray();
      const results = await Promise.all(outbox.map((row) => this.#send(row)));
      failed = results.includes(false);
      const forgetBefore = Date.now() - leafConfig.senderForgetMillis;
      this.#sql.exec(`DELETE FROM senders WHERE seen_ms < ?`, forgetBefore);
    } catch (err) {
      failed = true;
      console.warn("metrics leaf: forward failed", String(err));
    } finally {
      const failures = failed ? this.#meta("consecutive_failures") + 1 : 0;
      this.#setMeta("consecutive_failures", failures);
      const waiting = this.#sql.exec<{ n: number }>(`SELECT (SELECT count(*) FROM pending) + (SELECT count(*) FROM outbox) AS n`).one().n;
      if (waiting > 0) {
        const delay = failed ? Math.min(leafConfig.maxRetryMillis, leafConfig.forwardIntervalMillis * 2 ** Math.min(failures, 6)) : leafConfig.forwardIntervalMillis;
        await this.ctx.storage.setAlarm(Date.now() + delay);
      }
    }
  }

  /** Moves pending points into a new outbox entry per shard that has none waiting (one transaction). */
  #cut(): void {
    this.ctx.storage.transactionSync(() => {
      const shards = shardCount(this.env.METRICS_AGGREGATOR_SHARDS);
      const waiting = new Set(this.#sql.exec<{ shard: number }>(`SELECT shard FROM outbox`).toArray().map((r) => r.shard));
      const byShard = new Map<number, { keys: string[]; points: MetricPoint[] }>();
      for (const row of this.#sql.exec<PendingRow>(`SELECT * FROM pending`).toArray()) {
        const point = JSON.parse(row.point) as MetricPoint;
        const shard = shardOf(point.name, shards);
        if (waiting.has(shard)) continue;
        let entry = byShard.get(shard);
        if (!entry) byShard.set(shard, (entry = { keys: [], points: [] }));
        entry.keys.push(row.key);
        entry.points.push(point);
      }
      for (const [shard, { keys, points }] of byShard) {
        const sequence = this.#meta("sequence") + 1;
        this.#setMeta("sequence", sequence);
        const since = this.#meta(`cut_ms_${shard}`);
        const now = Date.now();
        const senders = this.#sql
          .exec<{ sender: string; seen_ms: number }>(`SELECT sender, seen_ms FROM senders WHERE seen_ms >= ?`, since)
          .toArray()
          .map((r) => [r.sender, r.seen_ms]);
        this.#setMeta(`cut_ms_${shard}`, now);
        this.#sql.exec(`INSERT INTO outbox (shard, sequence, points, senders) VALUES (?, ?, ?, ?)`, shard, sequence, JSON.stringify(points), JSON.stringify(senders));
        for (const key of keys) this.#sql.exec(`DELETE FROM pending WHERE key = ?`, key);
      }
    });
  }

  /** Sends one shard's forward; true when the owner acknowledged it (accepted or already had it). */
  async #send(row: OutboxRow): Promise<boolean> {
    try {
      const ns = this.env.METRICS_AGGREGATOR;
      const owner = ns.get(ns.idFromName(shardName(row.shard)));
      await owner.forward(this.ctx.id.toString(), row.sequence, JSON.parse(row.points) as MetricPoint[], row.shard, JSON.parse(row.senders) as Array<[string, number]>);
      this.#sql.exec(`DELETE FROM outbox WHERE shard = ? AND sequence = ?`, row.shard, row.sequence);
      this.#bumpMeta("forwards");
      return true;
    } catch (err) {
      this.#bumpMeta("forward_failures");
      console.warn(`metrics leaf: forward ${row.sequence} to shard ${row.shard} failed; kept for the next alarm`, String(err));
      return false;
    }
  }

  /** Counters of this leaf. */
  async stats(): Promise<LeafStats> {
    const count = (table: string) => this.#sql.exec<{ n: number }>(`SELECT count(*) AS n FROM ${table}`).one().n;
    return {
      batchesAccepted: this.#meta("batches_accepted"),
      batchesDuplicate: this.#meta("batches_duplicate"),
      batchesRefused: this.#meta("batches_refused"),
      pointsDropped: this.#meta("points_dropped"),
      pendingStreams: count("pending"),
      outbox: count("outbox"),
      senders: count("senders"),
      forwards: this.#meta("forwards"),
      forwardFailures: this.#meta("forward_failures"),
    };
  }
}
