// The Agents SDK for JavaScript's `hostedMcpTool` against assistantd, whose worker calls a real
// MCP server: a call without approval, then calls that need one, approved and rejected through
// `onApproval`. Usage: node hosted_mcp.mjs BASE_URL API_KEY MARKER MCP_URL; prints one JSON object
// of what each run gave.
import { Agent, OpenAIResponsesModel, hostedMcpTool, run, setTracingDisabled } from "@openai/agents";
import OpenAI from "openai";

const [baseURL, apiKey, marker, serverUrl] = process.argv.slice(2);
setTracingDisabled(true); // no trace export (it would go to api.openai.com)
const client = new OpenAI({ apiKey, baseURL, maxRetries: 0 });

function agent(tool) {
  return new Agent({
    name: "calculator",
    instructions: "Use the calc server.",
    tools: [tool],
    model: new OpenAIResponsesModel(client, "gpt-4o"),
  });
}

function kinds(result) {
  return result.newItems.map((item) => item.rawItem?.providerData?.type ?? item.rawItem?.type ?? item.type);
}

const out = {};
{
  const tool = hostedMcpTool({ serverLabel: "calc", serverUrl, requireApproval: "never" });
  const result = await run(agent(tool), `${marker} never: add 4 and 5`);
  out.never = { final: result.finalOutput, kinds: kinds(result) };
}
for (const approve of [true, false]) {
  const asked = [];
  const tool = hostedMcpTool({
    serverLabel: "calc",
    serverUrl,
    requireApproval: "always",
    onApproval: async (_context, item) => {
      asked.push(item.rawItem?.name ?? item.name ?? null);
      return approve ? { approve: true } : { approve: false, reason: "not today" };
    },
  });
  const result = await run(agent(tool), `${marker} ${approve ? "yes" : "no"}: add 2 and 3`);
  out[approve ? "approved" : "rejected"] = { final: result.finalOutput, asked, kinds: kinds(result) };
}
console.log(JSON.stringify(out));
