import { describe, expect, it } from "vitest";
import { detect } from "../../../lib/domain/detector";
import { checkTransition, decide, severityLevel } from "../../../lib/domain/phase-policy";

const critical = detect({ voltage: 1, temperature: 20, gyro: 0, time: 0 }, undefined).detection;
const medium = detect({ voltage: 22, temperature: 20, gyro: 0, time: 0 }, undefined).detection;
const nominal = detect({ voltage: 28, temperature: 20, gyro: 0, time: 0 }, undefined).detection;

describe("phase transitions", () => {
  it("allows planned transitions and refuses others with the reason", () => {
    expect(checkTransition("LAUNCH", "DEPLOYMENT", false).allowed).toBe(true);
    const refused = checkTransition("LAUNCH", "PAYLOAD_OPS", false);
    expect(refused.allowed).toBe(false);
    expect(refused.reason).toMatch(/only DEPLOYMENT, SAFE_MODE/);
    expect(checkTransition("LAUNCH", "PAYLOAD_OPS", true).allowed).toBe(true);
    expect(checkTransition("SAFE_MODE", "SAFE_MODE", true).allowed).toBe(false);
  });

  it("reaches SAFE_MODE from every phase", () => {
    for (const from of ["LAUNCH", "DEPLOYMENT", "NOMINAL_OPS", "PAYLOAD_OPS"] as const) {
      expect(checkTransition(from, "SAFE_MODE", false).allowed).toBe(true);
    }
  });
});

describe("decide", () => {
  it("maps scores to levels", () => {
    expect([0.1, 0.45, 0.7, 0.9].map(severityLevel)).toEqual(["LOW", "MEDIUM", "HIGH", "CRITICAL"]);
  });

  it("escalates a critical anomaly to SAFE_MODE in NOMINAL_OPS but not during LAUNCH", () => {
    expect(decide(critical, "NOMINAL_OPS", 0)).toMatchObject({ severityLevel: "CRITICAL", shouldEscalateToSafeMode: true, escalationLevel: "SAFE_MODE" });
    const launch = decide(critical, "LAUNCH", 0);
    expect(launch.shouldEscalateToSafeMode).toBe(false);
    expect(launch.allowedActions).toEqual(["LOG_ONLY", "ALERT_GROUND"]);
  });

  it("falls back to alerting the ground when the phase forbids the action", () => {
    const d = decide(critical, "LAUNCH", 0);
    expect(d.isAllowed).toBe(false);
    expect(d.recommendedAction).toBe("ALERT_GROUND");
    expect(d.reasoning.join(" ")).toMatch(/not allowed in LAUNCH/);
  });

  it("raises severity with recurrence, bounded", () => {
    const once = decide(medium, "NOMINAL_OPS", 0).severityScore;
    const thrice = decide(medium, "NOMINAL_OPS", 3).severityScore;
    const many = decide(medium, "NOMINAL_OPS", 50).severityScore;
    expect(thrice).toBeCloseTo(once + 0.15, 5);
    expect(many).toBeCloseTo(once + 0.2, 5);
  });

  it("leaves a nominal reading alone", () => {
    expect(decide(nominal, "NOMINAL_OPS", 5)).toMatchObject({ severityScore: 0, escalationLevel: "NONE", recommendedAction: "LOG_ONLY", isAllowed: true });
  });
});
