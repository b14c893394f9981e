// Threads: start or pick one, chat with streamed runs, answer function calls, cancel.

import { get, getKey, listAll, post, stream } from "./api.js";
import { $, guarded, h, showError } from "./dom.js";
import * as inspector from "./inspector.js";
import * as messages from "./messages.js";
import { on, state } from "./state.js";

// Thread ids this browser started (the API has no list of threads), kept apart per key (by a
// short hash of it: a namespace, not a secret) and checked against the key when picked.
function threadsKey() {
  let hash = 0x811c9dc5; // FNV-1a
  for (const char of getKey()) hash = Math.imul(hash ^ char.charCodeAt(0), 0x01000193) >>> 0;
  return `assistantd.playground.threads.${hash.toString(16)}`;
}
const ENDED = new Set(["completed", "failed", "cancelled", "expired", "incomplete"]);

let run = null; // the thread's latest run: {id, thread_id, status}
let streaming = false;
let shown = 0; // bumped by reset(): a thread still loading for an earlier screen is dropped
const live = new Map(); // message id -> {article, parts}

function remembered() {
  try {
    return JSON.parse(localStorage.getItem(threadsKey()) || "[]");
  } catch {
    return [];
  }
}

function remember(id, title) {
  const list = remembered().filter((t) => t.id !== id);
  list.unshift({ id, title: title.slice(0, 60) });
  localStorage.setItem(threadsKey(), JSON.stringify(list.slice(0, 50)));
  fillThreads();
}

function forget(id) {
  localStorage.setItem(threadsKey(), JSON.stringify(remembered().filter((t) => t.id !== id)));
  fillThreads();
}

function fillThreads() {
  $("#thread").replaceChildren(
    h("option", { value: "" }, "(new thread on first message)"),
    ...remembered().map((t) => h("option", { value: t.id }, `${t.title || "(empty)"} · ${t.id}`)),
  );
  $("#thread").value = state.threadId;
}

export function init() {
  fillThreads();
  $("#thread").addEventListener("change", () => guarded(() => openThread($("#thread").value)));
  $("#new-thread").addEventListener("click", () => guarded(newThread));
  $("#composer").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(send);
  });
  $("#message").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("#composer").requestSubmit();
    }
  });
  $("#cancel-run").addEventListener("click", () => guarded(cancel));
  $("#tool-outputs").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(submitOutputs);
  });
  on("connected", () => {
    if (state.threadId) guarded(() => openThread(state.threadId));
  });
}

export function reset() {
  shown += 1;
  state.threadId = "";
  setRun(null);
  $("#messages").replaceChildren();
  $("#tool-outputs").hidden = true;
  inspector.show("");
  fillThreads();
}

async function newThread() {
  const thread = await post("/threads", {});
  remember(thread.id, "");
  await openThread(thread.id);
  $("#message").focus();
}

async function openThread(id) {
  reset();
  if (!id) return;
  const screen = shown;
  $("#send").disabled = true; // until the thread is on screen
  let list;
  try {
    await get(`/threads/${id}`);
    list = await listAll(`/threads/${id}/messages?order=asc`);
  } catch (error) {
    if (error.status === 404) forget(id);
    if (screen === shown) setRun(null);
    throw error;
  }
  if (screen !== shown) return;
  state.threadId = id;
  fillThreads();
  $("#messages").replaceChildren(...list.map((m) => messages.render(m)));
  await inspector.show(id);
  if (screen !== shown) return;
  setRun(null);
  const active = inspector.activeRun();
  if (active) {
    setRun(active);
    if (active.status === "requires_action") askForOutputs(active);
  }
}

function setRun(value) {
  run = value;
  const running = Boolean(run && !ENDED.has(run.status));
  $("#cancel-run").disabled = !running || run.status === "cancelling";
  $("#send").disabled = running || streaming;
  $("#run-status").textContent = run ? `${run.id}: ${run.status}` : "";
}

async function send() {
  const content = $("#message").value.trim();
  if (!content) return;
  if (!state.assistantId) throw new Error("Pick an assistant, or save a new one, first.");
  if (!state.threadId) {
    const thread = await post("/threads", {});
    state.threadId = thread.id;
    remember(thread.id, content);
    inspector.show(thread.id);
  } else if (!remembered().find((t) => t.id === state.threadId)?.title) {
    remember(state.threadId, content);
  }
  const message = await post(`/threads/${state.threadId}/messages`, { role: "user", content });
  $("#message").value = "";
  $("#messages").append(messages.render(message));
  scroll();
  await follow(`/threads/${state.threadId}/runs`, { assistant_id: state.assistantId });
}

