// wg-quick files (src/wgquick.ts): any text parses or is refused with a
// one-line ConfigError naming its line; what parses becomes a DeviceConfig,
// and its wg(8) part (stripWgQuick) parses to the same peers.
import { ConfigError, parseWgQuick, stripWgQuick, toDeviceConfig } from "../../../src/wgquick.ts";

const decoder = new TextDecoder();

export function fuzz(data: Uint8Array): void {
  const text = decoder.decode(data);
  let parsed;
  try {
    parsed = parseWgQuick(text);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    if (e.message.includes("\n") || !/^line \d+: /.test(e.message)) throw new Error(`not one line naming its line: ${JSON.stringify(e.message)}`);
    const lines = text.split("\n").length;
    if (e.line < 1 || e.line > lines + 1) throw new Error(`line ${e.line} of a ${lines}-line file`);
    return;
  }
  toDeviceConfig(parsed, (address, port) => ({ address, port }));
  const stripped = stripWgQuick(text);
  const again = parseWgQuick(stripped);
  if (again.peers.length !== parsed.peers.length) throw new Error("stripWgQuick lost a peer");
}
