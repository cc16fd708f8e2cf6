// WG_ALLOW: which destinations a gateway may reach, as the entries read it
// from their environment.

/**
 * `WG_ALLOW` as a predicate: comma-separated entries `host:port`, `host`
 * (any port) or `[v6]:port`, either part `*`. Empty or unset: undefined
 * (everything allowed).
 * @example allowList("127.0.0.1:8080, *:443, [::1]:*")
 */
export function allowList(spec: string | undefined): ((host: string, port: number) => boolean) | undefined {
  if (!spec || spec.trim() === "") return undefined;
  const rules = spec.split(",").map((r) => r.trim()).filter(Boolean).map((r) => {
    const i = r.endsWith("]") || (!r.startsWith("[") && r.indexOf(":") !== r.lastIndexOf(":")) ? -1 : r.lastIndexOf(":");
    return i < 0 ? { host: r.replace(/^\[|\]$/g, ""), port: "*" } : { host: r.slice(0, i).replace(/^\[|\]$/g, ""), port: r.slice(i + 1) };
  });
  return (host, port) => rules.some((r) => (r.host === "*" || r.host === host) && (r.port === "*" || Number(r.port) === port));
}
