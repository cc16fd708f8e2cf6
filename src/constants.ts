// Specification constants: whitepaper section 6 and wireguard-go's constants.go.
// Times are milliseconds; message counts that exceed 2^53 are BigInt.

export const REKEY_AFTER_MESSAGES = 1n << 60n;
export const REJECT_AFTER_MESSAGES = (1n << 64n) - (1n << 13n) - 1n;
export const REKEY_AFTER_TIME = 120_000;
export const REJECT_AFTER_TIME = 180_000;
export const REKEY_ATTEMPT_TIME = 90_000;
export const REKEY_TIMEOUT = 5_000;
export const REKEY_TIMEOUT_JITTER = 334; // up to 333 ms of random jitter per retry
export const KEEPALIVE_TIMEOUT = 10_000;
export const COOKIE_REFRESH_TIME = 120_000;
export const MAX_TIMER_HANDSHAKES = REKEY_ATTEMPT_TIME / REKEY_TIMEOUT; // 18
/** All key material is zeroed this long after the last session was made. */
export const ZERO_KEYS_AFTER = 3 * REJECT_AFTER_TIME;
/** The initiator rekeys on receive when its key is this old (whitepaper 6.2). */
export const REKEY_ON_RECEIVE_AGE = REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT;

// Implementation constants.
/** Under load for this long after the handshake backlog was last high. */
export const UNDER_LOAD_AFTER_TIME = 1_000;
/**
 * Packets held per peer while it has no session (128, wireguard-go's
 * QueueStagedSize): past it the oldest is dropped (drops.staged), since the
 * newest packets are what an application still waits for.
 */
export const MAX_STAGED_PACKETS = 128;
export const DEFAULT_MTU = 1420;
