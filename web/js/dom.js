// Building DOM from API data. Text goes in as textContent only (never HTML), so nothing an API
// field holds can become markup or script.

/**
 * h("td", {class: "num", dataset: {value: "1.5"}}, "text", childNode, …) → an element.
 * Attributes: `class`, `dataset` (an object), `hidden`, anything else as setAttribute.
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name === "hidden") element.hidden = true;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/** Sets an element's text; `hidden` when the text is empty. */
export function setText(element, text) {
  element.textContent = text ?? "";
  element.hidden = !text;
}

/** Replaces the rows of a table's tbody. */
export function setRows(table, rows) {
  table.tBodies[0].replaceChildren(...rows);
}

/** A `<time>` showing its age ("42 s ago"), kept current by the page's ticker (data-since). */
export function ageElement(iso, text) {
  return h("time", { datetime: iso ?? "", dataset: { since: iso ?? "" } }, text);
}