function scroll() {
  const log = $("#messages");
  log.scrollTop = log.scrollHeight;
}

// Stream a run (created, or continued after tool outputs) until it ends or needs outputs.
async function follow(path, body) {
  $("#send").disabled = true;
  streaming = true;
  try {
    await stream(path, body, onEvent);
  } finally {
    streaming = false;
    setRun(run);
  }
}

function onEvent(name, data) {
  if (name === "error") {
    showError(new Error(data?.message || data?.error?.message || "stream error"));
    return;
  }
  if (!data || typeof data !== "object") return;
  if (name.startsWith("thread.run.step.")) {
    if (name === "thread.run.step.delta") inspector.stepDelta(data);
    else inspector.step(data);
    return;
  }
  if (name.startsWith("thread.run.")) return onRun(name, data);
  if (name === "thread.message.created") {
    const el = messages.render(data);
    live.set(data.id, { article: el, parts: [] });
    $("#messages").append(el);
  } else if (name === "thread.message.delta") {
    delta(data);
  } else if (name === "thread.message.completed" || name === "thread.message.incomplete") {
    const known = live.get(data.id);
    const el = messages.render(data, known?.article);
    if (!known) $("#messages").append(el);
    live.delete(data.id);
  }
  scroll();
}

function delta(data) {
  let known = live.get(data.id);
  if (!known) {
    const el = messages.article("assistant", "assistant message");
    $("#messages").append(el);
    known = { article: el, parts: [] };
    live.set(data.id, known);
  }
  for (const part of data.delta.content || []) {
    let slot = known.parts[part.index];
    if (!slot) {
      const el = part.type === "image_file" ? messages.image(part.image_file.file_id) : h("div", { class: "text" });
      slot = known.parts[part.index] = { el, value: "" };
      known.article.append(el);
    }
    if (part.type === "text" && part.text?.value) {
      slot.value += part.text.value;
      slot.el.textContent = slot.value;
    }
  }
}

function onRun(name, data) {
  setRun(data);
  inspector.upsert(data);
  if (name === "thread.run.requires_action") askForOutputs(data);
  if (name === "thread.run.failed" || name === "thread.run.expired") {
    const error = data.last_error;
    // Not an article: the log holds one article per message.
    $("#messages").append(
      h("div", { class: "run-error", role: "note", "aria-label": "run error" },
        h("header", {}, `${data.id} ${data.status}`),
        h("div", { class: "text" }, error ? `${error.code}: ${error.message}` : data.status)),
    );
  }
}

function askForOutputs(data) {
  const calls = data.required_action?.submit_tool_outputs?.tool_calls || [];
  $("#tool-calls").replaceChildren(
    ...calls.map((call) => {
      const id = `output-${call.id}`;
      return h("div", { class: "tool-call", "data-call-id": call.id },
        h("div", {}, h("strong", {}, call.function.name), ` (${call.id})`),
        h("pre", { "aria-label": `Arguments of ${call.function.name}` }, pretty(call.function.arguments)),
        h("label", { for: id }, `Output of ${call.function.name}`),
        h("textarea", { id, rows: 2, "data-call-id": call.id }));
    }),
  );
  $("#tool-outputs").hidden = calls.length === 0;
  $("#tool-calls textarea")?.focus();
}

function pretty(args) {
  try {
    return JSON.stringify(JSON.parse(args), null, 2);
  } catch {
    return args;
  }
}

async function submitOutputs() {
  if (!run) return;
  const tool_outputs = [...document.querySelectorAll("#tool-calls textarea")].map((t) => ({
    tool_call_id: t.dataset.callId,
    output: t.value,
  }));
  $("#tool-outputs").hidden = true;
  const { id, thread_id } = run;
  await follow(`/threads/${thread_id}/runs/${id}/submit_tool_outputs`, { tool_outputs });
}

async function cancel() {
  if (!run) return;
  $("#cancel-run").disabled = true;
  const cancelling = await post(`/threads/${run.thread_id}/runs/${run.id}/cancel`);
  setRun(cancelling);
  inspector.upsert(cancelling);
  $("#tool-outputs").hidden = true;
  if (streaming) return; // the stream reports the end
  // No stream (the run was waiting for outputs): poll until it ends.
  const deadline = Date.now() + 30000;
  while (run && !ENDED.has(run.status) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const now = await get(`/threads/${cancelling.thread_id}/runs/${cancelling.id}`);
    setRun(now);
    inspector.upsert(now);
  }
}
