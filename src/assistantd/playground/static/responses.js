// The Responses mode: responses.create on a conversation, its output items as they stream.

import { post, stream } from "./api.js";
import { $, guarded, h, json, showError } from "./dom.js";
import { on, state } from "./state.js";

const items = new Map(); // output item id -> {article, text}

export function init() {
  $("#new-conversation").addEventListener("click", () => {
    $("#conversation").value = "";
    $("#items").replaceChildren();
  });
  $("#r-composer").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(send);
  });
  $("#r-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("#r-composer").requestSubmit();
    }
  });
  on("stores", () => {
    const chosen = new Set([...$("#r-stores").selectedOptions].map((o) => o.value));
    $("#r-stores").replaceChildren(...state.stores.map((s) =>
      h("option", { value: s.id, selected: chosen.has(s.id) }, `${s.name || "(unnamed)"} · ${s.id}`)));
  });
  on("connected", () => {
    $("#conversation").value = "";
    $("#items").replaceChildren();
  });
}

async function send() {
  const input = $("#r-input").value.trim();
  if (!input) return;
  const model = $("#r-model").value.trim();
  if (!model) throw new Error("Response model: required.");
  if (!$("#conversation").value) $("#conversation").value = (await post("/conversations", {})).id;
  const tools = [];
  if ($("#r-code").checked) tools.push({ type: "code_interpreter", container: { type: "auto" } });
  if ($("#r-search").checked) {
    const ids = [...$("#r-stores").selectedOptions].map((o) => o.value);
    if (!ids.length) throw new Error("File search: select a vector store.");
    tools.push({ type: "file_search", vector_store_ids: ids });
  }
  const body = {
    model,
    input,
    conversation: $("#conversation").value,
    tools,
    include: ["code_interpreter_call.outputs", "file_search_call.results"],
  };
  const instructions = $("#r-instructions").value.trim();
  if (instructions) body.instructions = instructions;
  $("#r-input").value = "";
  $("#items").append(h("article", { class: "user", "aria-label": "user input" },
    h("header", {}, "user"), h("div", { class: "text" }, input)));
  $("#r-send").disabled = true;
  try {
    await stream("/responses", body, onEvent);
  } finally {
    $("#r-send").disabled = false;
  }
}

function onEvent(name, data) {
  if (!data || typeof data !== "object") return;
  if (name === "error") {
    showError(new Error(data.message || data.error?.message || "stream error"));
  } else if (name === "response.created" || name === "response.in_progress") {
    $("#r-status").textContent = `${data.response.id}: ${data.response.status}`;
  } else if (name === "response.output_item.added") {
    const el = renderItem(data.item);
    items.set(data.item.id, { article: el, text: "" });
    $("#items").append(el);
  } else if (name === "response.output_text.delta" || name === "response.code_interpreter_call_code.delta") {
    const known = items.get(data.item_id);
    if (known) {
      known.text += data.delta;
      const code = name.includes("code");
      let slot = known.article.querySelector(code ? "pre.code" : ".text");
      if (!slot) {
        slot = code ? h("pre", { class: "code" }) : h("div", { class: "text" });
        known.article.append(slot);
      }
      slot.textContent = known.text;
    }
  } else if (name === "response.output_item.done") {
    const known = items.get(data.item.id);
    const el = renderItem(data.item);
    if (known) known.article.replaceWith(el);
    else $("#items").append(el);
    items.delete(data.item.id);
  } else if (["response.completed", "response.failed", "response.incomplete"].includes(name)) {
    const r = data.response;
    const usage = r.usage ? ` · ${r.usage.total_tokens} tokens` : "";
    $("#r-status").textContent = `${r.id}: ${r.status}${usage}`;
    if (r.error) showError(new Error(`${r.error.code}: ${r.error.message}`));
  }
  const log = $("#items");
  log.scrollTop = log.scrollHeight;
}

function renderItem(item) {
  const art = h("article", { class: item.type === "message" ? item.role : "item", "aria-label": item.type },
    h("header", {}, [item.type, item.id, item.status].filter(Boolean).join(" · ")));
  if (item.type === "message") {
    for (const part of item.content || []) {
      if (part.type === "output_text" || part.type === "input_text") {
        art.append(h("div", { class: "text" }, part.text));
        for (const note of part.annotations || []) {
          art.append(h("div", { class: "muted" }, `${note.type}: ${note.filename || note.file_id || note.url || ""}`));
        }
      } else if (part.type === "refusal") {
        art.append(h("div", { class: "text" }, `Refusal: ${part.refusal}`));
      }
    }
  } else if (item.type === "code_interpreter_call") {
    art.append(h("pre", { class: "code" }, item.code || ""));
    for (const out of item.outputs || []) {
      if (out.type === "logs") art.append(h("pre", { class: "logs" }, out.logs));
      else if (out.type === "image") art.append(h("img", { src: out.url, alt: "code interpreter image" }));
    }
  } else if (item.type === "file_search_call") {
    art.append(h("div", {}, `Queries: ${(item.queries || []).join("; ")}`));
    for (const r of item.results || []) {
      art.append(h("blockquote", {}, h("strong", {}, `${r.filename} (${(r.score ?? 0).toFixed(3)})`), h("div", {}, r.text)));
    }
  } else if (item.type === "function_call") {
    art.append(h("div", {}, `Function ${item.name}`), h("pre", { class: "logs" }, item.arguments));
  } else if (item.type === "reasoning") {
    art.append(...(item.summary || []).map((s) => h("div", { class: "text" }, s.text)));
  } else {
    art.append(h("pre", { class: "logs" }, json(item)));
  }
  return art;
}
