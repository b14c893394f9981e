// Small DOM helpers shared by the views.

// h("button", {type: "button", onclick: f}, "Save"): an element with attributes and children.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (name in el && typeof value !== "string") el[name] = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

// The page's one alert region: the last error, or nothing.
export function showError(error) {
  const region = $("#error");
  if (!error) {
    region.textContent = "";
    region.hidden = true;
    return;
  }
  const message = error instanceof Error ? error.message : String(error);
  region.textContent = message;
  region.hidden = false;
  if (!(error instanceof Error && error.status)) console.warn(error);
}

// Run `fn`, showing any error it throws in the alert region.
export async function guarded(fn) {
  try {
    showError(null);
    return await fn();
  } catch (error) {
    showError(error);
    return undefined;
  }
}

export function json(value) {
  return JSON.stringify(value, null, 2);
}

export function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "";
}
