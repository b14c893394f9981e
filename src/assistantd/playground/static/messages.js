// A thread message as an <article>: its text (with citation marks), its images, its files.

import { fileUrl, get } from "./api.js";
import { h, showError } from "./dom.js";

// The marker the file_search tool gives each result: 【tag:number†file name】 (tag optional).
const MARKER = /【(?:([0-9a-z]{4}):)?(\d+)†([^】]*)】/;

export function image(fileId) {
  const img = h("img", { alt: `image ${fileId}`, "data-file-id": fileId });
  fileUrl(fileId).then(
    (url) => {
      img.src = url;
    },
    (error) => {
      img.alt = `image ${fileId} (${error.message})`;
    },
  );
  return img;
}

export function article(role, label) {
  return h("article", { class: role, "aria-label": label }, h("header", {}, label));
}

// Text with its annotations: citations become buttons that show the cited passage.
export function text(part, runOf) {
  const { value, annotations = [] } = part.text;
  const el = h("div", { class: "text" });
  let at = 0;
  let citation = 0;
  for (const note of [...annotations].sort((a, b) => a.start_index - b.start_index)) {
    if (note.start_index < at) continue;
    el.append(value.slice(at, note.start_index));
    if (note.type === "file_citation") {
      citation += 1;
      el.append(citeButton(note, citation, runOf));
    } else if (note.type === "file_path") {
      el.append(downloadButton(note.file_path.file_id, note.text));
    } else {
      el.append(note.text);
    }
    at = note.end_index;
  }
  el.append(value.slice(at));
  return el;
}

function downloadButton(fileId, label) {
  const name = label.split("/").pop() || fileId;
  return h("button", {
    type: "button",
    class: "download",
    onclick: async () => {
      try {
        const link = h("a", { href: await fileUrl(fileId), download: name });
        document.body.append(link);
        link.click();
        link.remove();
      } catch (error) {
        showError(error);
      }
    },
  }, `Download ${name}`);
}

function citeButton(note, number, runOf) {
  const button = h("button", {
    type: "button",
    class: "cite",
    title: note.text,
    "aria-expanded": "false",
    "aria-label": `Citation ${number}: ${note.text}`,
  }, `[${number}]`);
  let aside = null;
  button.addEventListener("click", async () => {
    if (aside) {
      aside.remove();
      aside = null;
      button.setAttribute("aria-expanded", "false");
      return;
    }
    aside = h("aside", { class: "passage", "aria-label": `Cited passage ${number}` }, "Loading…");
    button.closest(".text").after(aside);
    button.setAttribute("aria-expanded", "true");
    try {
      const found = await passage(note, runOf());
      aside.replaceChildren(
        h("strong", {}, found ? `${found.file_name} (score ${found.score.toFixed(3)})` : note.text),
        h("div", {}, found ? found.content.map((c) => c.text).join("\n") : "The passage is not in this run's steps."),
      );
    } catch (error) {
      aside.textContent = error.message;
    }
  });
  return button;
}

const INCLUDE = "include[]=step_details.tool_calls[*].file_search.results[*].content";
const stepsCache = new Map();

// The search result a citation points at, from its run's file_search steps (with content).
async function passage(note, run) {
  if (!run) return null;
  const key = `${run.thread_id}/${run.id}`;
  if (!stepsCache.has(key)) {
    const steps = get(`/threads/${run.thread_id}/runs/${run.id}/steps?order=asc&limit=100&${INCLUDE}`);
    stepsCache.set(key, steps);
    steps.catch(() => stepsCache.delete(key));
  }
  const calls = (await stepsCache.get(key)).data
    .filter((s) => s.type === "tool_calls")
    .flatMap((s) => s.step_details.tool_calls)
    .filter((c) => c.type === "file_search");
  const all = calls.flatMap((c) => c.file_search.results || []);
  const match = MARKER.exec(note.text);
  if (match) {
    const [, tag, number, name] = match;
    const call = tag ? calls.find((c) => c.id.slice(-4).toLowerCase() === tag) : calls.at(-1);
    const hit = call?.file_search.results?.[Number(number)];
    if (hit && (!name.trim() || hit.file_name === name.trim())) return hit;
    const named = all.find((r) => r.file_name === name.trim());
    if (named) return named;
  }
  return all.find((r) => r.file_id === note.file_citation.file_id) || null;
}

// The whole message: `runOf()` gives the run ({id, thread_id}) that wrote it, for citations.
export function render(message, el) {
  const label = `${message.role} message`;
  const art = el || article(message.role, label);
  art.className = message.role;
  art.dataset.messageId = message.id;
  const meta = [message.role, message.id, message.run_id, message.status !== "completed" ? message.status : null];
  const runOf = () => (message.run_id ? { id: message.run_id, thread_id: message.thread_id } : null);
  const body = message.content.map((part) => {
    if (part.type === "text") return text(part, runOf);
    if (part.type === "image_file") return image(part.image_file.file_id);
    if (part.type === "image_url") return h("img", { src: part.image_url.url, alt: "image" });
    return h("pre", {}, JSON.stringify(part));
  });
  const attachments = (message.attachments || []).map((a) => h("div", { class: "muted" }, `attached ${a.file_id}`));
  art.replaceChildren(h("header", {}, meta.filter(Boolean).join(" · ")), ...body, ...attachments);
  return art;
}
