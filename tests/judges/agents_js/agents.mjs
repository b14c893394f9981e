// The Agents SDK for JavaScript (@openai/agents) against assistantd: an agent with a function
// tool, run plainly, streamed, with reasoning settings, and on an OpenAIConversationsSession.
// Usage: node agents.mjs BASE_URL API_KEY MARKER; prints one JSON object of what each run gave.
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

const [baseURL, apiKey, marker] = process.argv.slice(2);
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
