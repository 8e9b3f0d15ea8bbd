// GET /api/v1/reconciliation/logs?hours=H&limit=L[&cursor=C]: the log, newest first, with
// "Load older" following the API's next_cursor.
import { h, setRows } from "../dom.js";
import { eventRow } from "./events.js";

const BASE = "/api/v1/reconciliation/logs";
export const PAGE = 50;
export const MAX_LIMIT = 500;

export function path(hours, limit, cursor = null) {
  const q = `hours=${hours}&limit=${limit}`;
  return cursor ? `${BASE}?${q}&cursor=${encodeURIComponent(cursor)}` : `${BASE}?${q}`;
}

export function isPath(p) {
  return p === BASE;
}

/** Shows `events` (all pages loaded so far) and whether older ones remain. */
export function render(events, nextCursor) {
  setRows(document.getElementById("logs-table"), events.map((e) => eventRow(e, true)));
  document.getElementById("logs-older").hidden = !nextCursor;
  document.getElementById("logs-end").hidden = Boolean(nextCursor) || events.length === 0;
}

/** Until the new window's answer arrives. */
export function loading() {
  setRows(document.getElementById("logs-table"), [h("tr", {}, h("td", { colspan: 7, class: "none" }, "Loading…"))]);
  document.getElementById("logs-older").hidden = true;
  document.getElementById("logs-end").hidden = true;
}
