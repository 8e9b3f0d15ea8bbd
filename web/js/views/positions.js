// GET /api/v1/positions/open[?symbol=S]: the open positions with P&L coloured and signed, the
// totals (over the filtered positions when a symbol is chosen, as the API computes them).
import { h, ageElement, setRows } from "../dom.js";
import { signedMoney, signClass, percent, raw, age } from "../format.js";

const BASE = "/api/v1/positions/open";

/** The API's rule for a symbol (API.md): what the filter accepts. */
export const SYMBOL = /^[A-Z0-9._]{1,20}$/;

export function path(symbol) {
  return symbol ? `${BASE}?symbol=${encodeURIComponent(symbol)}` : BASE;
}

/** Is this a path of this view (any filter)? */
export function isPath(p) {
  return p === BASE;
}

/**
 * @param body the API's answer
 * @param symbol the filter it was asked with ("" for all)
 * @param onOpen called with a ticket when a row is chosen
 */
export function render(body, symbol, onOpen) {
  const totals = document.getElementById("positions-totals");
  const pnl = h("strong", { class: `pnl ${signClass(body.total_unrealized_pnl)}`,
    id: "positions-total-pnl", dataset: { value: body.total_unrealized_pnl ?? "" } },
  signedMoney(body.total_unrealized_pnl));
  totals.replaceChildren(
    h("span", { id: "positions-count", dataset: { value: body.total_positions } },
      `${body.total_positions} open position${body.total_positions === 1 ? "" : "s"}`),
    symbol ? ` in ${symbol}` : "", " · unrealized P&L ", pnl,
    body.total_unrealized_pnl_pct === null ? "" : ` (${percent(body.total_unrealized_pnl_pct)} of equity)`);

  const table = document.getElementById("positions-table");
  // The ticket that had keyboard focus keeps it across the redraw.
  const focused = document.activeElement?.closest?.("#positions-table tr")?.dataset.ticket;
  setRows(table, body.positions.length === 0
    ? [h("tr", {}, h("td", { colspan: 9, class: "none" }, symbol ? `No open ${symbol} positions.` : "No open positions."))]
    : body.positions.map((p) => row(p, onOpen)));
  if (focused) table.querySelector(`tr[data-ticket="${focused}"] button`)?.focus();

  if (!symbol) {
    const symbols = [...new Set(body.positions.map((p) => p.symbol))].sort();
    document.getElementById("symbols").replaceChildren(...symbols.map((s) => h("option", { value: s })));
  }
}

/** Until the filtered answer arrives: no figures of another filter under this one's name. */
export function loading(symbol) {
  document.getElementById("positions-totals").textContent = symbol ? `Loading ${symbol}…` : "Loading…";
  setRows(document.getElementById("positions-table"),
    [h("tr", {}, h("td", { colspan: 9, class: "none" }, "Loading…"))]);
}

function row(p, onOpen) {
  const open = h("button", { type: "button", class: "ticket", "aria-label": `Position ${p.ticket} details` }, p.ticket);
  open.addEventListener("click", (e) => { e.stopPropagation(); onOpen(p.ticket); });
  const tr = h("tr", { class: "position", dataset: { ticket: p.ticket } },
    h("td", {}, open),
    h("td", { class: "symbol" }, p.symbol),
    h("td", { class: `side ${p.direction}` }, p.direction === "buy" ? "Buy ▲" : "Sell ▼"),
    h("td", { class: "num" }, raw(p.volume)),
    h("td", { class: "num" }, raw(p.entry_price)),
    h("td", { class: "num" }, raw(p.current_price)),
    h("td", { class: `num pnl ${signClass(p.unrealized_pnl)}`, dataset: { value: p.unrealized_pnl ?? "" } },
      signedMoney(p.unrealized_pnl)),
    h("td", { class: p.matched_with_bot ? "matched" : "diverged" },
      p.matched_with_bot ? "✓ matched" : `✕ ${p.divergence_reason ?? "not matched"}`),
    h("td", {}, ageElement(p.updated_at, age(p.updated_at))));
  tr.addEventListener("click", () => onOpen(p.ticket));
  return tr;
}
