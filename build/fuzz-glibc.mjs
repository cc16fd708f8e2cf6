// Jazzer.js 4 ships its libFuzzer addon prebuilt against glibc 2.38 and
// libstdc++ 13 (GLIBCXX_3.4.32); Debian 12 has glibc 2.36 and libstdc++ 12.
// The addon asks three things of the newer libraries: the C23 strtol and
// strtoul (which differ from the old ones only in reading a "0b" prefix,
// which libFuzzer's flags never use) and std::ios_base_library_init (a
// reference GCC 13 emits so that the library initialises iostreams, never
// called). On such a host the addon's copy in node_modules is edited once,
// in its dynamic symbol table: the two calls bound to the plain strtol and
// strtoul, the reference made weak, and the two version needs made weak so
// the loader does not insist on them. Any other failure is reported as it is.
import { readFileSync, writeFileSync } from "node:fs";

const RENAME = { __isoc23_strtol: "strtol", __isoc23_strtoul: "strtoul" };
const WEAKEN = new Set(["_ZSt21ios_base_library_initv"]);
const MISSING = /version `(GLIBC_2\.3[89]|GLIBC_2\.4\d|GLIBCXX_3\.4\.3[0-9])' not found/;

/**
 * Loads @jazzer.js/fuzzer's addon, editing it first on a host whose glibc
 * or libstdc++ is older than its prebuild's. Throws if it still cannot load.
 */
export async function loadableFuzzer(require, log) {
  try {
    require("@jazzer.js/fuzzer");
    return;
  } catch (e) {
    const m = MISSING.exec(e.message);
    const file = /required by (\S+\.node)\)/.exec(e.message)?.[1];
    if (!m || !file) throw new Error(`@jazzer.js/fuzzer does not load: ${e.message.split("\n")[0]}`);
    const changed = patchElf(file);
    log(`the prebuilt libFuzzer addon wants ${m[1]}; bound ${changed.join(", ")} to this host's libraries (${file})`);
  }
  for (const k of Object.keys(require.cache)) if (k.includes("@jazzer.js")) delete require.cache[k];
  try {
    require("@jazzer.js/fuzzer");
  } catch (e) {
    throw new Error(`@jazzer.js/fuzzer does not load even after binding it to this host's libraries: ${e.message.split("\n")[0]}`);
  }
}

/** Edits an ELF64 little-endian shared object in place; returns what it changed. */
export function patchElf(file) {
  const b = readFileSync(file);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const u16 = (o) => dv.getUint16(o, true), u32 = (o) => dv.getUint32(o, true), u64 = (o) => Number(dv.getBigUint64(o, true));
  if (u32(0) !== 0x464c457f || b[4] !== 2 || b[5] !== 1) throw new Error(`${file}: not a 64-bit little-endian ELF file`);
  const cstr = (at) => b.toString("latin1", at, b.indexOf(0, at));
  const shoff = u64(0x28), shentsize = u16(0x3a), shnum = u16(0x3c), shstrndx = u16(0x3e);
  const sections = Array.from({ length: shnum }, (_, i) => {
    const o = shoff + i * shentsize;
    return { nameOff: u32(o), off: u64(o + 0x18), size: u64(o + 0x20) };
  });
  const byName = (n) => sections.find((s) => cstr(sections[shstrndx].off + s.nameOff) === n);
  const dynsym = byName(".dynsym"), dynstr = byName(".dynstr"), versym = byName(".gnu.version"), verneed = byName(".gnu.version_r");
  if (!dynsym || !dynstr || !versym || !verneed) throw new Error(`${file}: no dynamic symbol versions to edit`);

  const changed = [];
  const weakVersions = new Set();
  for (let i = 0; i < dynsym.size / 24; i++) {
    const sym = dynsym.off + i * 24, nameAt = dynstr.off + u32(sym), name = cstr(nameAt);
    const ver = versym.off + 2 * i;
    if (RENAME[name]) {
      // The new name is shorter: written over the old one, NUL-padded.
      b.fill(0, nameAt, nameAt + name.length);
      b.write(RENAME[name], nameAt, "latin1");
    } else if (WEAKEN.has(name)) {
      b[sym + 4] = (2 /* STB_WEAK */ << 4) | (b[sym + 4] & 0xf);
    } else continue;
    weakVersions.add(u16(ver));
    dv.setUint16(ver, 1 /* VER_NDX_GLOBAL: any version */, true);
    changed.push(name);
  }
  // Each needed version the edited symbols used is marked VER_FLG_WEAK.
  for (let need = verneed.off; ;) {
    const count = u16(need + 2), next = u32(need + 12);
    for (let aux = need + u32(need + 8), j = 0; j < count; j++) {
      if (weakVersions.has(u16(aux + 6))) dv.setUint16(aux + 4, u16(aux + 4) | 2, true);
      if (u32(aux + 12) === 0) break;
      aux += u32(aux + 12);
    }
    if (next === 0) break;
    need += next;
  }
  writeFileSync(file, b);
  return changed;
}
