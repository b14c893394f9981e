// Assistants: pick one, edit it, create, delete.

import { del, listAll, post } from "./api.js";
import { $, guarded, h, json } from "./dom.js";
import { emit, on, state } from "./state.js";

// What a new assistant's Model field holds: every name reaches the configured backend (the
// embedded model takes any), and an empty required field would block Save without a word.
const DEFAULT_MODEL = "gpt-4o";

export function init() {
  $("#assistant").addEventListener("change", () => select($("#assistant").value));
  $("#new-assistant").addEventListener("click", () => {
    select("");
    $("#a-name").focus();
  });
  $("#assistant-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(save);
  });
  $("#delete-assistant").addEventListener("click", () => guarded(remove));
  on("files", fillResources);
  on("stores", fillResources);
}

export async function load() {
  state.assistants = await listAll("/assistants?order=desc");
  fillSelect();
  const keep = state.assistants.some((a) => a.id === state.assistantId);
  select(keep ? state.assistantId : state.assistants[0]?.id || "");
}

export function clear() {
  state.assistants = [];
  fillSelect();
  select("");
}

function fillSelect() {
  $("#assistant").replaceChildren(
    h("option", { value: "" }, "(new assistant)"),
    ...state.assistants.map((a) => h("option", { value: a.id }, `${a.name || "(unnamed)"} · ${a.id}`)),
  );
}

function selectOptions(select, items, chosen, label) {
  const wanted = new Set(chosen);
  select.replaceChildren(
    ...items.map((item) => h("option", { value: item.id, selected: wanted.has(item.id) }, label(item))),
  );
}

function chosen(select) {
  return [...select.selectedOptions].map((o) => o.value);
}

// The file and vector store pickers, keeping what is selected.
function fillResources() {
  const assistant = current();
  const codeFiles = $("#a-code-files").options.length
    ? chosen($("#a-code-files"))
    : assistant?.tool_resources?.code_interpreter?.file_ids || [];
  const stores = $("#a-stores").options.length
    ? chosen($("#a-stores"))
    : assistant?.tool_resources?.file_search?.vector_store_ids || [];
  selectOptions($("#a-code-files"), usable(), codeFiles, (f) => `${f.filename} · ${f.id}`);
  selectOptions($("#a-stores"), state.stores, stores, (s) => `${s.name || "(unnamed)"} · ${s.id}`);
}

// Files a tool resource may name (outputs of the code are not inputs).
function usable() {
  return state.files.filter((f) => f.purpose === "assistants");
}

function current() {
  return state.assistants.find((a) => a.id === state.assistantId);
}

function select(id) {
  state.assistantId = id;
  $("#assistant").value = id;
  const a = current() || { tools: [] };
  $("#a-name").value = a.name || "";
  $("#a-model").value = a.model || DEFAULT_MODEL;
  $("#a-instructions").value = a.instructions || "";
  $("#a-temperature").value = a.temperature ?? "";
  $("#a-top-p").value = a.top_p ?? "";
  const types = new Set(a.tools.map((t) => t.type));
  $("#a-code").checked = types.has("code_interpreter");
  $("#a-search").checked = types.has("file_search");
  const functions = a.tools.filter((t) => t.type === "function").map((t) => t.function);
  $("#a-functions").value = functions.length ? json(functions) : "";
  selectOptions($("#a-code-files"), usable(), a.tool_resources?.code_interpreter?.file_ids || [],
    (f) => `${f.filename} · ${f.id}`);
  selectOptions($("#a-stores"), state.stores, a.tool_resources?.file_search?.vector_store_ids || [],
    (s) => `${s.name || "(unnamed)"} · ${s.id}`);
  $("#delete-assistant").disabled = !id;
  $("#assistant-id").textContent = id ? `id ${id}` : "A new assistant: Save creates it.";
  emit("assistant", id);
}

function functionTools() {
  const text = $("#a-functions").value.trim();
  if (!text) return [];
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`Functions: not valid JSON (${error.message})`);
  }
  if (!Array.isArray(parsed)) parsed = [parsed];
  return parsed.map((f) => (f.type === "function" ? f : { type: "function", function: f }));
}

function number(field) {
  const value = $(field).value.trim();
  return value === "" ? null : Number(value);
}

async function save() {
  const tools = [];
  if ($("#a-code").checked) tools.push({ type: "code_interpreter" });
  if ($("#a-search").checked) tools.push({ type: "file_search" });
  tools.push(...functionTools());
  const body = {
    name: $("#a-name").value.trim() || null,
    model: $("#a-model").value.trim(),
    instructions: $("#a-instructions").value || null,
    tools,
    tool_resources: {
      code_interpreter: { file_ids: chosen($("#a-code-files")) },
      file_search: { vector_store_ids: chosen($("#a-stores")) },
    },
  };
  const temperature = number("#a-temperature");
  const topP = number("#a-top-p");
  if (temperature !== null || state.assistantId) body.temperature = temperature;
  if (topP !== null || state.assistantId) body.top_p = topP;
  if (!body.model) throw new Error("Model: required.");
  const saved = state.assistantId
    ? await post(`/assistants/${state.assistantId}`, body)
    : await post("/assistants", body);
  state.assistantId = saved.id;
  await load();
  $("#assistant-id").textContent = `Saved ${saved.id}`;
}

async function remove() {
  if (!state.assistantId) return;
  await del(`/assistants/${state.assistantId}`);
  state.assistantId = "";
  await load();
}

