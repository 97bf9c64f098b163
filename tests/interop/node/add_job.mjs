// Adds one job the way the platform's TypeScript service does.
// usage: node add_job.mjs REDIS_URL PREFIX QUEUE NAME DATA_JSON PRIORITY
import { Queue } from "bullmq";
import IORedis from "ioredis";

const [url, prefix, queueName, name, data, priority] = process.argv.slice(2);
const connection = new IORedis(url, { maxRetriesPerRequest: null });
const queue = new Queue(queueName, { connection, prefix });
const job = await queue.add(name, JSON.parse(data), {
  priority: Number(priority),
  attempts: 3,
  backoff: { type: "exponential", delay: 5000 },
});
console.log(JSON.stringify({ id: job.id }));
await queue.close();
await connection.quit();
