// The example page's script: open a tunnel from the pasted config through the
// relay, fetch a URL inside it, show the tunnel's status once a second.
// Plain JavaScript on the browser build (wg.js), as a page would use it.
import { connect } from "./wg.js";

const $ = (id) => document.getElementById(id);
let tunnel = null;
let timer = null;

function setState(state, text, error = false) {
  const el = $("state");
  el.dataset.state = state;
  el.textContent = text;
  el.className = error ? "error" : state === "open" ? "ok" : "";
}

const bytes = (n) => n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(2)} MiB`;

function ago(ms) {
  if (!ms) return "never";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s === 0 ? "now" : `${s} s ago`;
}

function showStatus() {
  if (!tunnel) return;
  const st = tunnel.status(), bind = tunnel.device.bind;
  const rows = [["addresses", st.addresses.join(", ")]];
  for (const p of st.peers) {
    const ep = p.endpoint ? (p.endpoint.address === "gateway" ? "the gateway (relay URL)" : `${p.endpoint.address}:${p.endpoint.port}`) : "none";
    rows.push(["peer", btoa(String.fromCharCode(...p.publicKey))], ["  endpoint", ep],
      ["  latest handshake", ago(p.lastHandshakeTime)], ["  transfer", `${bytes(p.rxBytes)} received, ${bytes(p.txBytes)} sent`]);
  }
  rows.push(["relay", bind.open.length ? `open (${bind.open.join(", ")})` : "not open"],
    ["datagrams", `${bind.counters.received} in, ${bind.counters.sent} out, ${bind.counters.dropped} dropped`],
    ["messages", `${bind.counters.messagesReceived} in, ${bind.counters.messagesSent} out`],
    ["TCP connections", String(st.usage.connections)],
    ["TCP segments", `${st.stats.tcpSegmentsIn} in, ${st.stats.tcpSegmentsOut} out, ${st.stats.tcpRetransmits} retransmitted, ${st.stats.tcpOutOfOrder} out of order`]);
  const dl = $("status");
  dl.replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = k;
    dd.textContent = v;
    return [dt, dd];
  }));
  const handshake = st.peers.some((p) => p.lastHandshakeTime > 0);
  dl.dataset.handshake = String(handshake);
}

$("connect").onclick = async () => {
  $("connect").disabled = true;
  setState("connecting", "connecting...");
  try {
    const token = $("token").value.trim();
    const warnings = [];
    tunnel = await connect($("config").value, {
      onwarning: (w) => warnings.push(w),
      relay: $("relay").value.trim(),
      batch: $("framing").value !== "datagram",
      ...(token ? { token } : {}),
      onevent: (e) => {
        // A WebTransport session giving way to WebSocket (e.fallback) is not an error: the WebSocket's open follows.
        if (e.type === "close" && !e.fallback && tunnel) setState("open", `relay closed (${e.code}${e.reason ? ` ${e.reason}` : ""}); reopening on the next packet`, true);
        else if (e.type === "open" && tunnel) setState("open", "connected");
      },
    });
    setState("open", "connected");
    $("warnings").textContent = warnings.join("\n");
    $("disconnect").disabled = false;
    $("fetch").disabled = false;
    showStatus();
    timer = setInterval(showStatus, 1000);
  } catch (e) {
    tunnel = null;
    setState("closed", e instanceof Error ? e.message : String(e), true);
    $("connect").disabled = false;
  }
};

$("disconnect").onclick = async () => {
  clearInterval(timer);
  const t = tunnel;
  tunnel = null;
  $("disconnect").disabled = true;
  $("fetch").disabled = true;
  await t?.close();
  setState("closed", "not connected");
  $("connect").disabled = false;
};

$("fetch").onclick = async () => {
  const out = $("result");
  out.className = "";
  out.dataset.done = "false";
  out.textContent = "fetching...";
  $("body").textContent = "";
  const started = performance.now();
  try {
    const res = await tunnel.fetch($("url").value.trim());
    // Read to the end, then hash: the time covers the transfer only.
    const chunks = [];
    let n = 0;
    for (const reader = res.body.getReader(); ;) {
      const { value, done } = await reader.read();
      if (done) break;
      chunks.push(value);
      n += value.length;
    }
    const ms = performance.now() - started;
    const body = new Uint8Array(n);
    for (let off = 0, i = 0; i < chunks.length; off += chunks[i].length, i++) body.set(chunks[i], off);
    const sha = [...new Uint8Array(await crypto.subtle.digest("SHA-256", body))].map((b) => b.toString(16).padStart(2, "0")).join("");
    const mbps = (n * 8) / (ms * 1000);
    Object.assign(out.dataset, { status: String(res.status), bytes: String(n), sha256: sha, ms: ms.toFixed(1), mbps: mbps.toFixed(1) });
    out.className = res.ok ? "ok" : "error";
    out.textContent = `HTTP ${res.status} ${res.statusText}: ${bytes(n)} in ${ms.toFixed(0)} ms (${mbps.toFixed(1)} Mbit/s), SHA-256 ${sha}`;
    const type = res.headers.get("content-type") ?? "";
    $("body").textContent = type.startsWith("text/") || type.includes("json") ? new TextDecoder().decode(body.subarray(0, 4096)) : `(${type || "binary"}, not shown)`;
  } catch (e) {
    out.className = "error";
    out.dataset.status = "error";
    out.textContent = e instanceof Error ? e.message : String(e);
  }
  out.dataset.done = "true";
  showStatus();
};
