// GET /api/v1/positions/{ticket}: one position, open or closed, in the dialog.
import { h } from "../dom.js";
import { signedMoney, raw, clockTime } from "../format.js";

export function path(ticket) {
  return `/api/v1/positions/${encodeURIComponent(ticket)}`;
}

export function render(p) {
  document.getElementById("position-title").textContent =
    `${p.symbol} ${p.direction} · ticket ${p.ticket} · ${p.open ? "open" : "closed"}`;
  const fields = [
    ["Volume (lots)", raw(p.volume)],
    ["Entry price", raw(p.entry_price)],
    ["Current price", raw(p.current_price)],
    ["Take profit", raw(p.take_profit)],
    ["Stop loss", raw(p.stop_loss)],
    ["Unrealized P&L", signedMoney(p.unrealized_pnl)],
    ["Matched with bot", p.matched_with_bot ? "yes" : `no${p.divergence_reason ? ` (${p.divergence_reason})` : ""}`],
    ["Opened", clockTime(p.opened_at)],
    ["Updated", clockTime(p.updated_at)],
  ];
  if (!p.open) {
    fields.push(["Close reason", raw(p.close_reason)], ["Closed price", raw(p.closed_price)],
      ["Realized P&L", signedMoney(p.realized_pnl)]);
  }
  document.getElementById("position-fields").replaceChildren(
    ...fields.flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]));
}
