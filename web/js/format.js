// How numbers and times read on the page. Money and percentages arrive rounded by the API
// (2 decimals); prices and volumes are shown as the API passed them through.

const money = new Intl.NumberFormat("en-GB", {
  minimumFractionDigits: 2, maximumFractionDigits: 2, signDisplay: "exceptZero",
});
const plain = new Intl.NumberFormat("en-GB", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** A signed amount, "+535.50" / "-29.33" / "0.00"; "–" for null. The sign is in the text, so
 *  colour is never the only signal. */
export function signedMoney(value) {
  return value === null || value === undefined ? "–" : money.format(value);
}

/** An unsigned amount with thousands separators, "59,557.85"; "–" for null. */
export function amount(value) {
  return value === null || value === undefined ? "–" : plain.format(value);
}

/** "13.39 %"; "–" for null. */
export function percent(value) {
  return value === null || value === undefined ? "–" : `${plain.format(value)} %`;
}

/** A price or volume as stored. */
export function raw(value) {
  return value === null || value === undefined ? "–" : String(value);
}

/** CSS class for the sign of an amount. */
export function signClass(value) {
  if (value === null || value === undefined || value === 0) return "zero";
  return value > 0 ? "positive" : "negative";
}

/** Local clock time of an RFC 3339 timestamp, with the date when it is not today. */
export function clockTime(iso) {
  if (!iso) return "–";
  const t = new Date(iso);
  const now = new Date();
  const sameDay = t.toDateString() === now.toDateString();
  return sameDay
    ? t.toLocaleTimeString("en-GB")
    : `${t.toLocaleDateString("en-GB")} ${t.toLocaleTimeString("en-GB")}`;
}

/** "42 s ago", "5 min ago", "3 h ago", "2 d ago". */
export function age(iso, nowMs = Date.now()) {
  if (!iso) return "";
  const seconds = Math.max(0, Math.round((nowMs - Date.parse(iso)) / 1000));
  if (seconds < 90) return `${seconds} s ago`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 36 * 3600) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

/** "in 23 h 59 min" / "in 40 s" / "expired". */
export function remaining(seconds) {
  if (seconds <= 0) return "expired";
  if (seconds < 120) return `in ${Math.floor(seconds)} s`;
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return h > 0 ? `in ${h} h ${m} min` : `in ${m} min`;
}
