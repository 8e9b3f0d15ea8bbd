// The dashboard: sign-in (a pasted token, kept in sessionStorage), the four views, kept current
// by the live feed, and errors as a person needs them (docs/design/dashboard.md).
import { ApiClient, ErrorKind, tokenClaims } from "./api.js";
import { Backoff } from "./backoff.js";
import { h } from "./dom.js";
import { age, remaining } from "./format.js";
import { FeedState, LiveFeed } from "./live.js";
import * as guards from "./views/guards.js";
import * as logs from "./views/logs.js";
import * as position from "./views/position.js";
import * as positions from "./views/positions.js";
import * as status from "./views/status.js";

const TOKEN_KEY = "trading-api.token";
const $ = (id) => document.getElementById(id);

// ---- banners ---------------------------------------------------------------------------------

/** Shows (or replaces) the banner `id`; level: critical | warning | info. */
function showBanner(id, level, text) {
  let banner = document.getElementById(`banner-${id}`);
  if (!banner) {
    banner = h("p", { id: `banner-${id}`, class: "banner", role: level === "info" ? "status" : "alert" });
    $("banners").append(banner);
  }
  banner.className = `banner level-${level}`;
  banner.textContent = text;
}

function clearBanner(id) {
  document.getElementById(`banner-${id}`)?.remove();
}

const TRANSIENT_BANNERS = ["rate-limited", "unavailable", "network", "error"];

// ---- the signed-in page ----------------------------------------------------------------------

const VIEWS = ["status", "positions", "guards", "logs"];

class Dashboard {
  constructor(token, signOut) {
    this.api = new ApiClient(token);
    this.claims = tokenClaims(token);
    this.signOut = signOut;
    this.symbol = "";
    this.logHours = Number($("log-hours").value);
    this.logEvents = [];
    this.logCursor = null;
    this.pending = new Set();
    this.running = false;
    this.stopped = false;
    this.retryTimer = null;
    this.backoff = new Backoff();
    this.feed = new LiveFeed({
      api: this.api,
      onChange: (paths) => this.changed(paths),
      onState: (state) => this.showFeedState(state),
      onUnauthorized: (error) => this.unauthorized(error),
    });
  }

  start() {
    const sub = this.claims?.sub ?? "unknown user";
    $("who").textContent = `Signed in as ${sub}`;
    $("who").hidden = false;
    $("sign-out").hidden = false;
    $("dashboard").hidden = false;
    this.feed.start();
  }

  stop() {
    this.feed.stop();
    clearTimeout(this.retryTimer);
    this.running = false;
    this.stopped = true;
  }

  /** The live feed's news: these view paths changed (null: all of them). */
  changed(paths) {
    if (paths === null) {
      VIEWS.forEach((v) => this.pending.add(v));
    } else {
      for (const p of paths) {
        if (p === status.path) this.pending.add("status");
        else if (positions.isPath(p)) this.pending.add("positions");
        else if (p === guards.path) this.pending.add("guards");
        else if (logs.isPath(p)) this.pending.add("logs");
      }
    }
    this.#run();
  }

