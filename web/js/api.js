// The API client of the dashboard: fetch with the bearer token, revalidation with ETag /
// If-None-Match (a 304 reuses the body kept here), and errors sorted into what the page does
// about them (ApiError.kind). The token is only ever sent in the Authorization header.

/** Why a request failed, as the page acts on it. */
export const ErrorKind = Object.freeze({
  unauthorized: "unauthorized", // 401: sign in again
  rateLimited: "rate_limited",  // 429: wait Retry-After, then back off further
  unavailable: "unavailable",   // 502/503/504: banner, retry with back-off
  network: "network",           // no answer at all: retry with back-off
  notFound: "not_found",        // 404
  badRequest: "bad_request",    // 400 (e.g. a symbol the API refuses)
  other: "other",
});

export class ApiError extends Error {
  /**
   * @param {string} kind one of ErrorKind
   * @param {number} status HTTP status, 0 without an answer
   * @param {string} message for a person (the API's own message when it sent one)
   * @param {number|null} retryAfter seconds from Retry-After, when sent
   * @param {string|null} requestId X-Request-Id of the answer
   */
  constructor(kind, status, message, retryAfter = null, requestId = null) {
    super(message);
    this.kind = kind;
    this.status = status;
    this.retryAfter = retryAfter;
    this.requestId = requestId;
  }
}

function kindOf(status) {
  if (status === 401) return ErrorKind.unauthorized;
  if (status === 429) return ErrorKind.rateLimited;
  if (status === 502 || status === 503 || status === 504) return ErrorKind.unavailable;
  if (status === 404) return ErrorKind.notFound;
  if (status === 400) return ErrorKind.badRequest;
  return ErrorKind.other;
}

/** The ApiError of a non-2xx answer (its JSON message when it has one). */
export async function errorFrom(response) {
  let message = `HTTP ${response.status}`;
  try {
    const body = await response.json();
    if (body && typeof body.message === "string") message = body.message;
  } catch { /* not JSON: keep the status */ }
  const retry = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
  return new ApiError(kindOf(response.status), response.status, message,
    Number.isFinite(retry) ? retry : null, response.headers.get("X-Request-Id"));
}

/** A request that has not been answered by then is given up (and retried like a lost connection). */
export const REQUEST_TIMEOUT_MS = 15000;

export class ApiClient {
  /** @param {string} token the JWT, sent as `Authorization: Bearer` */
  constructor(token) {
    this.token = token;
    /** path → {etag, body}: the last 200 of each view, for If-None-Match. */
    this.kept = new Map();
  }

  async #fetch(method, path, headers = {}) {
    try {
      return await fetch(path, {
        method,
        headers: { Authorization: `Bearer ${this.token}`, Accept: "application/json", ...headers },
        cache: "no-store",         // revalidation is ours (If-None-Match), not the HTTP cache's
        credentials: "omit",       // the token is the only credential
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (e) {
      const what = e?.name === "TimeoutError" ? "did not answer in time" : "could not be reached";
      throw new ApiError(ErrorKind.network, 0, `The service ${what}.`);
    }
  }

  /**
   * GET a view. Resolves to {body, changed}: `changed` is false when the API answered 304
   * (the body is the one kept from before). Rejects with ApiError.
   */
  async view(path) {
    const kept = this.kept.get(path);
    const response = await this.#fetch("GET", path, kept ? { "If-None-Match": kept.etag } : {});
    if (response.status === 304 && kept) return { body: kept.body, changed: false };
    if (!response.ok) throw await errorFrom(response);
    const body = await response.json();
    const etag = response.headers.get("ETag");
    if (etag) this.kept.set(path, { etag, body });
    return { body, changed: true };
  }

}

/**
 * The claims of a JWT as the page shows them (`sub`, `exp`), read without verifying: the
 * API verifies every request; this only says whose token it is and when it ends.
 * Returns null when the text is not a JWT.
 */
export function tokenClaims(token) {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const json = atob(parts[1].replace(/-/g, "+").replace(/_/g, "/"));
    const claims = JSON.parse(json);
    return typeof claims === "object" && claims !== null ? claims : null;
  } catch {
    return null;
  }
}
