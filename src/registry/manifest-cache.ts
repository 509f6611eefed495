/**
 * Manifest bytes by digest, kept in memory for the hot pull path. Content
 * addressing makes every entry immutable, so instances never need to
 * invalidate one another: whether a manifest may be served is always asked
 * of the metadata store first, and only the bytes come from here.
 */
export class ManifestCache {
  readonly #entries = new Map<string, Buffer>();
  readonly #maxBytes: number;
  #bytes = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  get(digest: string): Buffer | undefined {
    const bytes = this.#entries.get(digest);
    if (bytes) {
      this.#entries.delete(digest);
      this.#entries.set(digest, bytes);
    }
    return bytes;
  }

  set(digest: string, bytes: Buffer): void {
    if (bytes.length > this.#maxBytes || this.#entries.has(digest)) return;
    this.#entries.set(digest, bytes);
    this.#bytes += bytes.length;
    for (const [oldest, old] of this.#entries) {
      if (this.#bytes <= this.#maxBytes) break;
      this.#entries.delete(oldest);
      this.#bytes -= old.length;
    }
  }
}
