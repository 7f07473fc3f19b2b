/** Reliability: circuit breakers, retries, chaos injection and recovery (see README, Reliability). */
export { BREAKER_STATE_VALUE, CircuitBreaker, CircuitOpenError, type BreakerState, type CircuitBreakerOptions } from "./circuit-breaker";
export { BREAKER_SETTINGS, breaker, localBreakerStates, resetBreakers } from "./breakers";
export { IDEMPOTENT_OPERATIONS, RETRY_DEFAULTS, backoffDelay, retry, type IdempotentOperation, type RetryOptions } from "./retry";
export { ChaosFaultError, chaosSpecSchema, faultView, invalidateFaultView, resetChaosView } from "./chaos";
export { ChaosControl, CHAOS_TARGETS, CHAOS_TYPES } from "./chaos-control";
export { guardDependency, guardTransport, resetFailureRuns, type GuardOptions } from "./guard";
