// Stream a run through the official Node `openai` package and print the image files its
// `imageFileDone` events gave, and the final messages' parts, as JSON.
// Usage: node images.mjs <base_url> <api_key> <assistant_id> <thread_id>
import OpenAI from 'openai';

const [baseURL, apiKey, assistantId, threadId] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });

const done = [];
const stream = client.beta.threads.runs
  .stream(threadId, { assistant_id: assistantId })
  .on('imageFileDone', (image) => done.push(image.file_id));
const run = await stream.finalRun();
const messages = await stream.finalMessages();
const parts = messages.map((message) =>
  message.content.map((part) => (part.type === 'image_file' ? part.image_file.file_id : part.type)),
);
console.log(JSON.stringify({ status: run.status, done, parts }));
