// Keeping the views current: the live stream (GET /api/v1/stream, docs/design/live-stream.md)
// tells which views changed. It is read with fetch() and this tab's token in Authorization —
// not EventSource and the session cookie, which every tab of the browser shares: tabs signed
// in with different tokens each hear their own events, and the page sees the stream's HTTP
// status (401: sign in again). When the stream is unavailable the page polls instead (cheap:
// If-None-Match answers 304) and tries the stream again later. Nothing runs while the tab is
// hidden.
import { errorFrom } from "./api.js";
import { events } from "./sse.js";

/** What the feed is doing, for the page's connection line. */
export const FeedState = Object.freeze({
  connecting: "connecting",
  live: "live",
  polling: "polling",
  paused: "paused",
});

const GUARDS = "/api/v1/guards/status";

export class LiveFeed {
  /**
   * @param token the JWT the stream is opened with
   * @param onChange called with the changed view paths, or null for "refresh every view"
   * @param onState called with a FeedState
   * @param onUnauthorized called with the ApiError when the stream is refused with 401
   * @param quietMs no byte for this long (the stream sends a comment every 20 s): reconnect
   */
  constructor({ token, onChange, onState, onUnauthorized, pollMs = 5000, streamRetryMs = 30000, quietMs = 45000 }) {
    Object.assign(this, { token, onChange, onState, onUnauthorized, pollMs, streamRetryMs, quietMs });
    this.generation = 0;   // each connection's number: anything of an older one is ignored
    this.controller = null;
    this.timers = { poll: null, retry: null, quiet: null };
    this.failures = 0;
    this.lastEventId = "";
    this.reconnectMs = null; // the stream's own `retry:`
    this.running = false;
    this.visibility = () => (document.hidden ? this.#pause() : this.#resume());
  }

  start() {
    this.running = true;
    document.addEventListener("visibilitychange", this.visibility);
    if (document.hidden) this.#pause(); else this.#resume();
  }

  stop() {
    this.running = false;
    document.removeEventListener("visibilitychange", this.visibility);
    this.#close();
  }

  #pause() {
    this.#close();
    this.onState(FeedState.paused);
  }

  #resume() {
    if (!this.running) return;
    this.onChange(null); // whatever changed while hidden
    this.#connect();
  }

  /** Ends the current connection and every timer; returns the next connection's number. */
  #close() {
    this.generation += 1;
    this.controller?.abort();
    this.controller = null;
    clearInterval(this.timers.poll);
    clearTimeout(this.timers.retry);
    clearTimeout(this.timers.quiet);
    this.timers = { poll: null, retry: null, quiet: null };
    return this.generation;
  }

  async #connect() {
    const generation = this.#close();
    const controller = new AbortController();
    this.controller = controller;
    this.onState(FeedState.connecting);
    const headers = { Authorization: `Bearer ${this.token}`, Accept: "text/event-stream" };
    if (this.lastEventId) headers["Last-Event-ID"] = this.lastEventId;
    let response;
    try {
      response = await fetch("/api/v1/stream", { headers, signal: controller.signal, cache: "no-store", credentials: "omit" });
    } catch {
      if (generation === this.generation) this.#failed();
      return;
    }
    if (generation !== this.generation) return;
    if (response.status === 401) { this.onUnauthorized(await errorFrom(response)); return; }
    if (!response.ok || !response.body) { this.#failed(); return; }

    this.failures = 0;
    this.onState(FeedState.live);
    this.onChange(null); // anything between the last answer and this stream
    const heard = () => {
      clearTimeout(this.timers.quiet);
      this.timers.quiet = setTimeout(() => generation === this.generation && this.#connect(), this.quietMs);
    };
    heard();
    try {
      for await (const event of events(response.body, heard)) {
        if (generation !== this.generation) return;
        this.#dispatch(event);
      }
    } catch {
      // aborted by us, or the connection broke: decided below
    }
    if (generation !== this.generation || !this.running) return;
    // The stream ended (the token's exp, a resync, an nginx reload, the network): reconnect
    // after the stream's retry, or 1–2 s.
    const wait = this.reconnectMs ?? 1000 + Math.random() * 1000;
    this.onState(FeedState.connecting);
    this.timers.retry = setTimeout(() => this.#connect(), wait);
  }

  #dispatch(event) {
    if (event.id !== null) this.lastEventId = event.id;
    if (event.retry !== null) this.reconnectMs = event.retry;
    switch (event.event) {
      case "changed":
        this.onChange(viewsOf(event.data));
        break;
      case "guard":
        this.onChange([GUARDS]);
        break;
      case "resync": // the stream could not resume from our last id: refresh everything
        this.lastEventId = "";
        this.onChange(null);
        break;
      default:
        break;
    }
  }

  /** The stream could not be opened: try twice more, then poll and try again later. */
  #failed() {
    this.failures += 1;
    if (this.failures < 3) {
      this.onState(FeedState.connecting);
      this.timers.retry = setTimeout(() => this.#connect(), 1000 * this.failures);
      return;
    }
    this.#fallBack();
  }

  #fallBack() {
    this.#close();
    if (!this.running || document.hidden) return;
    this.failures = 0;
    this.onState(FeedState.polling);
    this.onChange(null); // at once: also tells a 401 (token expired) or a 503 apart
    this.timers.poll = setInterval(() => this.onChange(null), this.pollMs);
    this.timers.retry = setTimeout(() => this.#connect(), this.streamRetryMs);
  }
}

function viewsOf(data) {
  try {
    const views = JSON.parse(data).views;
    return Array.isArray(views) ? views : null;
  } catch {
    return null;
  }
}
