import { join, resolve } from 'node:path';
import { parseDuration } from '../config/duration.js';
import type { Config } from '../config/schema.js';
import type { MetadataStore } from '../metadata/metadata-store.js';
import type { BlobStore } from '../storage/blob-store.js';
import { FilesystemBlobStore } from '../storage/filesystem-blob-store.js';
import { BlobService } from './blobs.js';
import { defaultCollection, GarbageCollector, type CollectionDefaults } from './gc.js';
import { ImmutableTags } from './immutable-tags.js';
import { ManifestService } from './manifests.js';
import { Quotas } from './quotas.js';
import { RepositoryService } from './repositories.js';
import { UploadPurger } from './upload-purger.js';
import { UploadService } from './uploads.js';

/** The rules per repository pattern that pushes obey (configuration: `immutability`, `quotas`). */
export interface RepositoryRules {
  immutableTags: ImmutableTags;
  quotas: Quotas;
}

/** The registry's domain services over one blob store and one metadata store. */
export class Registry {
  readonly blobStore: BlobStore;
  readonly metadata: MetadataStore;
  readonly blobs: BlobService;
  readonly uploads: UploadService;
  readonly manifests: ManifestService;
  readonly rules: RepositoryRules;
  readonly repositories: RepositoryService;
  readonly gc: GarbageCollector;
  readonly uploadPurger: UploadPurger;

  /** `collection`: garbage collection's settings (configuration: `gc`). */
  constructor(
    blobStore: BlobStore,
    metadata: MetadataStore,
    rules: Partial<RepositoryRules> = {},
    collection: CollectionDefaults = defaultCollection,
  ) {
    this.blobStore = blobStore;
    this.metadata = metadata;
    this.rules = {
      immutableTags: rules.immutableTags ?? new ImmutableTags(),
      quotas: rules.quotas ?? new Quotas(),
    };
    // A link older than half the grace window is refreshed when a client finds it (blobs.ts).
    this.blobs = new BlobService(blobStore, metadata, collection.graceMs / 2);
    this.uploads = new UploadService(blobStore, metadata, this.rules.quotas);
    this.manifests = new ManifestService(blobStore, metadata, this.rules);
    this.repositories = new RepositoryService(blobStore, metadata);
    this.gc = new GarbageCollector(blobStore, metadata, collection);
    this.uploadPurger = new UploadPurger(blobStore, metadata);
  }

  close(): Promise<void> {
    return this.metadata.close();
  }
}

/** Opens the stores the configuration names, creating and migrating them as needed. */
export async function openRegistry(config: Config): Promise<Registry> {
  const root = resolve(config.storage.filesystem.rootdirectory);
  const blobStore = new FilesystemBlobStore(root);
  await blobStore.init();
  const metadata = await openMetadataStore(config, root);
  const collection = { graceMs: parseDuration(config.gc.grace), untagged: config.gc.untagged };
  return new Registry(blobStore, metadata, repositoryRulesOf(config), collection);
}

export function repositoryRulesOf(config: Config): RepositoryRules {
  return {
    immutableTags: new ImmutableTags(config.immutability.tags),
    quotas: new Quotas(config.quotas.rules),
  };
}

/** Each engine's driver is loaded only when configured: every process pays for what it uses. */
async function openMetadataStore(config: Config, root: string): Promise<MetadataStore> {
  const postgres = config.metadata.postgres;
  const store = postgres
    ? await (await import('../metadata/sql/postgres.js')).openPostgresMetadataStore(postgres.url)
    : await (
        await import('../metadata/sql/sqlite.js')
      ).openSqliteMetadataStore(config.metadata.sqlite?.path ?? join(root, 'berth.db'));
  await store.migrate();
  return store;
}
