// The `wg` command on Deno (wg.ts at the repository root runs this).
//
// Deno runs with no permissions unless given flags. Each command states what
// it needs (PERMISSIONS below, printed with the usage); before a command
// runs, a missing permission gets one line naming the flag to add, e.g.
//   wg: needs --allow-read=/etc/wireguard (reading the config)
// and exit status 1, instead of Deno's prompt or a stack trace. Anything the
// check did not foresee is caught where Deno refuses it (deno/host.ts) and
// reported the same way.
import { main } from "../cli/wg.ts";
import { resolveTarget } from "../cli/up.ts";
import { RUN_DIR } from "../cli/uapi-client.ts";
import { parseWgQuick } from "../../src/wgquick.ts";
import { denoHost, flagOf, PermissionError } from "../deno/host.ts";

type Descriptor =
  | { name: "read" | "write"; path: string }
  | { name: "run"; command?: string }
  | { name: "net"; host?: string }
  | { name: "ffi" }
  | { name: "sys"; kind: "uid" };

interface Need {
  desc: Descriptor;
  /** What it is for, as the message says it. */
  why: string;
}

/** The permissions, in flag form, each command needs: printed after the usage. */
export const PERMISSIONS = `
Deno permissions (deno run flags) by command; -A grants them all:
  genkey, genpsk, pubkey  none (with --allow-ffi, X25519 runs in libsodium or OpenSSL)
  show <interface>        --allow-read=${RUN_DIR} --allow-write=${RUN_DIR}
    showconf <interface>  --allow-net=unix:${RUN_DIR}/<interface>.sock (its socket)
  show [all|interfaces]   --allow-read=${RUN_DIR} --allow-write=${RUN_DIR} --allow-net
                          --allow-run=ls (listing ${RUN_DIR})
  set <interface> ...     as show <interface>, and --allow-read=<file> for private-key and
                          preshared-key files, --allow-net for endpoint host names
  up <config>             --allow-read=<config dir>,${RUN_DIR} --allow-write=${RUN_DIR}
                          --allow-run=ip --allow-net --allow-ffi --allow-sys=uid; with hooks
                          or DNS also --allow-run=sh (and resolvconf), with a default route
                          --allow-write=/proc/sys/net/ipv4/conf/all/src_valid_mark
  down <interface>        as show <interface>, and --allow-run (to signal the process)
  relay ...               --allow-net, and --allow-read=<file> for --token-file, --cert and --key
`;

const TUN_WHY = "the TUN device, through libc";
const dirOf = (p: string) => (p.includes("/") ? p.slice(0, p.lastIndexOf("/")) || "/" : ".");
/** A unix socket needs read, write and (since Deno 2.?) net permission: `unix:PATH`, one path per flag value. */
const socketNeeds = (name?: string): Need[] => [
  { desc: { name: "read", path: RUN_DIR }, why: "the interface's socket" },
  { desc: { name: "write", path: RUN_DIR }, why: "the interface's socket" },
  { desc: name === undefined || name.includes("/") ? { name: "net" } : { name: "net", host: `unix:${RUN_DIR}/${name}.sock` }, why: "the interface's socket" },
];
const isLiteral = (h: string) => /^[0-9.]+$/.test(h) || h.includes(":");

