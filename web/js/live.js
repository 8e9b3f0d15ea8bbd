// Keeping the views current: the live stream (GET /api/v1/stream, authenticated by the session
// cookie POST /api/v1/session sets, docs/design/live-stream.md) tells which views changed; when
// the stream is unavailable the page polls instead (cheap: If-None-Match answers 304) and tries
// the stream again later. Nothing runs while the tab is hidden.
import { ErrorKind } from "./api.js";

/** What the feed is doing, for the page's connection line. */
export const FeedState = Object.freeze({
  connecting: "connecting",
  live: "live",
  polling: "polling",
  paused: "paused",
});

export class LiveFeed {
  /**
   * @param api ApiClient
   * @param onChange called with the changed view paths, or null for "refresh every view"
   * @param onState called with a FeedState
   * @param onUnauthorized called with the ApiError when the session is refused (401)
   */
  constructor({ api, onChange, onState, onUnauthorized, pollMs = 5000, streamRetryMs = 30000 }) {
    Object.assign(this, { api, onChange, onState, onUnauthorized, pollMs, streamRetryMs });
    this.source = null;
    this.pollTimer = null;
    this.retryTimer = null;
    this.failures = 0;
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

  #close() {
    if (this.source) this.source.close();
    this.source = null;
    clearInterval(this.pollTimer);
    clearTimeout(this.retryTimer);
    this.pollTimer = this.retryTimer = null;
  }

  async #connect() {
    this.#close();
    this.onState(FeedState.connecting);
    try {
      await this.api.send("POST", "/api/v1/session"); // the cookie EventSource sends
    } catch (error) {
      if (error.kind === ErrorKind.unauthorized) { this.onUnauthorized(error); return; }
      this.#fallBack();
      return;
    }
    if (!this.running || document.hidden) return;
    const source = new EventSource("/api/v1/stream");
    this.source = source;
    this.failures = 0;
    source.addEventListener("open", () => {
      this.failures = 0;
      clearInterval(this.pollTimer);
      this.pollTimer = null;
      this.onState(FeedState.live);
      this.onChange(null); // anything between the last answer and this stream
    });
    source.addEventListener("changed", (event) => this.onChange(viewsOf(event)));
    source.addEventListener("guard", () => this.onChange(["/api/v1/guards/status"]));
    // The stream could not resume from our last event id: refresh everything; the browser
    // reconnects by itself after the retry the event set.
    source.addEventListener("resync", () => this.onChange(null));
    source.addEventListener("error", () => {
      // CLOSED: the answer was not a stream (401, 429, 5xx); CONNECTING: the browser retries.
      this.failures += 1;
      if (source.readyState === EventSource.CLOSED || this.failures >= 3) this.#fallBack();
      else this.onState(FeedState.connecting);
    });
  }

  #fallBack() {
    this.#close();
    if (!this.running || document.hidden) return;
    this.onState(FeedState.polling);
    this.onChange(null); // at once: also tells a 401 (token expired) or a 503 apart
    this.pollTimer = setInterval(() => this.onChange(null), this.pollMs);
    this.retryTimer = setTimeout(() => this.#connect(), this.streamRetryMs);
  }
}

function viewsOf(event) {
  try {
    const views = JSON.parse(event.data).views;
    return Array.isArray(views) ? views : null;
  } catch {
    return null;
  }
}
