// Child process: a Fluent forward server (@fluent-org/logger's FluentServer) that decodes every
// entry and acknowledges every chunk, standing in for Fluentd / Fluent Bit.
import { FluentServer } from '@fluent-org/logger';
import { serve } from '../lib/ipc.js';

let entries = 0;
const tags: Record<string, number> = {};
const server = new FluentServer({ listenOptions: { host: '127.0.0.1', port: 0 } });
server.on('entry', (tag: string) => {
  entries++;
  tags[tag] = (tags[tag] ?? 0) + 1;
});
await server.listen();
serve({ port: server.port }, { count: () => ({ entries, tags, maxRssMB: process.resourceUsage().maxRSS / 1024 }) }, () => server.close());
