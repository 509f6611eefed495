/**
 * Slows down and then stops password guessing from one address: after
 * `slowAfter` failed logins within `windowMs`, each further attempt waits
 * before it is checked, twice as long each time (up to 4 s); after
 * `blockAfter` failures, attempts are refused outright (429 with
 * Retry-After) until `windowMs` has passed since the last failure.
 *
 * Limitation: the counters live in each serving thread's memory. With
 * several serving threads or instances, an address gets up to `blockAfter`
 * tries per thread before it is refused, and a restart forgets every
 * count. Sharing them would need the metadata store on every failed login.
 *
 * Limitation: the address is the TCP peer's. Behind a reverse proxy every
 * client has the proxy's address, so one client's failures block all;
 * `X-Forwarded-For` is not read, since any client could forge it.
 */

export interface ThrottleOptions {
  slowAfter: number;
  blockAfter: number;
  windowMs: number;
  /** At most this many addresses are tracked; the oldest goes first. */
  maxAddresses?: number;
}

export type ThrottleVerdict =
  { blocked: false; delayMs: number } | { blocked: true; retryAfterSeconds: number };

interface Failures {
  count: number;
  last: number;
  blockedUntil: number;
}

const maxDelayMs = 4_000;
const firstDelayMs = 250;

export class LoginThrottle {
  readonly #options: ThrottleOptions;
  readonly #addresses = new Map<string, Failures>();
  readonly #now: () => number;

  constructor(options: ThrottleOptions, now: () => number = Date.now) {
    this.#options = options;
    this.#now = now;
  }

  /** Whether an attempt from this address may be checked now, and after what pause. */
  check(address: string): ThrottleVerdict {
    const entry = this.#current(address);
    if (!entry) return { blocked: false, delayMs: 0 };
    const now = this.#now();
    if (entry.blockedUntil > now) {
      return { blocked: true, retryAfterSeconds: Math.ceil((entry.blockedUntil - now) / 1000) };
    }
    const over = entry.count - this.#options.slowAfter;
    if (over < 0) return { blocked: false, delayMs: 0 };
    return { blocked: false, delayMs: Math.min(firstDelayMs * 2 ** over, maxDelayMs) };
  }

  fail(address: string): void {
    const now = this.#now();
    const entry = this.#current(address) ?? { count: 0, last: now, blockedUntil: 0 };
    entry.count++;
    entry.last = now;
    if (entry.count >= this.#options.blockAfter) entry.blockedUntil = now + this.#options.windowMs;
    this.#addresses.delete(address);
    this.#addresses.set(address, entry);
    this.#evict();
  }

  succeed(address: string): void {
    this.#addresses.delete(address);
  }

  /** The address's failures, unless the window has passed since the last one. */
  #current(address: string): Failures | undefined {
    const entry = this.#addresses.get(address);
    if (!entry) return undefined;
    const now = this.#now();
    if (entry.blockedUntil <= now && now - entry.last >= this.#options.windowMs) {
      this.#addresses.delete(address);
      return undefined;
    }
    return entry;
  }

  #evict() {
    const max = this.#options.maxAddresses ?? 100_000;
    while (this.#addresses.size > max) {
      const oldest = this.#addresses.keys().next();
      if (oldest.done) return;
      this.#addresses.delete(oldest.value);
    }
  }
}