  /** Fetches the pending views, one round at a time; waits out a back-off first. */
  async #run() {
    if (this.running || this.retryTimer || this.stopped) return;
    this.running = true;
    try {
      while (this.pending.size > 0 && !this.stopped) {
        const round = [...this.pending];
        this.pending.clear();
        const failed = await this.#fetchRound(round);
        if (failed) {
          round.forEach((v) => this.pending.add(v));
          this.#retryLater(failed);
          return;
        }
        this.backoff.reset();
        TRANSIENT_BANNERS.forEach(clearBanner);
      }
    } finally {
      this.running = false;
    }
  }

  /** Fetches and renders the views of one round; returns the first error, or null. */
  async #fetchRound(round) {
    const results = await Promise.allSettled(round.map((view) => this.#load(view)));
    const failure = results.find((r) => r.status === "rejected");
    return failure ? failure.reason : null;
  }

  async #load(view) {
    switch (view) {
      case "status": {
        const { body } = await this.api.view(status.path);
        status.render(body);
        break;
      }
      case "positions": {
        const symbol = this.symbol;
        const { body } = await this.api.view(positions.path(symbol));
        if (symbol === this.symbol) positions.render(body, symbol, (t) => this.openPosition(t));
        break;
      }
      case "guards": {
        const { body } = await this.api.view(guards.path);
        const reasons = guards.render(body);
        if (reasons.length > 0) showBanner("close-now", "critical", `Close positions now. ${reasons.join(" ")}`);
        else clearBanner("close-now");
        break;
      }
      case "logs": {
        // The rows shown so far, refreshed in one request (up to the API's limit).
        const limit = Math.min(logs.MAX_LIMIT, Math.max(logs.PAGE, this.logEvents.length));
        const hours = this.logHours;
        const { body } = await this.api.view(logs.path(hours, limit));
        if (hours !== this.logHours) break;
        this.logEvents = body.events;
        this.logCursor = body.next_cursor ?? null;
        logs.render(this.logEvents, this.logCursor);
        break;
      }
      default:
        break;
    }
  }

  #retryLater(error) {
    if (error.kind === ErrorKind.unauthorized) { this.unauthorized(error); return; }
    const delay = this.backoff.next(error.retryAfter);
    const seconds = Math.ceil(delay / 1000);
    switch (error.kind) {
      case ErrorKind.rateLimited:
        showBanner("rate-limited", "warning", `Too many requests: slowing down, next try in ${seconds} s.`);
        break;
      case ErrorKind.unavailable:
        showBanner("unavailable", "critical", `The service is unavailable (${error.message}) — retrying in ${seconds} s. The figures shown may be out of date.`);
        break;
      case ErrorKind.network:
        showBanner("network", "critical", `Connection lost — retrying in ${seconds} s. The figures shown may be out of date.`);
        break;
      default:
        showBanner("error", "warning", `${error.message} (request ${error.requestId ?? "?"}) — retrying in ${seconds} s.`);
    }
    this.retryTimer = setTimeout(() => { this.retryTimer = null; this.#run(); }, delay);
  }

  unauthorized(error) {
    this.signOut(`The service refused your token (${error.message}). Sign in again.`);
  }

  showFeedState(state) {
    const line = $("connection");
    line.dataset.state = state;
    line.textContent = {
      [FeedState.connecting]: "Connecting…",
      [FeedState.live]: "● Live",
      [FeedState.polling]: "Polling every 5 s (live updates unavailable)",
      [FeedState.paused]: "Paused while this tab is hidden",
    }[state];
  }

  filter(symbol) {
    this.symbol = symbol;
    this.changed([positions.path("")]);
  }

  setLogHours(hours) {
    this.logHours = hours;
    this.logEvents = [];
    this.changed(["/api/v1/reconciliation/logs"]);
  }

  async loadOlderLogs() {
    if (!this.logCursor) return;
    const button = $("logs-older");
    button.disabled = true;
    try {
      const hours = this.logHours;
      const { body } = await this.api.view(logs.path(hours, logs.PAGE, this.logCursor));
      if (hours === this.logHours) {
        this.logEvents = this.logEvents.concat(body.events);
        this.logCursor = body.next_cursor ?? null;
        logs.render(this.logEvents, this.logCursor);
      }
    } catch (error) {
      this.#retryLater(error);
    } finally {
      button.disabled = false;
    }
  }

  async openPosition(ticket) {
    const dialog = $("position-dialog");
    $("position-error").hidden = true;
    try {
      const { body } = await this.api.view(position.path(ticket));
      position.render(body);
    } catch (error) {
      if (error.kind === ErrorKind.unauthorized) { this.unauthorized(error); return; }
      $("position-title").textContent = `Ticket ${ticket}`;
      $("position-fields").replaceChildren();
      $("position-error").textContent = error.kind === ErrorKind.notFound
        ? "This position does not exist (or is not yours)." : error.message;
      $("position-error").hidden = false;
    }
    if (!dialog.open) dialog.showModal();
    $("position-close").focus();
  }

  /** Every second: ages ("42 s ago") and the token's remaining life. */
  tick() {
    const now = Date.now();
    for (const t of document.querySelectorAll("time[data-since]")) {
      if (t.dataset.since) t.textContent = age(t.dataset.since, now);
    }
    const exp = this.claims?.exp;
    if (typeof exp === "number") {
      const left = exp - now / 1000;
      if (left <= 0) { this.signOut("Your token expired. Sign in with a new one."); return; }
      $("who").textContent = `Signed in as ${this.claims.sub} · token expires ${remaining(left)}`;
    }
  }
}

// ---- sign-in and wiring ----------------------------------------------------------------------

let dashboard = null;

function showSignIn(message = "") {
  $("dashboard").hidden = true;
  $("who").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
  $("connection").textContent = "Not signed in";
  $("connection").dataset.state = "signed-out";
  const error = $("sign-in-error");
  error.textContent = message;
  error.hidden = !message;
  $("token").value = "";
  $("token").focus();
}

function signOut(message = "") {
  if (dashboard) {
    dashboard.stop();
    // Best effort: clear the stream's cookie (the token may already be refused).
    dashboard.api.send("DELETE", "/api/v1/session").catch(() => {});
  }
  dashboard = null;
  sessionStorage.removeItem(TOKEN_KEY);
  document.querySelectorAll(".banner").forEach((b) => b.remove());
  showSignIn(message);
}

function signIn(token) {
  $("sign-in").hidden = true;
  dashboard = new Dashboard(token, signOut);
  dashboard.start();
}

/** Why a pasted text cannot be a usable token, or "" when it may be. */
function tokenProblem(token) {
  const claims = tokenClaims(token);
  if (!claims) return "That is not a JWT (three base64url parts separated by dots).";
  if (typeof claims.exp === "number" && claims.exp * 1000 <= Date.now()) {
    return `That token expired at ${new Date(claims.exp * 1000).toLocaleString("en-GB")}.`;
  }
  return "";
}

function wire() {
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim().replace(/^Bearer\s+/i, "");
    const problem = tokenProblem(token);
    if (problem) { showSignIn(problem); return; }
    sessionStorage.setItem(TOKEN_KEY, token);
    signIn(token);
  });
  $("sign-out").addEventListener("click", () => signOut());
  $("symbol-filter").addEventListener("submit", (event) => {
    event.preventDefault();
    const symbol = $("symbol").value.trim().toUpperCase();
    const error = $("symbol-error");
    if (symbol && !positions.SYMBOL.test(symbol)) {
      error.textContent = "A symbol is 1–20 letters, digits, dots or underscores (e.g. XAUUSD).";
      error.hidden = false;
      return;
    }
    error.hidden = true;
    $("symbol").value = symbol;
    dashboard?.filter(symbol);
  });
  $("symbol-clear").addEventListener("click", () => {
    $("symbol").value = "";
    $("symbol-error").hidden = true;
    dashboard?.filter("");
  });
  $("log-hours").addEventListener("change", () => dashboard?.setLogHours(Number($("log-hours").value)));
  $("logs-older").addEventListener("click", () => dashboard?.loadOlderLogs());
  $("position-close").addEventListener("click", () => $("position-dialog").close());
  setInterval(() => dashboard?.tick(), 1000);

  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token && !tokenProblem(token)) signIn(token); else showSignIn();
}

wire();
