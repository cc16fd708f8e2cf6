// Reading a wg-quick(8) config for `wg up` (and `--netstack`): from a file,
// or stdin for "-", with wg-quick's warning when the file holds a private key
// that others may read.
import type { Files, Stdio } from "../ports/host.ts";

/**
 * The config's text. Warns on stderr, as wg-quick does, when the file and
 * its folder are both open to others in some way (so another user may read
 * the private key).
 * @throws the host's error when it cannot be read (the caller words the line)
 */
export async function readConfig(rt: Files & Stdio, path: string): Promise<string> {
  if (path === "-") return await rt.readStdin();
  const text = await rt.readFile(path);
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) || "/" : ".";
  const [file, folder] = await Promise.all([rt.mode(path), rt.mode(dir)]);
  if (file !== null && folder !== null && (file & folder & 0o007) !== 0) rt.stderr(`Warning: \`${path}' is world accessible\n`);
  return text;
}

/**
 * Writes `text` to `path` as wg-quick's SaveConfig does: a new file of the
 * owner's only (0600) moved over the old, whatever mode the old one had.
 */
export async function writeConfig(rt: Files, path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`;
  await rt.remove(tmp);
  await rt.writeFile(tmp, text, 0o600);
  await rt.rename(tmp, path);
}
