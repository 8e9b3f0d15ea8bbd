// Server-sent events (text/event-stream) read from a fetch() body, as the HTML standard's
// EventSource parses them: `event`, `data` (lines joined by "\n"), `id`, `retry`; a blank line
// ends an event; lines starting with ":" are comments (the stream's keep-alive).

/**
 * Yields {event, data, id, retry} for each event of `body` (a ReadableStream of bytes);
 * `onBytes()` is called whenever anything arrives, comments included. Ends with the stream.
 */
export async function* events(body, onBytes = () => {}) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = blank();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      onBytes();
      // A "\r" at the end may be the first half of "\r\n": it waits for the next chunk too.
      let text = buffer + value;
      const held = text.endsWith("\r") ? "\r" : "";
      if (held) text = text.slice(0, -1);
      const lines = text.split(/\r\n|\r|\n/);
      buffer = lines.pop() + held; // an unfinished line waits for the next chunk
      for (const line of lines) {
        if (line === "") {
          if (event.data !== null) yield { ...event, data: event.data };
          else if (event.retry !== null) yield { ...event, data: "" };
          event = blank();
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") event.event = value;
        else if (field === "data") event.data = event.data === null ? value : `${event.data}\n${value}`;
        else if (field === "id" && !value.includes("\0")) event.id = value;
        else if (field === "retry" && /^\d+$/.test(value)) event.retry = Number(value);
      }
    }
  } finally {
    reader.releaseLock();
  }
}

function blank() {
  return { event: "message", data: null, id: null, retry: null };
}
