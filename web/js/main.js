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
// Why the last session ended, shown by the sign-in after the page reloads.
const MESSAGE_KEY = "trading-api.sign-in-message";
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
  // Rewritten only when it says something new: a screen reader announces an alert each time.
  if (banner.textContent !== text) banner.textContent = text;
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
    this.logGeneration = 0; // bumped whenever the rows shown are replaced: a late "older" page is dropped
    this.rendered = new Map(); // view → the path its shown data came from
    this.pending = new Set();
    this.running = false;
    this.stopped = false;
    this.retryTimer = null;
    this.backoff = new Backoff();
    this.feed = new LiveFeed({
      token,
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
    this.stopped = true;
    this.feed.stop();
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
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
    // Hidden: nothing is fetched; the feed asks for everything when the tab is shown again.
    if (this.running || this.retryTimer || this.stopped || document.hidden) return;
    this.running = true;
    try {
      while (this.pending.size > 0 && !this.stopped) {
        const round = [...this.pending];
        this.pending.clear();
        const failed = await this.#fetchRound(round);
        if (this.stopped) return;
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

  /** Whether to draw `body` of `view` fetched from `path`: new data, or other data than shown. */
  #fresh(view, path, changed) {
    if (this.stopped) return false;
    const draw = changed || this.rendered.get(view) !== path;
    this.rendered.set(view, path);
    return draw;
  }

  async #load(view) {
    switch (view) {
      case "status": {
        const { body, changed } = await this.api.view(status.path);
        if (this.#fresh(view, status.path, changed)) status.render(body);
        break;
      }
      case "positions": {
        const symbol = this.symbol;
        const path = positions.path(symbol);
        const { body, changed } = await this.api.view(path);
        if (symbol === this.symbol && this.#fresh(view, path, changed)) {
          positions.render(body, symbol, (t) => this.openPosition(t));
        }
        break;
      }
      case "guards": {
        const { body, changed } = await this.api.view(guards.path);
        if (!this.#fresh(view, guards.path, changed)) break;
        const reasons = guards.render(body);
        if (reasons.length > 0) showBanner("close-now", "critical", `Close positions now. ${reasons.join(" ")}`);
        else clearBanner("close-now");
        break;
      }
      case "logs": {
        // The first page, as long as the rows shown (up to the API's limit); older rows
        // loaded beyond it are kept below it.
        const limit = Math.min(logs.MAX_LIMIT, Math.max(logs.PAGE, this.logEvents.length));
        const hours = this.logHours;
        const path = logs.path(hours, limit);
        const { body, changed } = await this.api.view(path);
        if (hours !== this.logHours || !this.#fresh(view, path, changed)) break;
        const tail = this.logEvents.length > limit ? this.#olderThan(body.events) : null;
        this.logGeneration += 1;
        this.logEvents = tail ? body.events.concat(tail) : body.events;
        if (!tail) this.logCursor = body.next_cursor ?? null;
        logs.render(this.logEvents, this.logCursor);
        break;
      }
      default:
        break;
    }
  }

  /** The rows shown after the last of `page`, when it is among them; else null (start over). */
  #olderThan(page) {
    const last = page.at(-1)?.id;
    const at = this.logEvents.findIndex((e) => e.id === last);
    return at < 0 ? null : this.logEvents.slice(at + 1);
  }

  #retryLater(error) {
    if (error.kind === ErrorKind.unauthorized) { this.unauthorized(error); return; }
    clearTimeout(this.retryTimer);
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
    if (this.stopped) return; // a late answer of a session already ended
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
    positions.loading(symbol);
    this.changed([positions.path("")]);
  }

  setLogHours(hours) {
    this.logHours = hours;
    this.logEvents = [];
    this.logCursor = null;
    this.logGeneration += 1;
    logs.loading();
    this.changed(["/api/v1/reconciliation/logs"]);
  }

  async loadOlderLogs() {
    if (!this.logCursor) return;
    const button = $("logs-older");
    const generation = this.logGeneration;
    button.disabled = true;
    $("logs-error").hidden = true;
    try {
      const { body } = await this.api.view(logs.path(this.logHours, logs.PAGE, this.logCursor));
      if (this.stopped || generation !== this.logGeneration) return; // the rows were replaced meanwhile
      this.logGeneration += 1;
      this.logEvents = this.logEvents.concat(body.events);
      this.logCursor = body.next_cursor ?? null;
      logs.render(this.logEvents, this.logCursor);
    } catch (error) {
      if (error.kind === ErrorKind.unauthorized) { this.unauthorized(error); return; }
      $("logs-error").textContent = `Could not load older entries: ${error.message} Try again.`;
      $("logs-error").hidden = false;
    } finally {
      button.disabled = false;
    }
  }

  async openPosition(ticket) {
    const dialog = $("position-dialog");
    $("position-error").hidden = true;
    try {
      const { body } = await this.api.view(position.path(ticket));
      if (this.stopped) return;
      position.render(body);
    } catch (error) {
      if (this.stopped) return;
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

/** Ends the session: forgets the token and reloads the page, so nothing of it stays on screen
 *  or in flight; `message` (why) is shown by the sign-in. */
function signOut(message = "") {
  dashboard?.stop();
  dashboard = null;
  sessionStorage.removeItem(TOKEN_KEY);
  if (message) sessionStorage.setItem(MESSAGE_KEY, message);
  location.replace("/");
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

  const message = sessionStorage.getItem(MESSAGE_KEY) ?? "";
  sessionStorage.removeItem(MESSAGE_KEY);
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token && !tokenProblem(token)) signIn(token); else showSignIn(message);
}

wire();
