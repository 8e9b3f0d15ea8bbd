// GET /api/v1/guards/status: the drawdown against its 10 % / 20 % thresholds, the market
// alerts of the last 15 minutes, and what says "close" (returned for the page's banner).
import { h, ageElement } from "../dom.js";
import { amount, percent, clockTime, age } from "../format.js";

export const path = "/api/v1/guards/status";

const LEVEL = { healthy: "✓ Healthy", normal: "✓ Normal", warning: "! Warning", critical: "✕ Critical" };

/** Renders the view; returns the reasons to close positions now (empty when none). */
export function render(body) {
  const system = document.getElementById("guards-system");
  system.textContent = LEVEL[body.system_status] ?? body.system_status;
  system.className = `badge level-${body.system_status}`;
  system.dataset.value = body.system_status;

  const d = body.drawdown_guard;
  const meter = document.getElementById("drawdown-meter");
  meter.value = Math.min(d.current_drawdown_pct ?? 0, 30);
  const text = document.getElementById("drawdown-text");
  text.textContent = `${percent(d.current_drawdown_pct)} (${d.alert_type})`;
  text.className = `level-text level-${d.alert_type}`;
  text.dataset.value = d.current_drawdown_pct ?? "";
  document.getElementById("drawdown-equity").textContent = amount(d.current_equity);
  document.getElementById("drawdown-peak").textContent = amount(d.peak_equity);

  const list = document.getElementById("market-alerts");
  list.replaceChildren(...(body.market_guard_alerts.length === 0
    ? [h("li", { class: "none" }, "None.")]
    : body.market_guard_alerts.map((a) => h("li", { class: `alert level-${a.alert_type}` },
      h("span", { class: "badge level-" + a.alert_type }, LEVEL[a.alert_type] ?? a.alert_type), " ",
      h("strong", {}, a.symbol), ` ${a.condition_type.replaceAll("_", " ")}`,
      a.price_gap_pct === null ? "" : `, gap ${percent(a.price_gap_pct)}`,
      a.should_close_positions ? " — close positions" : "",
      ` · ${clockTime(a.detected_at)} (`, ageElement(a.detected_at, age(a.detected_at)), ")"))));

  const reasons = [];
  if (d.should_close_all) {
    reasons.push(`Drawdown ${percent(d.current_drawdown_pct)} is critical: close all positions` +
      (d.time_to_liquidation_seconds ? ` (liquidation in ${d.time_to_liquidation_seconds} s)` : "") + ".");
  }
  for (const a of body.market_guard_alerts) {
    if (a.should_close_positions) {
      reasons.push(`${a.symbol}: ${a.condition_type.replaceAll("_", " ")} is critical` +
        (a.price_gap_pct === null ? "" : ` (gap ${percent(a.price_gap_pct)})`) + `: close ${a.symbol} positions.`);
    }
  }
  if (body.any_positions_should_close && reasons.length === 0) reasons.push("The guards say: close positions.");
  return reasons;
}
