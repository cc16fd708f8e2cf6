// HTTP/1.1 heads (adapters/http/http1.ts) as the proxy, the server and the
// client parse them: what is refused, and what a field keeps.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { parseRequestHead, parseResponseHead } from "../../../adapters/http/http1.ts";
import { ProtocolError } from "../../../adapters/http/reader.ts";

test("fields are split at their colon and trimmed; a folded line joins the one before", () => {
  const h = parseRequestHead("GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n more\r\n");
  assert.equal(h.fields, [["Host", "example.com"], ["Accept", "*/* more"]]);
  // An empty part adds no space at either end: the value is what a rebuilt head parses back to.
  assert.equal(parseRequestHead("GET / HTTP/1.1\r\nA:\r\n x\r\nB: y\r\n \r\n").fields, [["A", "x"], ["B", "y"]]);
});

test("a bare CR or a NUL in a field is refused with a one-line ProtocolError, not passed on (found by the http-proxy fuzz target)", () => {
  for (const text of [
    "GET http://a/ HTTP/1.1\r\nX-A: 1\rX-Smuggled: 2\r\n",
    "GET http://a/ HTTP/1.1\r\nAccept: */*\r\n folded\rolded\r\n",
    "GET http://a/ HTTP/1.1\r\nX-A: a\0b\r\n",
  ]) {
    try {
      parseRequestHead(text);
      assert.unreachable(JSON.stringify(text));
    } catch (e) {
      assert.instance(e, ProtocolError);
      assert.not.match((e as Error).message, /[\r\n\0]/);
    }
  }
  assert.throws(() => parseResponseHead("HTTP/1.1 200 OK\r\nX-A: 1\rX-B: 2\r\n"), (e: unknown) => e instanceof ProtocolError);
});

test.run();
