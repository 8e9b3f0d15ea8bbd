// One reconciliation event as a table row (the status's recent events and the log share it).
import { h } from "../dom.js";
import { clockTime } from "../format.js";

const MATCH = { 0: "not matched", 1: "matched", 2: "divergence" };

/** The API's `matched` (0, 1, 2 or null) as words, with the divergence reason when there is one. */
export function matchText(event) {
  if (event.matched === null || event.matched === undefined) return "–";
  const words = MATCH[event.matched] ?? String(event.matched);
  return event.divergence_reason ? `${words}: ${event.divergence_reason}` : words;
}

/** A `<tr>` of an event; `withNote` adds the error message column (the log). */
export function eventRow(event, withNote = false) {
  return h("tr", { class: "event", dataset: { id: event.id } },
    h("td", {}, h("time", { datetime: event.created_at }, clockTime(event.created_at))),
    h("td", {}, event.event_type.replace("_", " ")),
    h("td", { class: `status-text status-${event.status}` }, event.status),
    h("td", { class: "num" }, event.ticket ?? "–"),
    h("td", {}, event.symbol),
    h("td", { class: event.matched === 2 ? "diverged" : "" }, matchText(event)),
    withNote ? h("td", { class: "note" }, event.error_message ?? "") : null);
}
