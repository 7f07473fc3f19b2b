let id: string | undefined;

/**
 * This isolate's random id: batch ids (`${isolateId()}-${sequence}`) and the breaker board's key.
 * Drawn on first use, because Workers forbid random values in global scope.
 */
export function isolateId(): string {
  return (id ??= crypto.randomUUID());
}
