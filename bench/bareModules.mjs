// Started with `node --import` before the bare pipeline (../shared/ceiling/pipeline.mjs), which the
// bench runs in place: its imports (fastify, bullmq, ioredis, mysql2) then resolve from this
// project's node_modules. ESM ignores NODE_PATH, and nothing is written beside the shared files.
import { register } from 'node:module';
import { isMainThread } from 'node:worker_threads';

const project = new URL('../package.json', import.meta.url).href;

// Module hooks run on their own thread, which loads this same file: register only from the main one.
if (isMainThread) register(import.meta.url);

/** A package the importing file cannot find is looked up again from the project's root. */
export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    if (error?.code !== 'ERR_MODULE_NOT_FOUND') throw error;
    return nextResolve(specifier, { ...context, parentURL: project });
  }
}
