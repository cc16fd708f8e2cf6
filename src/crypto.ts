// Interfaces through which the protocol code reaches its primitives, so each
// runtime can hand in its fastest implementation (see adapters/).

/** ChaCha20-Poly1305 (RFC 8439) and XChaCha20-Poly1305, writing into caller buffers. */
export interface Aead {
  /** Encrypts `plaintext` into `out` (plaintext.length + 16 bytes: ciphertext then tag). `nonce` is 12 bytes. */
  seal(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array, out: Uint8Array): void;
  /** Verifies and decrypts `sealed` (ciphertext then 16-byte tag) into `out` (sealed.length - 16 bytes). False if the tag is wrong; `out` is then untouched. */
  open(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, sealed: Uint8Array, out: Uint8Array): boolean;
  /** XChaCha20-Poly1305 seal, `nonce` is 24 bytes. */
  xseal(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array, out: Uint8Array): void;
  /** XChaCha20-Poly1305 open, `nonce` is 24 bytes. */
  xopen(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, sealed: Uint8Array, out: Uint8Array): boolean;
}
