// `npm run bench`'s netstack figure: HTTP downloads and uploads through
// `wg up --netstack`'s SOCKS5 proxy (curl --socks5), against the same
// transfers through `wg up` with a TUN device as the baseline, in one run and
// one namespace layout: wireguard-go in namespace a serves HTTP on its tunnel
// addresses; both of ours run in namespace b. "down": b downloads; "up": b
// uploads. Needs root and the tools test/_netns.ts names, and curl.
import { spawnSync } from "node:child_process";
import { CLI, Layout, OUTER, keypair, poll, run, unavailable, wgQuickConf } from "../helpers/netns.ts";

const BYTES = 64 << 20;
const SOCKS = 1080;

type Emit = (o: Record<string, unknown>) => void;

/** An HTTP server: GET /big streams BYTES bytes, POST /upload counts and discards. */
const SERVER_JS = `
import http from "node:http";
const block = Buffer.alloc(1 << 16, 0x5a);
http.createServer((req, res) => {
  if (req.url === "/big") {
    res.writeHead(200, { "content-length": ${BYTES} });
    let left = ${BYTES};
    const more = () => { while (left > 0) { const n = Math.min(left, block.length); left -= n; if (!res.write(n === block.length ? block : block.subarray(0, n))) return res.once("drain", more); } res.end(); };
    more();
    return;
  }
  let n = 0;
  req.on("data", (d) => { n += d.length; });
  req.on("end", () => res.end(String(n)));
}).listen(8080, "0.0.0.0", () => console.log("ready"));
`;

/** curl's measured rate in Mbit/s for a download or an upload, through a SOCKS5 proxy or not. */
async function curl(ns: string, url: string, o: { upload?: string; socks?: string }): Promise<number> {
  const argv = ["curl", "-sS", "--max-time", "60", "-o", "/dev/null", "-w", o.upload ? "%{speed_upload}" : "%{speed_download}"];
  if (o.socks) argv.push("--socks5", o.socks);
  if (o.upload) argv.push("--data-binary", `@${o.upload}`, "-H", "content-type: application/octet-stream");
  argv.push(url);
  const r = await run(argv, { ns, timeout: 70_000 });
  if (r.code !== 0) throw new Error(`curl ${url}: exit ${r.code}: ${r.stderr.trim()}`);
  return (Number(r.stdout) * 8) / 1e6;
}

export async function benchNetstack(emit: Emit): Promise<void> {
  const why = unavailable() ?? (spawnSync("curl", ["--version"]).status === 0 ? null : "curl is not installed");
  if (why !== null) {
    emit({ bench: "netstack", notRun: why });
    return;
  }
  const L = await Layout.create(`wgn-${process.pid}`);
  try {
    const server = L.spawn(L.a, [process.execPath, L.file("server.mjs", SERVER_JS)]);
    await poll("the HTTP server", () => server.output().includes("ready") || !server.running, 5000);
    const upload = L.file("upload.bin", "");
    spawnSync("truncate", ["-s", String(BYTES), upload]);

    // 10.86.0.0/24: wireguard-go <-> ours with a TUN; 10.87.0.0/24: wireguard-go <-> ours --netstack.
    const tunnels = { tun: { net: "10.86.0", port: 51860 }, netstack: { net: "10.87.0", port: 51870 } };
    for (const [kind, t] of Object.entries(tunnels)) {
      const A = keypair(), B = keypair();
      await L.wireguardGo(L.a, L.name("a"), {
        priv: A.priv, listenPort: t.port, addresses: [`${t.net}.1/24`], peers: [{ pub: B.pub, allowedIps: [`${t.net}.2/32`] }],
      });
      const conf = wgQuickConf({
        priv: B.priv, listenPort: t.port + 1, addresses: [`${t.net}.2/24`],
        peers: [{ pub: A.pub, allowedIps: [`${t.net}.0/24`], endpoint: `${OUTER.a4}:${t.port}` }],
      });
      const name = L.name("b");
      if (kind === "tun") {
        await L.ours(L.b, name, conf);
      } else {
        const path = L.file(`${name}.conf`, `${conf}\n[Socks5]\nBindAddress = 127.0.0.1:${SOCKS}\n`);
        const p = L.spawn(L.b, [process.execPath, CLI, "up", "--netstack", path]);
        await poll("the SOCKS5 proxy", async () => !p.running ||
          (await run(["curl", "-sS", "--max-time", "3", "--socks5", `127.0.0.1:${SOCKS}`, "-o", "/dev/null", `http://${t.net}.1:8080/small`], { ns: L.b })).code === 0, 15_000, 200);
        if (!p.running) throw new Error(`wg up --netstack exited: ${p.output()}`);
      }
    }
    const url = (t: { net: string }, path: string) => `http://${t.net}.1:8080${path}`;
    for (const dir of ["down", "up"] as const) {
      const up = dir === "up" ? upload : undefined;
      const base = await curl(L.b, url(tunnels.tun, dir === "up" ? "/upload" : "/big"), { upload: up });
      const ns = await curl(L.b, url(tunnels.netstack, dir === "up" ? "/upload" : "/big"), { upload: up, socks: `127.0.0.1:${SOCKS}` });
      emit({ bench: "netstack", dir, Mbps: ns, baselineMbps: base, ratio: ns / base, target: 0.5 });
    }
  } finally {
    await L.destroy();
  }
}
