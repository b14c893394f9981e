// What the views share: the lists they all show, and events when those change.

export const state = {
  assistants: [],
  files: [],
  stores: [],
  assistantId: "",
  threadId: "",
};

export const events = new EventTarget();

export function emit(name, detail) {
  events.dispatchEvent(new CustomEvent(name, { detail }));
}

export function on(name, handler) {
  events.addEventListener(name, (event) => handler(event.detail));
}
