import { threadData, reportToMainThread } from './workers.js';
import { drain, openServing } from './serving.js';

/**
 * The entry of a serving thread other than the main one (workers.ts). It
 * gets the configuration the main thread loaded and checked, accepts from
 * the main thread's listening descriptor and never closes it (workers.ts
 * says why); asked to stop, it drains.
 */

const { config, descriptor } = threadData();
const { server, registry, log } = await openServing(config);
await new Promise<void>((resolve) => server.listen({ fd: descriptor }, resolve));
reportToMainThread(async () => {
  await drain(server);
  await registry.close();
  await new Promise((resolve) => log.flush(resolve));
}, log);
