// `wg up CONFIG`: what wg-quick(8) up does, with this engine as the
// interface. Stays in the foreground until SIGINT/SIGTERM, `wg down NAME`, or
// the interface is deleted, then removes what it set up.
import { Engine } from "../../src/engine.ts";
import type { Endpoint } from "../../src/engine.ts";
import { parseWgQuick, toDeviceConfig, type WgQuickConfig } from "../../src/wgquick.ts";
import { parsePrefix, maskPrefix, formatPrefix } from "../../src/ip.ts";
import { Device } from "../ports/device.ts";
import { namedEndpoints, watchDevice } from "../ports/reresolve.ts";
import { checkRelayRoute, openRelayBind, parseRelayUrl, relayEndpoint } from "./relay-bind.ts";
import { serveUapi } from "../ports/uapi-server.ts";
import { readConfig, writeConfig } from "./config-file.ts";
import { upNetstack } from "./up-netstack.ts";
import type { Limits } from "../tunnel/tunnel.ts";
import { formatShowConf } from "../../src/show.ts";
import { NoTunError, UserError } from "../ports/errors.ts";
import type { Host } from "../ports/host.ts";
import { OFFLOAD_ENV, offloadsOff } from "../../src/offload.ts";

export const RUN_DIR = "/var/run/wireguard";

/** A failure to report as one line. */
export class UpError extends UserError {}

/** The interface name and config path for `wg up TARGET` (a path, or NAME for /etc/wireguard/NAME.conf). */
export function resolveTarget(target: string): { name: string; path: string } {
  let path = target, name: string;
  if (target === "-") return { name: "wg0", path: "-" };
  if (!target.includes("/") && !target.endsWith(".conf")) {
    name = target;
    path = `/etc/wireguard/${target}.conf`;
  } else {
    name = target.slice(target.lastIndexOf("/") + 1).replace(/\.conf$/, "");
  }
  if (!/^[a-zA-Z0-9_=+.-]{1,15}$/.test(name)) {
    throw new UpError(`'${target}': the interface is named after the file, and '${name}' is not a valid interface name (1-15 of a-z A-Z 0-9 _ = + . -)`);
  }
  return { name, path };
}

/**
 * @param opts.noOffload no TUN offloads (as WG_OFFLOAD=off does), for comparison or a kernel that misbehaves
 * @param opts.limits the engine's bounds (peers, AllowedIPs prefixes)
 */
