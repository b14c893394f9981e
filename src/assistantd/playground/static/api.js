// The public API as the page's key sees it: every call goes to /v1 with that key.

const KEY = "assistantd.playground.key";

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || null;
    this.type = error.type || null;
  }
}

export function getKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function setKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

function headers(extra = {}) {
  const key = getKey();
  return key ? { Authorization: `Bearer ${key}`, ...extra } : { ...extra };
}

async function failure(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  return new ApiError(response.status, body);
}

export async function call(method, path, body, { signal } = {}) {
  const init = { method, headers: headers(), signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(`/v1${path}`, init);
  if (!response.ok) throw await failure(response);
  return response.json();
}

export const get = (path, options) => call("GET", path, undefined, options);
export const post = (path, body = {}, options) => call("POST", path, body, options);
export const del = (path) => call("DELETE", path);

// Every page of a list (`after` cursors), up to `max` items.
export async function listAll(path, max = 500) {
  const items = [];
  let after = null;
  const sep = path.includes("?") ? "&" : "?";
  while (items.length < max) {
    const page = await get(`${path}${sep}limit=100${after ? `&after=${after}` : ""}`);
    items.push(...page.data);
    if (!page.has_more || page.data.length === 0) break;
    after = page.last_id || page.data[page.data.length - 1].id;
  }
  return items;
}

// POST with `stream: true`; calls onEvent(name, data) for each server-sent event.
export async function stream(path, body, onEvent, { signal } = {}) {
  const response = await fetch(`/v1${path}`, {
    method: "POST",
    headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
    body: JSON.stringify({ ...body, stream: true }),
    signal,
  });
  if (!response.ok) throw await failure(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replaceAll("\r\n", "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (!data.length) continue;
      const text = data.join("\n");
      if (text === "[DONE]") {
        onEvent("done", null);
        continue;
      }
      let parsed;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
      onEvent(name === "message" && parsed && parsed.type ? parsed.type : name, parsed);
    }
  }
}

// A file's content as a blob: URL (an <img> cannot send the key header).
const blobUrls = new Map();
export async function fileUrl(fileId) {
  if (!blobUrls.has(fileId)) {
    const loading = (async () => {
      const response = await fetch(`/v1/files/${encodeURIComponent(fileId)}/content`, {
        headers: headers(),
      });
      if (!response.ok) throw await failure(response);
      return URL.createObjectURL(await response.blob());
    })();
    blobUrls.set(fileId, loading);
    loading.catch(() => blobUrls.delete(fileId));
  }
  return blobUrls.get(fileId);
}

// Upload a file (multipart) with progress: onProgress(fraction). XHR: fetch has no upload
// progress.
export function upload(file, purpose, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/files");
    for (const [name, value] of Object.entries(headers())) xhr.setRequestHeader(name, value);
    xhr.responseType = "json";
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.response);
      else reject(new ApiError(xhr.status, xhr.response));
    };
    xhr.onerror = () => reject(new ApiError(0, { error: { message: "network error" } }));
    const form = new FormData();
    form.append("purpose", purpose);
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

export async function serverConfig() {
  const response = await fetch("/playground/config.json");
  return response.json();
}
