// Stream a run through the official Node `openai` package and print what it saw as JSON.
// Usage: node script.mjs <base_url> <api_key> <assistant_id> <thread_id>
// A run that stops for function calls gets "22C" for each call (submitToolOutputsStream).
import OpenAI from 'openai';

const [baseURL, apiKey, assistantId, threadId] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });

function record(stream, seen) {
  return stream
    .on('event', (event) => seen.events.push(event.event))
    .on('textDelta', (delta) => seen.deltas.push(delta.value))
    .on('toolCallDelta', (delta) => {
      if (delta.function?.arguments) seen.arguments.push(delta.function.arguments);
    });
}

const seen = { events: [], deltas: [], arguments: [] };
let run = await record(client.beta.threads.runs.stream(threadId, { assistant_id: assistantId }), seen).finalRun();
const rounds = [run.status];
while (run.status === 'requires_action') {
  const outputs = run.required_action.submit_tool_outputs.tool_calls.map((call) => ({
    tool_call_id: call.id,
    output: '22C',
  }));
  const stream = client.beta.threads.runs.submitToolOutputsStream(run.id, {
    thread_id: threadId,
    tool_outputs: outputs,
  });
  run = await record(stream, seen).finalRun();
  rounds.push(run.status);
}
const messages = await client.beta.threads.messages.list(threadId, { order: 'desc', limit: 1 });
console.log(
  JSON.stringify({
    ...seen,
    rounds,
    run: { id: run.id, status: run.status },
    stored: messages.data[0].content[0].text.value,
  }),
);
