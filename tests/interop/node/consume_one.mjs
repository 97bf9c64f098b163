// Processes jobs of one queue with a Node BullMQ Worker and prints what it saw.
// usage: node consume_one.mjs REDIS_URL PREFIX QUEUE COUNT TIMEOUT_MS
import { Worker } from "bullmq";
import IORedis from "ioredis";

const [url, prefix, queueName, count, timeoutMs] = process.argv.slice(2);
const connection = new IORedis(url, { maxRetriesPerRequest: null });
const seen = [];
let done;
const finished = new Promise((resolve) => { done = resolve; });
const worker = new Worker(
  queueName,
  async (job) => {
    seen.push({ id: job.id, name: job.name, data: job.data, priority: job.opts.priority ?? 0,
                attempts: job.opts.attempts ?? 0 });
    if (seen.length >= Number(count)) done();
    return { processedBy: "node" };
  },
  { connection, prefix, concurrency: 1 },
);
const timer = setTimeout(done, Number(timeoutMs));
await finished;
clearTimeout(timer);
await worker.close();
await connection.quit();
console.log(JSON.stringify(seen));
