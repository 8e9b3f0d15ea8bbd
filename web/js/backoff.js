// Retry delays after a failed request: doubling from 1 s up to 30 s, with jitter so many tabs
// do not come back at the same moment; a Retry-After from the API is a floor. Pure: the page
// asks for the next delay and resets it after a success.

export class Backoff {
  constructor({ firstMs = 1000, maxMs = 30000, random = Math.random } = {}) {
    this.firstMs = firstMs;
    this.maxMs = maxMs;
    this.random = random;
    this.failures = 0;
  }

  /** The delay before the next try, in ms; `retryAfterSeconds` (Retry-After) is a floor. */
  next(retryAfterSeconds = null) {
    const base = Math.min(this.maxMs, this.firstMs * 2 ** this.failures);
    this.failures += 1;
    const jittered = base / 2 + this.random() * (base / 2);
    return Math.max(jittered, (retryAfterSeconds ?? 0) * 1000);
  }

  reset() {
    this.failures = 0;
  }
}
