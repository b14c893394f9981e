// Files and vector stores: upload (drop or pick, with progress), list, delete, ingestion status.

import { del, get, listAll, post, upload } from "./api.js";
import { $, guarded, h, showError } from "./dom.js";
import { emit, state } from "./state.js";

let storeId = "";
let polling = null;

export function init() {
  dropZone($("#file-drop"), $("#file-input"), (list) => uploadAll(list, $("#file-purpose").value));
  dropZone($("#store-drop"), $("#store-file-input"), (list) => uploadAll(list, "assistants", storeId));
  $("#store-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(createStore);
  });
  $("#store").addEventListener("change", () => guarded(() => showStore($("#store").value)));
  $("#delete-store").addEventListener("click", () => guarded(deleteStore));
  $("#store-add").addEventListener("submit", (event) => {
    event.preventDefault();
    const fileId = $("#store-add-file").value;
    if (fileId) guarded(() => attach(fileId));
  });
}

export async function load() {
  await Promise.all([loadFiles(), loadStores()]);
}

export function clear() {
  state.files = [];
  state.stores = [];
  renderFiles();
  renderStores();
  showStore("");
}

function dropZone(zone, input, handle) {
  input.addEventListener("change", () => {
    const list = [...input.files];
    input.value = "";
    if (list.length) handle(list);
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    const list = [...(event.dataTransfer?.files || [])];
    if (list.length) handle(list);
  });
}

async function uploadAll(list, purpose, intoStore = "") {
  await Promise.all(list.map(async (file) => {
    const bar = h("progress", { max: 1, value: 0, "aria-label": `Uploading ${file.name}` });
    const note = h("span", { class: "muted" }, "0%");
    const row = h("li", {}, h("span", {}, file.name), bar, note);
    $("#file-progress").append(row);
    try {
      const uploaded = await upload(file, purpose, (fraction) => {
        bar.value = fraction;
        note.textContent = `${Math.round(fraction * 100)}%`;
      });
      bar.value = 1;
      note.textContent = `uploaded ${uploaded.id}`;
      if (intoStore) {
        await post(`/vector_stores/${intoStore}/files`, { file_id: uploaded.id });
        note.textContent = `uploaded ${uploaded.id}, added to ${intoStore}`;
      }
      setTimeout(() => row.remove(), 4000);
    } catch (error) {
      note.textContent = `failed: ${error.message}`;
      showError(error);
    }
  }));
  await loadFiles();
  if (intoStore && intoStore === storeId) await showStore(storeId);
}

async function loadFiles() {
  state.files = await listAll("/files?order=desc");
  renderFiles();
  emit("files");
}

function renderFiles() {
  $("#files").replaceChildren(...state.files.map((f) => h("tr", { "data-file-id": f.id },
    h("td", {}, f.filename), h("td", {}, f.id), h("td", {}, f.bytes), h("td", {}, f.purpose),
    h("td", {}, h("button", {
      type: "button",
      "aria-label": `Delete ${f.filename}`,
      onclick: () => guarded(async () => {
        await del(`/files/${f.id}`);
        await loadFiles();
        if (storeId) await showStore(storeId);
      }),
    }, "Delete")))));
  $("#store-add-file").replaceChildren(
    ...state.files.map((f) => h("option", { value: f.id }, `${f.filename} · ${f.id}`)),
  );
}

async function loadStores() {
  state.stores = await listAll("/vector_stores?order=desc");
  renderStores();
  emit("stores");
}

function renderStores() {
  $("#store").replaceChildren(
    h("option", { value: "" }, "(none)"),
    ...state.stores.map((s) => h("option", { value: s.id }, `${s.name || "(unnamed)"} · ${s.id}`)),
  );
  $("#store").value = state.stores.some((s) => s.id === storeId) ? storeId : "";
}

async function createStore() {
  const name = $("#store-name").value.trim();
  const store = await post("/vector_stores", name ? { name } : {});
  $("#store-name").value = "";
  storeId = store.id;
  await loadStores();
  await showStore(store.id);
}

async function deleteStore() {
  if (!storeId) return;
  await del(`/vector_stores/${storeId}`);
  storeId = "";
  await loadStores();
  await showStore("");
}

async function attach(fileId) {
  await post(`/vector_stores/${storeId}/files`, { file_id: fileId });
  await showStore(storeId);
}

// The store's files and their ingestion status, polled while any is in progress.
async function showStore(id) {
  storeId = id;
  clearTimeout(polling);
  $("#store").value = id;
  $("#delete-store").disabled = !id;
  $("#store-detail").hidden = !id;
  if (!id) return;
  const [store, files] = await Promise.all([
    get(`/vector_stores/${id}`),
    listAll(`/vector_stores/${id}/files?order=desc`),
  ]);
  if (storeId !== id) return;
  const c = store.file_counts;
  $("#store-counts").textContent = `${store.status}: ${c.completed} completed, ${c.in_progress} in progress, ${c.failed} failed, ${c.cancelled} cancelled (${store.usage_bytes} bytes)`;
  const names = new Map(state.files.map((f) => [f.id, f.filename]));
  $("#store-files").replaceChildren(...files.map((f) => h("tr", { "data-file-id": f.id },
    h("td", {}, `${names.get(f.id) || ""} ${f.id}`),
    h("td", { class: `status-${f.status}` }, f.status),
    h("td", {}, f.last_error ? `${f.last_error.code}: ${f.last_error.message}` : ""),
    h("td", {}, h("button", {
      type: "button",
      "aria-label": `Remove ${names.get(f.id) || f.id} from the vector store`,
      onclick: () => guarded(async () => {
        await del(`/vector_stores/${id}/files/${f.id}`);
        await showStore(id);
      }),
    }, "Remove")))));
  if (files.some((f) => f.status === "in_progress")) {
    polling = setTimeout(() => showStore(id).catch(showError), 500);
  }
}
