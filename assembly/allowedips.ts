// PLACEHOLDER: replaced by the real trie.
export function aip_node_bytes(): u32 { return 64; }
export function aip_init(pool: usize, capacity: u32): void { unreachable(); }
export function aip_insert(v6: bool, addr: usize, cidr: u32, peer: u32): bool { unreachable(); return false; }
export function aip_remove(v6: bool, addr: usize, cidr: u32, peer: u32): bool { unreachable(); return false; }
export function aip_remove_peer(peer: u32): void { unreachable(); }
export function aip_lookup4(addr: usize): i32 { unreachable(); return -1; }
export function aip_lookup6(addr: usize): i32 { unreachable(); return -1; }
export function aip_list(peer: u32, out: usize, max: u32): u32 { unreachable(); return 0; }
export function aip_count(peer: u32): u32 { unreachable(); return 0; }
