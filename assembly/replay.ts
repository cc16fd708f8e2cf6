// PLACEHOLDER: replaced by the real RFC 6479 window.
export const REPLAY_BYTES: usize = 1032;
export function replay_reset(w: usize): void { unreachable(); }
export function replay_check(w: usize, counter: u64): bool { unreachable(); return false; }
export function replay_update(w: usize, counter: u64): bool { unreachable(); return false; }
