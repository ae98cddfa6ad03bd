// Test helper, loaded with `node --import`: appends the URL of every module the process resolves
// (ESM imports, static and dynamic) to the file named by DF_LOADS_FILE.
import { register } from 'node:module';

register('./record-loads-hooks.mjs', import.meta.url, { data: { file: process.env.DF_LOADS_FILE } });
