import { RegistryError } from '../errors/registry-error.js';
import type { MetadataStore, RepositoryDeletion } from '../metadata/metadata-store.js';
import type { BlobStore } from '../storage/blob-store.js';

/**
 * Whole repositories. Deleting one removes its tags, manifests, blob links
 * and upload sessions at once, and it leaves the catalog; its blobs go at
 * the next garbage collection, unless another repository holds them. A push
 * to the name afterwards starts a new, empty repository.
 */
export class RepositoryService {
  readonly #blobs: BlobStore;
  readonly #metadata: MetadataStore;

  constructor(blobs: BlobStore, metadata: MetadataStore) {
    this.#blobs = blobs;
    this.#metadata = metadata;
  }

  /**
   * Every manifest goes, referrers included: a referrer lives in the
   * repository of its subject (OCI distribution spec, "Listing referrers").
   */
  async delete(repository: string): Promise<RepositoryDeletion> {
    const deleted = await this.#metadata.deleteRepository(repository);
    if (!deleted) {
      throw new RegistryError('NAME_UNKNOWN', `Repository "${repository}" is unknown`, {
        detail: { name: repository },
      });
    }
    for (const id of deleted.uploads) await this.#blobs.abortUpload(id);
    return deleted;
  }
}
