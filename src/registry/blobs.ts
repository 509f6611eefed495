import type { Readable } from 'node:stream';
import { RegistryError } from '../errors/registry-error.js';
import type { BlobRecord, LinkedBlob, MetadataStore } from '../metadata/metadata-store.js';
import type { BlobFile, BlobStore, ByteRange } from '../storage/blob-store.js';

/**
 * Reading and unlinking blobs in a repository. A blob is served only from a
 * repository that links it (DESIGN.md, invariant 3): the metadata store is
 * asked first, the blob store only for the bytes.
 */
export class BlobService {
  readonly #blobs: BlobStore;
  readonly #metadata: MetadataStore;
  readonly #refreshAfterMs: number;

  /**
   * `refreshAfterMs`: a link older than this is made young again when a
   * client finds it; half of garbage collection's grace window. Zero turns
   * the refresh off.
   */
  constructor(blobs: BlobStore, metadata: MetadataStore, refreshAfterMs = 0) {
    this.#blobs = blobs;
    this.#metadata = metadata;
    this.#refreshAfterMs = refreshAfterMs;
  }

  /**
   * The linked blob, for HEAD and GET. A client that finds a blob present
   * skips its upload and references it in a manifest pushed a moment
   * later; should the link be unreferenced and old, a collection could
   * remove it in between. So an old link is refreshed first, which the
   * collection then sees as young; one that vanished meanwhile answers
   * 404, and the client uploads the blob. Only a link older than half the
   * grace window is written to: most reads write nothing.
   */
  async stat(repository: string, digest: string): Promise<BlobRecord> {
    const blob = await this.#metadata.getLinkedBlob(repository, digest);
    if (!blob) throw unknownBlob(repository, digest);
    if (this.#isStale(blob)) {
      const refreshed = await this.#metadata.refreshBlobLink(repository, digest, Date.now());
      if (!refreshed) throw unknownBlob(repository, digest);
    }
    return blob;
  }

  #isStale(blob: LinkedBlob): boolean {
    return this.#refreshAfterMs > 0 && Date.now() - blob.linkedAt > this.#refreshAfterMs;
  }

  async read(digest: string, range?: ByteRange): Promise<Readable> {
    try {
      return await this.#blobs.read(digest, range);
    } catch (error) {
      throw missingFromStorage(error, digest);
    }
  }

  /** The blob for positional reads, or undefined when the driver streams only. */
  async open(digest: string): Promise<BlobFile | undefined> {
    if (!this.#blobs.open) return undefined;
    try {
      return await this.#blobs.open(digest);
    } catch (error) {
      throw missingFromStorage(error, digest);
    }
  }

  /** Removes the blob from this repository; the bytes go when garbage collection finds them unused. */
  async unlink(repository: string, digest: string): Promise<void> {
    if (!(await this.#metadata.unlinkBlob(repository, digest)))
      throw unknownBlob(repository, digest);
  }
}

function missingFromStorage(error: unknown, digest: string): unknown {
  if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return error;
  return new RegistryError('BLOB_UNKNOWN', `Blob "${digest}" is missing from storage`);
}

function unknownBlob(repository: string, digest: string): RegistryError {
  return new RegistryError(
    'BLOB_UNKNOWN',
    `Blob "${digest}" is unknown in repository "${repository}"`,
    {
      detail: { digest },
    },
  );
}
