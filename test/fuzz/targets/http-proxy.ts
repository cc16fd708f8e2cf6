// The HTTP proxy's request parsing, the synchronous part of it: the head
// (adapters/http/http1.ts parseRequestHead, as serveHttpProxy calls it on
// StreamReader.head's text), a CONNECT target (parseAuthority), the body's
// framing, and the Connection tokens that decide what is hop-by-hop.
// (serveHttpProxy itself reads through streams, whose promise jobs a
// synchronous Jazzer.js target never lets run.)
//
// Defects: an exception other than ProtocolError; a parsed head whose
// method or field names are not tokens, whose values hold CR or LF, or
// whose version is not HTTP/1.x; an authority with a port outside 1-65535
// or a host with a colon outside brackets; a head rebuilt from the parsed
// one that does not parse back to the same request.
import { ProtocolError, latin1 } from "../../../adapters/http/reader.ts";
import { TOKEN, connectionTokens, isHopByHop, parseRequestHead, requestFraming } from "../../../adapters/http/http1.ts";
import { parseAuthority } from "../../../adapters/proxy/http-proxy.ts";

export function fuzz(data: Uint8Array): void {
  // StreamReader.head gives the text up to the blank line, its last CRLF kept.
  let text = latin1(data);
  const end = text.indexOf("\r\n\r\n");
  if (end >= 0) text = text.slice(0, end + 2);
  let head;
  try {
    head = parseRequestHead(text);
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
    if (e.message.includes("\n")) throw new Error(`not one line: ${JSON.stringify(e.message)}`);
    return;
  }
  if (!TOKEN.test(head.method) || !/^HTTP\/1\.[01]$/.test(head.version) || /\s/.test(head.target)) throw new Error(`request line ${JSON.stringify(head)}`);
  for (const [k, v] of head.fields) {
    if (!TOKEN.test(k)) throw new Error(`field name ${JSON.stringify(k)}`);
    if (/[\r\n]/.test(v)) throw new Error(`field value with CR or LF: ${JSON.stringify(v)}`);
  }
  try {
    const f = requestFraming(head);
    if (f.kind === "length" && !(Number.isSafeInteger(f.length) && f.length >= 0)) throw new Error(`Content-Length ${f.length}`);
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
  }
  if (head.method === "CONNECT") {
    const hp = parseAuthority(head.target);
    if (hp !== null) {
      const [host, port] = hp;
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`port ${port}`);
      if (host.length === 0 || (host.includes(":") && !head.target.startsWith("["))) throw new Error(`host ${JSON.stringify(host)}`);
    }
  }
  // What forward() sends on: the head without its hop-by-hop fields parses back to the same request.
  const hop = connectionTokens(head.fields);
  let out = `${head.method} ${head.target} ${head.version}\r\n`;
  const kept = head.fields.filter(([k]) => !isHopByHop(k, hop));
  for (const [k, v] of kept) out += `${k}: ${v}\r\n`;
  const again = parseRequestHead(out);
  if (again.method !== head.method || again.target !== head.target || again.fields.length !== kept.length) throw new Error(`rebuilt head differs: ${JSON.stringify(out)}`);
  for (let i = 0; i < kept.length; i++) {
    if (again.fields[i][0] !== kept[i][0] || again.fields[i][1] !== kept[i][1]) throw new Error(`field ${i} differs after rebuilding: ${JSON.stringify(out)}`);
  }
}
