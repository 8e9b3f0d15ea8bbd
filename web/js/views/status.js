// GET /api/v1/reconciliation/status: the badge (healthy / warning / idle), the last sync and
// its age, the counts, the last sync's error and the five most recent events.
import { ageElement, setRows, setText } from "../dom.js";
import { clockTime, age } from "../format.js";
import { eventRow } from "./events.js";

export const path = "/api/v1/reconciliation/status";

const BADGE = {
  healthy: "✓ Healthy",
  warning: "! Warning",
  idle: "○ Idle",
};

export function render(body) {
  const badge = document.getElementById("status-badge");
  badge.textContent = BADGE[body.status] ?? body.status;
  badge.className = `badge level-${body.status}`;
  badge.dataset.value = body.status;

  const sync = document.getElementById("status-sync");
  if (body.last_sync_at) {
    sync.replaceChildren(`Last sync ${clockTime(body.last_sync_at)} (`,
      ageElement(body.last_sync_at, age(body.last_sync_at)), ")");
  } else {
    sync.textContent = "No sync yet.";
  }
  setNumber("status-total-syncs", body.total_syncs);
  setNumber("status-duration", body.last_sync_duration_ms, " ms");
  setNumber("status-open", body.open_positions_count);
  setNumber("status-matched", body.matched_positions);
  setNumber("status-divergences", body.divergences_detected);
  setText(document.getElementById("status-error"),
    body.error_message ? `Last sync failed: ${body.error_message}` : "");
  setRows(document.getElementById("recent-events"), body.recent_events.map((e) => eventRow(e)));
}

function setNumber(id, value, unit = "") {
  const element = document.getElementById(id);
  element.textContent = value === null || value === undefined ? "–" : `${value}${unit}`;
  element.dataset.value = value ?? "";
}
