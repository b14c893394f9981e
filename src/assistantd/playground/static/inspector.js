// The run inspector: each run of the thread, its status, usage, error and steps.

import { get, listAll } from "./api.js";
import { $, guarded, h, json, when } from "./dom.js";
import { image } from "./messages.js";

const INCLUDE = "include[]=step_details.tool_calls[*].file_search.results[*].content";
let threadId = "";
const runs = new Map(); // run id -> {run, el}

export function init() {
  $("#refresh-runs").addEventListener("click", () => guarded(() => show(threadId)));
}

export async function show(id) {
  threadId = id;
  runs.clear();
  $("#runs").replaceChildren();
  if (!id) return;
  const list = await listAll(`/threads/${id}/runs?order=asc`);
  if (threadId !== id) return;
  for (const run of list) upsert(run);
}

export function activeRun() {
  const ended = new Set(["completed", "failed", "cancelled", "expired", "incomplete"]);
  const last = [...runs.values()].at(-1)?.run;
  return last && !ended.has(last.status) ? last : null;
}

export function upsert(run) {
  if (run.thread_id !== threadId) return;
  let known = runs.get(run.id);
  if (!known) {
    const el = h("details", { "data-run-id": run.id });
    el.addEventListener("toggle", () => {
      if (el.open) guarded(() => loadSteps(run.id));
    });
    known = { run, el };
    runs.set(run.id, known);
    $("#runs").append(el);
  }
  known.run = run;
  const usage = run.usage ? `${run.usage.total_tokens} tokens` : "";
  const summary = h("summary", {}, `Run ${run.id} · `, h("span", { class: `status-${run.status}` }, run.status),
    usage ? ` · ${usage}` : "");
  const facts = h("dl", {},
    fact("Model", run.model),
    fact("Created", when(run.created_at)),
    run.usage && fact("Usage", `prompt ${run.usage.prompt_tokens}, completion ${run.usage.completion_tokens}, total ${run.usage.total_tokens}`),
    run.last_error && fact("Last error", `${run.last_error.code}: ${run.last_error.message}`),
    run.incomplete_details && fact("Incomplete", json(run.incomplete_details)),
  );
  const steps = known.el.querySelector(".steps") || h("div", { class: "steps", "aria-label": `Steps of ${run.id}` });
  known.el.replaceChildren(summary, facts, steps);
  if (known.el.open) guarded(() => loadSteps(run.id));
}

// A step started or ended: refresh its run's steps if they are on screen.
export function step(data) {
  const known = runs.get(data.run_id);
  if (known?.el.open) guarded(() => loadSteps(data.run_id));
}

// Code as the model writes it, into the step on screen (the step's end shows it whole).
export function stepDelta(data) {
  const calls = data.delta?.step_details?.tool_calls || [];
  for (const call of calls) {
    const input = call.code_interpreter?.input;
    if (!input) continue;
    const code = document.querySelectorAll(`[data-step-id="${CSS.escape(data.id)}"] pre.code`)[call.index];
    if (code) code.textContent += input;
  }
}

function fact(name, value) {
  return [h("dt", {}, name), h("dd", {}, value ?? "")];
}

async function loadSteps(runId) {
  const known = runs.get(runId);
  const list = await get(`/threads/${threadId}/runs/${runId}/steps?order=asc&limit=100&${INCLUDE}`);
  const holder = known.el.querySelector(".steps");
  holder.replaceChildren(...list.data.map(renderStep));
  if (!list.data.length) holder.append(h("p", { class: "muted" }, "No steps yet."));
}

function renderStep(s) {
  const head = h("h3", {}, `${s.type === "tool_calls" ? "Tool calls" : "Message creation"} · `,
    h("span", { class: `status-${s.status}` }, s.status));
  const parts = [head];
  if (s.usage) parts.push(h("p", { class: "muted" }, `${s.usage.total_tokens} tokens`));
  if (s.last_error) parts.push(h("p", { class: "status-failed" }, `${s.last_error.code}: ${s.last_error.message}`));
  if (s.type === "message_creation") {
    parts.push(h("p", { class: "muted" }, `message ${s.step_details.message_creation.message_id}`));
  } else {
    parts.push(...s.step_details.tool_calls.map(renderCall));
  }
  return h("section", { class: "tool-call", "data-step-id": s.id }, ...parts);
}

function renderCall(call) {
  if (call.type === "code_interpreter") {
    const ci = call.code_interpreter;
    return h("div", {},
      h("strong", {}, "Code interpreter"),
      h("figure", {}, h("figcaption", {}, "Code"), h("pre", { class: "code" }, ci.input)),
      ...ci.outputs.map((o) => (o.type === "logs"
        ? h("figure", {}, h("figcaption", {}, "Logs"), h("pre", { class: "logs" }, o.logs))
        : image(o.image.file_id))));
  }
  if (call.type === "file_search") {
    const results = call.file_search.results || [];
    return h("div", {},
      h("strong", {}, "File search"),
      call.file_search.ranking_options && h("p", { class: "muted" }, `ranking ${json(call.file_search.ranking_options)}`),
      results.length ? h("ol", {}, ...results.map((r) => h("li", {},
        h("div", {}, `${r.file_name} (${r.file_id}), score ${r.score.toFixed(3)}`),
        ...(r.content || []).map((c) => h("blockquote", {}, c.text)))))
        : h("p", { class: "muted" }, "No results."));
  }
  const fn = call.function;
  return h("div", {},
    h("strong", {}, `Function ${fn.name}`),
    h("figure", {}, h("figcaption", {}, "Arguments"), h("pre", { class: "logs" }, fn.arguments)),
    h("figure", {}, h("figcaption", {}, "Output"), h("pre", { class: "logs" }, fn.output ?? "(waiting for the output)")));
}
