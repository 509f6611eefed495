import { readFile, stat } from 'node:fs/promises';

/**
 * A file read once and read again when it changes, so that an edit takes
 * effect without a restart, in every serving thread: each thread looks
 * at the file's identity (inode, size, modification and change times) at
 * most once per `ttlMs`, on the next use after that. A file that fails to
 * read or parse keeps the last good content in force; the failure is
 * reported once per change.
 */

export interface WatchedFileOptions {
  /** How long a look at the file stays good, in milliseconds. */
  ttlMs: number;
  /** Called when a changed file could not be read or parsed. */
  onError: (error: unknown) => void;
  /** Called after a changed file was loaded. */
  onReload?: () => void;
}

export class WatchedFile<T> {
  readonly path: string;
  readonly #parse: (text: string) => T;
  readonly #options: WatchedFileOptions;
  #value: T | undefined;
  #identity = '';
  #checkedAt = 0;
  #checking: Promise<void> | undefined;

  constructor(path: string, parse: (text: string) => T, options: WatchedFileOptions) {
    this.path = path;
    this.#parse = parse;
    this.#options = options;
  }

  /** The first load, which must succeed: a bad file stops the start. */
  async load(): Promise<T> {
    const identity = await this.#look();
    this.#value = this.#parse(await readFile(this.path, 'utf8'));
    this.#identity = identity;
    this.#checkedAt = Date.now();
    return this.#value;
  }

  /** The content in force, read again first when the file changed. */
  async current(): Promise<T> {
    if (Date.now() - this.#checkedAt >= this.#options.ttlMs) {
      this.#checking ??= this.#refresh().finally(() => (this.#checking = undefined));
      await this.#checking;
    }
    if (this.#value === undefined) return this.load();
    return this.#value;
  }

  async #refresh(): Promise<void> {
    this.#checkedAt = Date.now();
    try {
      const identity = await this.#look();
      if (identity === this.#identity) return;
      const value = this.#parse(await readFile(this.path, 'utf8'));
      this.#value = value;
      this.#identity = identity;
      this.#options.onReload?.();
    } catch (error) {
      const failed = `failed ${(error as Error).message}`;
      if (this.#identity !== failed) this.#options.onError(error);
      this.#identity = failed;
    }
  }

  async #look(): Promise<string> {
    const info = await stat(this.path, { bigint: true });
    return `${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`;
  }
}
