// The Agents SDK for JavaScript (@openai/agents) against assistantd: an agent with a function
// tool, run plainly, streamed, with reasoning settings, and on an OpenAIConversationsSession.
// Usage: node agents.mjs BASE_URL API_KEY MARKER [reasoning-backend]; prints one JSON object of
// what each run gave. With `reasoning-backend` it runs only the agent on a reasoning model (plain
// and streamed), and reports the reasoning it got.
import {
  Agent,
  OpenAIConversationsSession,
  OpenAIResponsesModel,
  run,
  setTracingDisabled,
  tool,
} from "@openai/agents";
import OpenAI from "openai";
import { z } from "zod";

const [baseURL, apiKey, marker, mode] = process.argv.slice(2);
setTracingDisabled(true); // no trace export (it would go to api.openai.com)
const client = new OpenAI({ apiKey, baseURL, maxRetries: 0 });

function weatherAgent(calls, modelSettings = {}) {
  const getWeather = tool({
    name: "get_weather",
    description: "The weather in a city.",
    parameters: z.object({ city: z.string() }),
    execute: async ({ city }) => {
      calls.push(city);
      return `sunny in ${city}`;
    },
  });
  return new Agent({
    name: "weather",
    instructions: "Answer with the weather tool.",
    tools: [getWeather],
    model: new OpenAIResponsesModel(client, "gpt-4o"),
    modelSettings,
  });
}

const out = {};

if (mode === "reasoning-backend") {
  const settings = { reasoning: { effort: "low", summary: "auto" } };
  const calls = [];
  const plain = await run(weatherAgent(calls, settings), `${marker} think: weather?`);
  out.plain = {
    final: plain.finalOutput,
    calls,
    outputs: plain.rawResponses.map((r) => r.output.map((item) => item.type)),
    reasoning: plain.rawResponses.flatMap((r) =>
      r.output.filter((item) => item.type === "reasoning").map((item) => item.rawContent ?? item.content),
    ),
    outputTokensDetails: plain.rawResponses.map((r) => r.usage.outputTokensDetails),
  };
  const streamed = await run(weatherAgent([], settings), `${marker} think-stream: weather?`, {
    stream: true,
  });
  const types = [];
  for await (const event of streamed) {
    if (event.type === "raw_model_stream_event" && event.data.type === "model") {
      types.push(event.data.event.type);
    }
  }
  await streamed.completed;
  out.streamed = { final: streamed.finalOutput, types };
  console.log(JSON.stringify(out));
  process.exit(0);
}

{
  const calls = [];
  const result = await run(weatherAgent(calls), `${marker} tool: weather in Paris?`);
  out.tool = {
    final: result.finalOutput,
    calls,
    responses: result.rawResponses.map((r) => r.responseId),
    usage: result.state.usage,
  };
}

{
  const calls = [];
  const result = await run(weatherAgent(calls), `${marker} stream: weather?`, { stream: true });
  const types = [];
  let text = "";
  for await (const event of result) {
    if (event.type === "raw_model_stream_event") {
      types.push(event.data.type === "model" ? event.data.event.type : event.data.type);
      if (event.data.type === "output_text_delta") text += event.data.delta;
    }
  }
  await result.completed;
  out.stream = { final: result.finalOutput, calls, text, types };
}

{
  const calls = [];
  const settings = { reasoning: { effort: "low", summary: "auto" }, text: { verbosity: "low" } };
  const result = await run(weatherAgent(calls, settings), `${marker} reasoning: weather?`);
  out.reasoning = { final: result.finalOutput, calls };
}

{
  const calls = [];
  const session = new OpenAIConversationsSession({ client });
  const agent = weatherAgent(calls);
  const first = await run(agent, `${marker} session: weather in Paris?`, { session });
  const second = await run(agent, `${marker} session: and tomorrow?`, { session });
  const items = await session.getItems();
  out.session = {
    conversation: await session.getSessionId(),
    finals: [first.finalOutput, second.finalOutput],
    calls,
    items: items.map((item) => item.type ?? item.role),
  };
}

console.log(JSON.stringify(out));