export async function up(rt: Host, target: string, opts: { netstack?: boolean; noOffload?: boolean; limits?: Limits; relay?: string } = {}): Promise<number> {
  const relay = opts.relay !== undefined ? parseRelayUrl(opts.relay) : null;
  if (opts.netstack) {
    // The userspace TCP/IP stack as the tunnel's inside: no TUN, no root (up-netstack.ts).
    const t = resolveTarget(target);
    return upNetstack(rt, t.name, t.path, RUN_DIR, opts.limits, relay);
  }
  const { name, path } = resolveTarget(target);
  const log = (cmd: string) => rt.stderr(`[#] ${cmd}\n`);
  // Signals are ours from the start: one that arrives while setting up ends
  // the run as soon as setup finishes, with everything removed again.
  let stop: (why: string) => void = () => {};
  const stopped = new Promise<string>((resolve) => { stop = resolve; });
  rt.onSignal((signal) => stop(signal));

  // A host without TUN devices says so before anything else, and names --netstack.
  if (!rt.tunDevices) throw new NoTunError("it cannot open TUN devices");
  const tuns = await rt.tunDevices();
  if (!rt.isRoot()) {
    throw new UpError(`up needs root (CAP_NET_ADMIN) to create interface ${name} and set its addresses and routes; try: sudo ${rt.command} up ${target}`);
  }
  let text: string;
  try {
    text = await readConfig(rt, path);
  } catch (e) {
    throw new UpError(`cannot read ${path}: ${(e as Error).message.replace(/^.*?: /, "")}`);
  }
  let conf: WgQuickConfig;
  try {
    conf = parseWgQuick(text);
  } catch (e) {
    throw new UpError(`${path}: ${(e as Error).message}`);
  }
  // wireproxy's sections are served by the userspace stack only: refused here rather than ignored.
  if (conf.extra.length > 0) {
    const x = conf.extra[0];
    throw new UpError(`${path}: line ${x.line}: [${x.name}] runs with wg up --netstack (the proxies and forwards are the userspace stack's)`);
  }
  if (relay) await checkRelayRoute(rt, relay, conf.peers, path);
  const ipr = async (...argv: string[]): Promise<{ code: number; stderr: string }> => {
    log(["ip", ...argv].join(" "));
    const r = await rt.run(["ip", ...argv]);
    if (r.code === 127) throw new UpError("iproute2's 'ip' command is needed (apt-get install iproute2)");
    return r;
  };
  if ((await rt.run(["ip", "link", "show", "dev", name])).code === 0) {
    throw new UpError(`interface '${name}' already exists`);
  }
  const table = conf.interface.table ?? "auto";
  const routes: string[] = [];
  for (const peer of conf.peers) {
    for (const a of peer.allowedIps) routes.push(formatPrefix(maskPrefix(parsePrefix(a))));
  }
  if (conf.interface.dns.length > 0 || conf.interface.dnsSearch.length > 0) {
    if ((await rt.run(["sh", "-c", "command -v resolvconf"])).code !== 0) {
      throw new UpError(`${path}: DNS is set, and setting it needs resolvconf (apt-get install openresolv), which is not installed`);
    }
  }

  // Endpoints may be host names: resolve them before anything is created.
  const endpoints = new Map<string, Endpoint>();
  for (const peer of conf.peers) {
    if (!peer.endpoint) continue;
    const key = `${peer.endpoint.host}:${peer.endpoint.port}`;
    // Through a relay a name is the relay's to resolve: its network is the one that reaches the peer.
    if (relay) { endpoints.set(key, relayEndpoint(peer.endpoint.host, peer.endpoint.port)); continue; }
    try {
      endpoints.set(key, await rt.resolve(peer.endpoint.host, peer.endpoint.port));
    } catch {
      throw new UpError(`${path}: line ${peer.line}: cannot resolve Endpoint host '${peer.endpoint.host}'`);
    }
  }

  const hooks = async (list: string[]) => {
    for (const h of list) {
      const cmd = h.replaceAll("%i", name);
      log(cmd);
      const code = await rt.shell(cmd);
      if (code !== 0) throw new UpError(`hook failed with status ${code}: ${cmd}`);
    }
  };

  const cleanups: (() => Promise<void> | void)[] = [];
  const cleanup = async () => {
    while (cleanups.length) {
      try { await cleanups.pop()!(); } catch { /* best effort: keep removing the rest */ }
    }
  };
  try {
    await hooks(conf.interface.preUp);
    const mtu = conf.interface.mtu ?? 1420;
    const offload = !opts.noOffload && !offloadsOff(rt.env(OFFLOAD_ENV));
    const engine = new Engine({ wasm: await rt.wasm(), x25519: rt.x25519, epoch: rt.epoch, mtu, offload, ...opts.limits });
    const tun = await tuns.openTun(name, mtu, { offload });
    cleanups.push(() => tun.close());

    const bind = relay ? await openRelayBind(rt, relay, (l) => rt.stderr(`[#] ${l}\n`))
      : await rt.openBind(conf.interface.listenPort ?? 0, engine.maxDatagram, { offload });
    cleanups.push(() => bind.close());
    const device = new Device(engine, tun, bind, rt.clock);
    const config = toDeviceConfig(conf, (host, port) => endpoints.get(`${host}:${port}`)!);
    config.listenPort = bind.port;
    device.apply(engine.set(config, rt.clock.now()));
    device.start();
    const offloads = [tun.offloads, bind.offloads].filter((o) => o !== undefined);
    if (offloads.length > 0) rt.stderr(`offloads: ${offloads.join(", ")}\n`);
    cleanups.pop(); cleanups.pop();
    cleanups.push(() => device.close());

    // The userspace API, so the stock wg(8) works against this interface.
    cleanups.push(await serveUapi(rt, RUN_DIR, name, engine, device));
    // Endpoints given as names follow their name when handshakes go unanswered.
    if (!relay) cleanups.push(watchDevice(device, rt.clock, namedEndpoints(conf.peers), (h, p) => rt.resolve(h, p), (l) => rt.stderr(`[#] ${l}\n`)));

    // A default route goes into its own table, with rules that send everything
    // there except our own (fwmark-ed) datagrams: wg-quick's policy routing.
    let mark = 0;
    const defaultRoute = async (family: string, route: string) => {
      if (mark === 0) {
        mark = conf.interface.fwmark || 51820;
        device.bind.setMark?.(mark);
        engine.fwmark = mark;
      }
      const t = String(mark);
      let q = await ipr(family, "route", "add", route, "dev", name, "table", t);
      if (q.code !== 0) throw new UpError(`cannot add route ${route}: ${q.stderr.trim()}`);
      q = await ipr(family, "rule", "add", "not", "fwmark", t, "table", t);
      if (q.code !== 0) throw new UpError(`cannot add routing rule: ${q.stderr.trim()}`);
      cleanups.push(async () => { await ipr(family, "rule", "delete", "table", t); });
      q = await ipr(family, "rule", "add", "table", "main", "suppress_prefixlength", "0");
      if (q.code !== 0) throw new UpError(`cannot add routing rule: ${q.stderr.trim()}`);
      cleanups.push(async () => { await ipr(family, "rule", "delete", "table", "main", "suppress_prefixlength", "0"); });
      if (family === "-4") {
        log("sysctl -q net.ipv4.conf.all.src_valid_mark=1");
        await rt.writeFile("/proc/sys/net/ipv4/conf/all/src_valid_mark", "1\n", 0o644).catch(() => {});
      }
    };

    // Addresses, MTU, routes, DNS: as wg-quick does them.
    for (const a of conf.interface.addresses) {
      const r = await ipr(a.family === 6 ? "-6" : "-4", "address", "add", `${a.address}/${a.cidr}`, "dev", name);
      if (r.code !== 0) throw new UpError(`cannot add address ${a.address}/${a.cidr}: ${r.stderr.trim()}`);
    }
    let r = await ipr("link", "set", "mtu", String(mtu), "up", "dev", name);
    if (r.code !== 0) throw new UpError(`cannot bring ${name} up: ${r.stderr.trim()}`);
    if (table !== "off") {
      // Most specific first, as wg-quick sorts them.
      const sorted = [...new Set(routes)].sort((x, y) => Number(y.split("/")[1]) - Number(x.split("/")[1]));
      for (const route of sorted) {
        const family = route.includes(":") ? "-6" : "-4";
        if (route.endsWith("/0") && table === "auto") {
          await defaultRoute(family, route);
          continue;
        }
        const argv = [family, "route", "add", route, "dev", name];
        if (table !== "auto") argv.push("table", String(table));
        r = await ipr(...argv);
        if (r.code !== 0 && !/File exists/.test(r.stderr)) throw new UpError(`cannot add route ${route}: ${r.stderr.trim()}`);
      }
    }
    if (conf.interface.dns.length > 0 || conf.interface.dnsSearch.length > 0) {
      const body = conf.interface.dns.map((d) => `nameserver ${d}\n`).join("") +
        (conf.interface.dnsSearch.length ? `search ${conf.interface.dnsSearch.join(" ")}\n` : "");
      log(`resolvconf -a tun.${name} -m 0 -x`);
      const d = await rt.run(["resolvconf", "-a", `tun.${name}`, "-m", "0", "-x"], body);
      if (d.code !== 0) throw new UpError(`resolvconf failed: ${d.stderr.trim()}`);
      cleanups.push(async () => { log(`resolvconf -d tun.${name} -f`); await rt.run(["resolvconf", "-d", `tun.${name}`, "-f"]); });
    }
    await hooks(conf.interface.postUp);

    // Foreground until asked to stop.
    tun.onGone?.(() => stop("interface removed"));
    const signal = await stopped;
    rt.stderr(`[#] ${signal}: taking ${name} down\n`);
    await hooks(conf.interface.preDown).catch((e) => rt.stderr(`wg: ${(e as Error).message}\n`));
    if (conf.interface.saveConfig && path !== "-") {
      await saveConfig(rt, path, conf, engine).catch((e) => rt.stderr(`wg: SaveConfig: cannot write ${path}: ${(e as Error).message}\n`));
    }
    await cleanup();
    await hooks(conf.interface.postDown).catch((e) => rt.stderr(`wg: ${(e as Error).message}\n`));
    return 0;
  } catch (e) {
    await cleanup();
    throw e;
  }
}

