// The panel's event stream, in a dedicated worker: a never-ending request made by the
// page itself holds Chromium's virtual time still (`chromium --headless
// --virtual-time-budget=N --screenshot` would wait for ever); a worker's does not.
// It hands each message to the page as text: snapshots ("snapshot") and output edges
// ("edge", the JSON of SPEC S13.1; "edges-lost" when the page fell too far behind).
// The URL is relative to this script (static/).
"use strict";

const source = new EventSource("../api/stream");
source.onopen = () => postMessage({type: "open"});
source.onerror = () => postMessage({type: "error"});
source.onmessage = (m) => postMessage({type: "snapshot", data: m.data});
source.addEventListener("edge", (m) => postMessage({type: "edge", data: m.data}));
source.addEventListener("edges-lost", (m) => postMessage({type: "edges-lost", data: m.data}));