/** What `wg <args>` needs before it can run (nothing when the command will only print its usage). */
async function needs(args: string[]): Promise<Need[]> {
  const [cmd, ...rest] = args;
  if (rest.includes("--help") || rest.includes("-h")) return []; // a command's usage needs nothing
  switch (cmd) {
    case "show": {
      if (rest.length > 2) return [];
      const all = rest.length === 0 || rest[0] === "all" || rest[0] === "interfaces";
      return [...socketNeeds(all ? undefined : rest[0]), ...(all ? [{ desc: { name: "run", command: "ls" }, why: `listing ${RUN_DIR}` } as Need] : [])];
    }
    case "showconf":
      return rest.length === 1 ? socketNeeds(rest[0]) : [];
    case "set": {
      if (rest.length < 2) return [];
      const n = socketNeeds(rest[0]);
      for (let i = 1; i + 1 < rest.length; i++) {
        if (rest[i] === "private-key" || rest[i] === "preshared-key") n.push({ desc: { name: "read", path: rest[i + 1] }, why: `reading the ${rest[i]} file` });
        if (rest[i] === "endpoint") {
          const host = rest[i + 1].startsWith("[") ? rest[i + 1].slice(1, rest[i + 1].indexOf("]")) : rest[i + 1].replace(/:[^:]*$/, "");
          if (!isLiteral(host)) n.push({ desc: { name: "net" }, why: `resolving ${host}` });
        }
      }
      return n;
    }
    case "up": {
      const target = rest.find((a) => !a.startsWith("--"));
      if (target === undefined || rest.length > 2) return [];
      let path: string;
      try {
        path = resolveTarget(target).path;
      } catch {
        return []; // the command itself says what is wrong with the name
      }
      const n: Need[] = [];
      let defaultRoute = false, dns = false, hooks = false;
      if (path !== "-") {
        n.push({ desc: { name: "read", path }, why: "reading the config" });
        if (Deno.permissions.querySync({ name: "read", path }).state === "granted") {
          try {
            const c = parseWgQuick(await Deno.readTextFile(path));
            defaultRoute = (c.interface.table ?? "auto") === "auto" && c.peers.some((p) => p.allowedIps.some((a) => /\/0$/.test(a.trim())));
            dns = c.interface.dns.length + c.interface.dnsSearch.length > 0;
            hooks = c.interface.preUp.length + c.interface.postUp.length + c.interface.preDown.length + c.interface.postDown.length > 0;
          } catch { /* the command reports it */ }
        }
      }
      if (rest.includes("--netstack")) {
        // No TUN, no root, no ip(8): the network and (for a file) reading it.
        // The UAPI socket is served only when /var/run/wireguard is writable.
        n.push({ desc: { name: "net" }, why: "the UDP socket and the proxies" });
        return n;
      }
      n.push(
        { desc: { name: "read", path: RUN_DIR }, why: "the interface's socket and pid file" },
        { desc: { name: "write", path: RUN_DIR }, why: "the interface's socket and pid file" },
        { desc: { name: "run", command: "ip" }, why: "running ip" },
        { desc: { name: "net" }, why: "the UDP socket" },
        { desc: { name: "ffi" }, why: TUN_WHY },
        { desc: { name: "sys", kind: "uid" }, why: "checking for root" },
      );
      if (hooks || dns || path === "-") n.push({ desc: { name: "run", command: "sh" }, why: "running the hooks through sh" });
      if (dns) n.push({ desc: { name: "run", command: "resolvconf" }, why: "setting DNS" });
      if (defaultRoute) n.push({ desc: { name: "write", path: "/proc/sys/net/ipv4/conf/all/src_valid_mark" }, why: "policy routing of the default route" });
      return n;
    }
    case "down": {
      if (rest.length !== 1) return [];
      const a = rest[0];
      const name = a.includes("/") || a.endsWith(".conf") ? a.slice(a.lastIndexOf("/") + 1).replace(/\.conf$/, "") : a;
      return [
        ...socketNeeds(name),
        { desc: { name: "run" }, why: "signalling the process that runs the interface" },
      ];
    }
    case "relay": {
      const n: Need[] = [{ desc: { name: "net" }, why: "the relay's sockets" }];
      const i = rest.findIndex((a) => a === "--token-file" || a.startsWith("--token-file="));
      const file = i < 0 ? undefined : rest[i].includes("=") ? rest[i].slice(rest[i].indexOf("=") + 1) : rest[i + 1];
      if (file) n.push({ desc: { name: "read", path: file }, why: "reading the token file" });
      for (const flag of ["--cert", "--key"]) {
        const j = rest.findIndex((a) => a === flag || a.startsWith(`${flag}=`));
        const f = j < 0 ? undefined : rest[j].includes("=") ? rest[j].slice(rest[j].indexOf("=") + 1) : rest[j + 1];
        if (f) n.push({ desc: { name: "read", path: f }, why: `reading the ${flag.slice(2)} file` });
      }
      return n;
    }
    default:
      return []; // genkey, genpsk, pubkey, help, version, and what the command rejects
  }
}

/** The value a flag needs for a descriptor: the config's folder rather than the file. */
function flagValue(n: Need): string | null {
  const d = n.desc;
  if (d.name === "read" || d.name === "write") return n.why === "reading the config" ? dirOf(d.path) : d.path;
  if (d.name === "run") return d.command ?? null;
  if (d.name === "sys") return d.kind;
  if (d.name === "net") return d.host ?? null;
  return null;
}

/**
 * One line naming every missing flag: `wg: needs --allow-read=/etc/wireguard (reading the config)`,
 * or for several `wg: needs --allow-read=... --allow-ffi (reading the config; the TUN device, through libc)`.
 */
function missing(list: Need[]): string | null {
  const byFlag = new Map<string, { values: string[]; all: boolean }>();
  const whys: string[] = [];
  for (const n of list) {
    if (Deno.permissions.querySync(n.desc as Deno.PermissionDescriptor).state === "granted") continue;
    const flag = `--allow-${n.desc.name}`;
    const e = byFlag.get(flag) ?? { values: [], all: false };
    byFlag.set(flag, e);
    const v = flagValue(n);
    if (v === null) e.all = true;
    else if (!e.values.includes(v)) e.values.push(v);
    if (!whys.includes(n.why)) whys.push(n.why);
  }
  if (byFlag.size === 0) return null;
  const flags = [...byFlag].map(([flag, e]) => `${flag}${e.all ? "" : `=${e.values.join(",")}`}`);
  // Without FFI there is no TUN device, but the userspace stack needs none.
  const tun = byFlag.has("--allow-ffi") && whys.includes(TUN_WHY) ? "; or wg up --netstack, which needs only --allow-net" : "";
  return `wg: needs ${flags.join(" ")} (${whys.join("; ")})${flags.length > 2 ? "; -A grants all" : ""}${tun}\n`;
}

const write = (t: string) => {
  let b = new TextEncoder().encode(t);
  while (b.length) b = b.subarray(Deno.stderr.writeSync(b));
};

/**
 * Runs `wg <args>` on Deno.
 * @returns the exit code
 */
export async function run(args: string[]): Promise<number> {
  try {
    if (args.length === 0 || (args.length === 1 && ["help", "--help", "-h"].includes(args[0]))) {
      // Bare `deno run wg.ts` prints the usage (wg(8) would show interfaces,
      // which needs permissions the bare command does not have).
      const code = await main(denoHost(["--help"]));
      let b = new TextEncoder().encode(PERMISSIONS);
      while (b.length) b = b.subarray(Deno.stdout.writeSync(b));
      return code;
    }
    const line = missing(await needs(args));
    if (line !== null) {
      write(line);
      return 1;
    }
    return await main(denoHost(args));
  } catch (e) {
    // main reports its own errors; this catches what escapes it (and the checks above).
    const flag = flagOf(e);
    if (e instanceof PermissionError) write(`wg: ${e.message}\n`);
    else if (flag !== null) write(`wg: needs ${flag}\n`);
    else if (e instanceof Deno.errors.PermissionDenied) write(`wg: permission denied: ${e.message} (run as root?)\n`);
    else write(`wg: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}
