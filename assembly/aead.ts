// PLACEHOLDER: replaced by the real ChaCha20-Poly1305 implementation.
export function set_simd(on: bool): void {}
export function chacha20_xor(key: usize, nonce: usize, counter: u32, p: usize, len: usize): void { unreachable(); }
export function poly1305_mac(key: usize, msg: usize, len: usize, out: usize): void { unreachable(); }
export function hchacha20(key: usize, nonce16: usize, out: usize): void { unreachable(); }
export function aead_seal(key: usize, nonce: usize, ad: usize, adLen: usize, p: usize, len: usize, tag: usize): void { unreachable(); }
export function aead_open(key: usize, nonce: usize, ad: usize, adLen: usize, p: usize, len: usize, tag: usize): bool { unreachable(); return false; }
export function xaead_seal(key: usize, nonce: usize, ad: usize, adLen: usize, p: usize, len: usize, tag: usize): void { unreachable(); }
export function xaead_open(key: usize, nonce: usize, ad: usize, adLen: usize, p: usize, len: usize, tag: usize): bool { unreachable(); return false; }
export function seal_transport(key: usize, counter: u64, p: usize, len: usize): void { unreachable(); }
export function open_transport(key: usize, counter: u64, p: usize, len: usize): bool { unreachable(); return false; }
