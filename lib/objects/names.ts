/**
 * Durable Object names: one mission object for what is truly global, one object per satellite for
 * its readings, recurrence memory and anomalies. Both sides (isolates and objects) name them here.
 */

/** The mission object's name: every isolate and every satellite object reaches the same one. */
export const MISSION_OBJECT_NAME = "mission";

/**
 * The satellite object's name. Only ids the fleet registry admitted are ever turned into a name
 * (lib/mission/fleet.ts), so a client cannot mint objects.
 * @example satelliteObjectName("sat-1") // "satellite:sat-1"
 */
export const satelliteObjectName = (satelliteId: string): string => `satellite:${satelliteId}`;
