/**
 * This isolate's view of the fleet: which satellites are registered (and so may have an object),
 * the mission phase, and the newest point it recorded, all kept in step with the mission object by
 * one `sync` call at most every {@link SYNC_INTERVAL_MS} per isolate — the mission object's read rate
 * grows with isolates, not with requests or satellites.
 *
 * Registered ids are kept for the isolate's life (registrations are never withdrawn); an id this
 * isolate has not seen is asked of the mission once (`admit`), which under "auto" registration
 * also registers it, up to MAX_SATELLITES.
 */
import { context, ROOT_CONTEXT } from "@opentelemetry/api";
import { suppressTracing } from "@opentelemetry/core";
import type { MissionPhase } from "../domain/schemas";
import { ApiError } from "../http/errors";
import { systemClock, type Clock } from "../support/async";
import type { AdmitAnswer, RegistrationPolicy } from "../objects/mission-state";
import { withSpan } from "../telemetry/spans";
import { callMission, phaseCache, rememberPhase } from "./mission-client";

/** An isolate syncs with the mission at most this often (the phase cache's TTL). */
export const SYNC_INTERVAL_MS = 2000;
/** A read naming a satellite this isolate does not know syncs again only after this long. */
export const UNKNOWN_ID_RESYNC_MS = 1000;
/** Registry deltas followed in one sync at most (each at most MAX_REGISTRY_DELTA ids). */
const MAX_SYNC_PAGES = 20;

/** The default cap on registered satellites (MAX_SATELLITES), and the largest allowed. */
export const DEFAULT_MAX_SATELLITES = 1_000;
export const LIMIT_MAX_SATELLITES = 100_000;

/** The registration policy from the Worker's vars: SATELLITE_REGISTRATION ("auto" unless "admin") and MAX_SATELLITES. */
export function registrationPolicy(env: Partial<Env>): RegistrationPolicy {
  const mode = env.SATELLITE_REGISTRATION?.trim() === "admin" ? "admin" : "auto";
  const n = Number(env.MAX_SATELLITES);
  const maxSatellites = Number.isInteger(n) && n >= 1 ? Math.min(n, LIMIT_MAX_SATELLITES) : DEFAULT_MAX_SATELLITES;
  return { mode, maxSatellites };
}

/** A point as the fleet's `latest` stores it: when it was received, and its JSON. */
export interface LatestPoint {
  received_at: number;
  point: string;
}

export class FleetView {
  readonly #registered = new Set<string>();
  #seq = 0;
  #syncedAt = Number.NEGATIVE_INFINITY;
  #unreported: LatestPoint | undefined;
  #newest: LatestPoint | undefined;
  #timer: Promise<void> | undefined;

  constructor(readonly clock: Clock = systemClock) {}

  /** The mission phase: cached for {@link SYNC_INTERVAL_MS}, else one sync. Undefined when the mission is unreachable. */
  async phase(env: Env): Promise<MissionPhase | undefined> {
    const cached = withSpan("cache_operation", { "astra.cache.store_type": "phase", "astra.cache.operation": "get", "astra.cache.keys": 1 }, (span) => {
      const value = phaseCache.get("phase");
      span.setAttributes({ "astra.cache.hits": value ? 1 : 0, "astra.cache.hit": value !== undefined });
      return value;
    }, { leaf: true });
    if (cached) return cached;
    try {
      return await this.sync(env);
    } catch {
      return undefined;
    }
  }

