// The Agents SDK for JavaScript's `webSearchTool` against assistantd with web search on: an agent
// that searches, run plainly and streamed. Usage: node web_search.mjs BASE_URL API_KEY MARKER;
// prints one JSON object of what each run gave.
import { Agent, OpenAIResponsesModel, run, setTracingDisabled, webSearchTool } from "@openai/agents";
import OpenAI from "openai";

const [baseURL, apiKey, marker] = process.argv.slice(2);
setTracingDisabled(true); // no trace export (it would go to api.openai.com)
const client = new OpenAI({ apiKey, baseURL, maxRetries: 0 });

const agent = new Agent({
  name: "searcher",
  instructions: "Search the web.",
  tools: [
    webSearchTool({
      searchContextSize: "low",
      userLocation: { type: "approximate", country: "DE", city: "Berlin" },
      filters: { allowedDomains: ["127.0.0.1"] },
    }),
  ],
  model: new OpenAIResponsesModel(client, "gpt-4o"),
});

function calls(result) {
  return result.rawResponses.flatMap((r) =>
    r.output.filter((item) => item.type === "hosted_tool_call").map((item) => ({
      name: item.name,
      status: item.status,
      action: item.providerData?.action ?? null,
    })),
  );
}

const out = {};
{
  const result = await run(agent, `${marker} plain: when is the lamp lit?`);
  const message = result.rawResponses.at(-1).output.find((item) => item.type === "message");
  out.plain = {
    final: result.finalOutput,
    calls: calls(result),
    annotations: message.content[0].providerData?.annotations ?? message.content[0].annotations ?? null,
  };
}
{
  const result = await run(agent, `${marker} stream: when is the lamp lit?`, { stream: true });
  const types = [];
  for await (const event of result) {
    if (event.type === "raw_model_stream_event" && event.data.type === "model") {
      types.push(event.data.event.type);
    }
  }
  await result.completed;
  out.stream = { final: result.finalOutput, calls: calls(result), types };
}
console.log(JSON.stringify(out));
