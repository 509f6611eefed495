import type { Readable } from 'node:stream';
import { RegistryError } from '../errors/registry-error.js';
import type { BlobRecord, MetadataStore } from '../metadata/metadata-store.js';
import type { BlobFile, BlobStore, ByteRange } from '../storage/blob-store.js';

/**
 * Reading and unlinking blobs in a repository. A blob is served only from a
 * repository that links it (DESIGN.md, invariant 3): the metadata store is
 * asked first, the blob store only for the bytes.
 */
export class BlobService {
  readonly #blobs: BlobStore;
  readonly #metadata: MetadataStore;

  constructor(blobs: BlobStore, metadata: MetadataStore) {
    this.#blobs = blobs;
    this.#metadata = metadata;
  }

  async stat(repository: string, digest: string): Promise<BlobRecord> {
    const blob = await this.#metadata.getLinkedBlob(repository, digest);
    if (!blob) throw unknownBlob(repository, digest);
    return blob;
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