  /** One sync now: phase, new registrations, and the newest point not yet reported. Throws when unreachable. */
  async sync(env: Env): Promise<MissionPhase> {
    const report = this.#unreported;
    let phase: MissionPhase | undefined;
    for (let page = 0; page < MAX_SYNC_PAGES; page++) {
      const answer = await callMission(env, (s) => s.sync(this.#seq, page === 0 ? report : undefined), { retry: "mission.sync" });
      for (const id of answer.registry.added) this.#registered.add(id);
      this.#seq = answer.registry.seq;
      phase = answer.phase;
      if (!answer.registry.more) break;
    }
    if (this.#unreported === report) this.#unreported = undefined;
    this.#syncedAt = this.clock.now();
    rememberPhase(phase!);
    return phase!;
  }

  /**
   * Which of `ids` may have an object. Unknown ones are asked of the mission in one call; when it
   * cannot be reached they come back as `unreachable` (judged, not recorded, no object named).
   */
  async admit(env: Env, ids: readonly string[]): Promise<{ refused: AdmitAnswer["refused"]; unreachable: string[] }> {
    let unknown = [...new Set(ids)].filter((id) => !this.#registered.has(id));
    if (unknown.length === 0) return { refused: [], unreachable: [] };
    // A new isolate learns the whole registry with its first sync, so it asks `admit` only for
    // satellites that are new to the fleet, not for every satellite it meets.
    if (this.#syncedAt === Number.NEGATIVE_INFINITY) {
      await this.sync(env).catch(() => undefined);
      unknown = unknown.filter((id) => !this.#registered.has(id));
    }
    if (unknown.length === 0) return { refused: [], unreachable: [] };
    try {
      const policy = registrationPolicy(env);
      const answer = await callMission(env, (s) => s.admit(unknown, policy));
      for (const id of answer.admitted) this.#registered.add(id);
      return { refused: answer.refused, unreachable: [] };
    } catch {
      return { refused: [], unreachable: unknown };
    }
  }

  /**
   * Whether `id` is registered, without registering it (reads and feedback never create objects).
   * An id this isolate does not know costs at most one sync per {@link UNKNOWN_ID_RESYNC_MS}, so a
   * client naming random satellites cannot turn every read into a call to the mission object.
   */
  async isRegistered(env: Env, id: string): Promise<boolean> {
    if (this.#registered.has(id)) return true;
    if (this.clock.now() - this.#syncedAt < UNKNOWN_ID_RESYNC_MS) return false;
    await this.sync(env);
    return this.#registered.has(id);
  }

  /** A point this isolate recorded: the fleet's latest if nothing newer arrives elsewhere. */
  noteRecorded(latest: LatestPoint): void {
    if (this.#newest && this.#newest.received_at > latest.received_at) return;
    this.#newest = latest;
    this.#unreported = latest;
  }

  /** The newest point this isolate recorded (merged with the mission's view on reads). */
  newestRecorded(): LatestPoint | undefined {
    return this.#newest;
  }

  /**
   * For `waitUntil` after an ingest: the newest point reaches the mission within about
   * {@link SYNC_INTERVAL_MS} even when no further request comes — at once when the last sync is
   * that old, else once at the end of the interval (one pending wait per isolate). Never rejects.
   */
  reportSoon(env: Env): Promise<void> {
    if (!this.#unreported) return Promise.resolve();
    if (this.#timer) return this.#timer;
    const wait = Math.max(0, this.#syncedAt + SYNC_INTERVAL_MS - this.clock.now());
    this.#timer = new Promise<void>((resolve) => {
      this.clock.setTimeout(resolve, wait);
    })
      // Outside the request's trace: a deferred report is housekeeping, not part of any request.
      .then(() => (this.#unreported ? context.with(suppressTracing(ROOT_CONTEXT), () => this.sync(env)) : undefined))
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => {
        this.#timer = undefined;
      });
    return this.#timer;
  }

  /** Forgets everything (tests: storage was reset). */
  clear(): void {
    this.#registered.clear();
    this.#seq = 0;
    this.#syncedAt = Number.NEGATIVE_INFINITY;
    this.#unreported = undefined;
    this.#newest = undefined;
  }
}

/** The isolate's one view of the fleet. */
export const fleetView = new FleetView();

/** 404 for a satellite the registry does not know: reads and feedback never create a satellite's object. */
export async function requireRegistered(env: Env, satelliteId: string, field = "satellite_id"): Promise<void> {
  if (!(await fleetView.isRegistered(env, satelliteId))) throw new ApiError(404, "not_found", `no satellite ${satelliteId} is registered`, field);
}
