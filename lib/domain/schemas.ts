/**
 * Input contracts of the API, as zod schemas. Objects are strict: an unknown field is refused by
 * name (422), so a typo such as "temprature" never passes silently as a missing optional field.
 */
import { z } from "zod";
import { ANOMALY_ID_PATTERN, SATELLITE_ID_PATTERN } from "./ids";

export const MISSION_PHASES = ["LAUNCH", "DEPLOYMENT", "NOMINAL_OPS", "PAYLOAD_OPS", "SAFE_MODE"] as const;
export type MissionPhase = (typeof MISSION_PHASES)[number];

/** Largest batch accepted by POST /api/v1/telemetry/batch. */
export const MAX_BATCH_POINTS = 1000;

const satelliteId = z
  .string({ error: "satellite_id must be a string" })
  .regex(SATELLITE_ID_PATTERN, "satellite_id must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' or '-'");

const finite = (field: string) =>
  z.number({ error: (issue) => (issue.input === undefined ? `${field} is required` : `${field} must be a finite number`) });

const isoTimestamp = z
  .string({ error: "timestamp must be an ISO 8601 string" })
  .max(40, "timestamp is too long")
  .refine((s) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/.test(s) && !Number.isNaN(Date.parse(s)), {
    message: "timestamp must be an ISO 8601 date-time with a zone, e.g. 2026-11-25T10:00:00Z",
  });

export const telemetryPointSchema = z.strictObject({
  voltage: finite("voltage").min(0, "voltage must be between 0 and 50 V").max(50, "voltage must be between 0 and 50 V"),
  temperature: finite("temperature").min(-100, "temperature must be between -100 and 150 °C").max(150, "temperature must be between -100 and 150 °C"),
  gyro: finite("gyro").min(-1000, "gyro must be between -1000 and 1000 deg/s").max(1000, "gyro must be between -1000 and 1000 deg/s"),
  current: finite("current").min(0, "current must be >= 0 A").max(1000, "current must be <= 1000 A").optional(),
  wheel_speed: finite("wheel_speed").min(0, "wheel_speed must be >= 0 rpm").max(100000, "wheel_speed must be <= 100000 rpm").optional(),
  timestamp: isoTimestamp.optional(),
  satellite_id: satelliteId.optional(),
});
export type TelemetryPointInput = z.infer<typeof telemetryPointSchema>;

export const telemetryBatchSchema = z.strictObject({
  telemetry: z
    .array(telemetryPointSchema, { error: "telemetry must be an array of telemetry points" })
    .min(1, "telemetry must hold at least 1 point")
    .max(MAX_BATCH_POINTS, `telemetry must hold at most ${MAX_BATCH_POINTS} points`),
});

export const phaseChangeSchema = z.strictObject({
  phase: z.enum(MISSION_PHASES, { error: `phase must be one of ${MISSION_PHASES.join(", ")}` }),
  force: z.boolean({ error: "force must be a boolean" }).optional(),
  reason: z.string({ error: "reason must be a string" }).max(200, "reason must be at most 200 characters").optional(),
});

export const feedbackSchema = z.strictObject({
  false_positive: z.boolean({ error: "false_positive is required and must be a boolean" }),
});

const queryNumber = (field: string, min: number, max: number, integer: boolean) =>
  z
    .string()
    .transform((s, ctx) => {
      const n = Number(s);
      if (s.trim() === "" || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
        ctx.addIssue({ code: "custom", message: `${field} must be ${integer ? "an integer" : "a number"} from ${min} to ${max}` });
        return z.NEVER;
      }
      return n;
    })
    .optional();

export const historyQuerySchema = z.strictObject({
  start_time: isoTimestamp.optional(),
  end_time: isoTimestamp.optional(),
  limit: queryNumber("limit", 1, 1000, true),
  severity_min: queryNumber("severity_min", 0, 1, false),
  satellite_id: satelliteId.optional(),
});

/** `?satellite_id=` alone: one satellite's view instead of the fleet's. */
export const satelliteQuerySchema = z.strictObject({
  satellite_id: satelliteId.optional(),
});

export const anomalyIdSchema = z.strictObject({
  id: z.string().regex(ANOMALY_ID_PATTERN, "id must look like an_ followed by 32 hex digits and _<satellite_id>"),
});

/** Largest registration request of PUT /api/v1/fleet/satellites. */
export const MAX_REGISTRATION_IDS = 1000;

export const fleetRegistrationSchema = z.strictObject({
  satellite_ids: z
    .array(satelliteId, { error: "satellite_ids must be an array of satellite ids" })
    .min(1, "satellite_ids must hold at least 1 id")
    .max(MAX_REGISTRATION_IDS, `satellite_ids must hold at most ${MAX_REGISTRATION_IDS} ids`),
});

export const fleetQuerySchema = z.strictObject({
  limit: queryNumber("limit", 1, 1000, true),
  after: queryNumber("after", 0, Number.MAX_SAFE_INTEGER, true),
});