/**
 * SaveConfig = true: writes the running configuration back, as wg-quick's
 * save_config does: the wg-quick [Interface] keys from the file, then what
 * the engine holds now (keys, port, peers as `wg showconf` prints them).
 */
async function saveConfig(rt: Host, path: string, conf: WgQuickConfig, engine: Engine): Promise<void> {
  const i = conf.interface;
  let head = "[Interface]\n";
  for (const a of i.addresses) head += `Address = ${a.address}/${a.cidr}\n`;
  if (i.dns.length || i.dnsSearch.length) head += `DNS = ${[...i.dns, ...i.dnsSearch].join(", ")}\n`;
  if (i.mtu !== undefined) head += `MTU = ${i.mtu}\n`;
  if (i.table !== undefined) head += `Table = ${i.table}\n`;
  for (const [k, list] of [["PreUp", i.preUp], ["PostUp", i.postUp], ["PreDown", i.preDown], ["PostDown", i.postDown]] as const) {
    for (const h of list) head += `${k} = ${h}\n`;
  }
  head += "SaveConfig = true\n";
  const body = formatShowConf("", engine.status()).replace(/^\[Interface\]\n/, "");
  rt.stderr(`[#] wg showconf > ${path}\n`);
  await writeConfig(rt, path, head + body);
}
