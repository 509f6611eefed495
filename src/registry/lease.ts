import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { MetadataStore } from '../metadata/metadata-store.js';

/**
 * A maintenance lease: at most one garbage collection (or one upload purge)
 * at a time across every process and machine sharing the metadata store.
 * It lasts `ttlMs` and is renewed every third of that while held, so that a
 * holder that died frees it within `ttlMs`. A holder names its machine and
 * process; a lease left by a dead process of this machine is taken over at
 * once instead of waiting for it to expire.
 *
 * Limitation: the takeover trusts the host name. Two machines of the same
 * name sharing one metadata store (containers that set one) could take a
 * living holder's lease when one's process id is free on the other; the
 * lease then has two holders until the first one's next renewal fails.
 */

const defaultTtlMs = 60_000;

export type LeaseResult = { ok: true; lease: Lease } | { ok: false; holder: string };

export class Lease {
  readonly name: string;
  readonly holder: string;
  readonly #metadata: MetadataStore;
  readonly #ttlMs: number;
  readonly #timer: NodeJS.Timeout;
  #expiresAt: number;
  #lost = false;

  private constructor(metadata: MetadataStore, name: string, holder: string, ttlMs: number) {
    this.#metadata = metadata;
    this.name = name;
    this.holder = holder;
    this.#ttlMs = ttlMs;
    this.#expiresAt = Date.now() + ttlMs;
    this.#timer = setInterval(() => void this.#renew(), ttlMs / 3).unref();
  }

  /** Takes the lease, or tells who holds it. */
  static async acquire(
    metadata: MetadataStore,
    name: string,
    ttlMs = defaultTtlMs,
  ): Promise<LeaseResult> {
    const holder = `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
    const now = Date.now();
    if (await metadata.acquireLease(name, holder, now + ttlMs, { now })) {
      return { ok: true, lease: new Lease(metadata, name, holder, ttlMs) };
    }
    const current = await metadata.getLease(name);
    const replacing = current?.holder ?? '';
    if (isDeadLocalHolder(replacing)) {
      const taken = await metadata.acquireLease(name, holder, now + ttlMs, { now, replacing });
      if (taken) return { ok: true, lease: new Lease(metadata, name, holder, ttlMs) };
    }
    return { ok: false, holder: (await metadata.getLease(name))?.holder ?? replacing };
  }

  /** True once the lease may be someone else's: the holder must stop. */
  get lost(): boolean {
    return this.#lost || Date.now() >= this.#expiresAt;
  }

  /** Gives the lease up; `completed` records that the task finished now. */
  async release(completed: boolean): Promise<void> {
    clearInterval(this.#timer);
    const completedAt = completed ? Date.now() : undefined;
    await this.#metadata.releaseLease(this.name, this.holder, completedAt);
  }

  async #renew(): Promise<void> {
    const expiresAt = Date.now() + this.#ttlMs;
    try {
      if (await this.#metadata.renewLease(this.name, this.holder, expiresAt)) {
        this.#expiresAt = expiresAt;
      } else {
        this.#lost = true;
      }
    } catch {
      // The store is unreachable for now; the lease counts as lost once it expires.
    }
  }
}

/** `host/pid/nonce` of this machine, whose process is gone. */
function isDeadLocalHolder(holder: string): boolean {
  const [host, pid] = holder.split('/');
  if (host !== hostname() || pid === undefined || !/^\d+$/.test(pid)) return false;
  try {
    process.kill(Number(pid), 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
