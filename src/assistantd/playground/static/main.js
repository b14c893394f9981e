// The playground's entry point: the key, the views, the first load.

import { getKey, serverConfig, setKey } from "./api.js";
import * as assistants from "./assistants.js";
import * as chat from "./chat.js";
import { $, guarded, showError } from "./dom.js";
import * as files from "./files.js";
import * as inspector from "./inspector.js";
import * as responses from "./responses.js";
import { emit } from "./state.js";

function showView(name) {
  for (const button of document.querySelectorAll("nav [data-view]")) {
    const active = button.dataset.view === name;
    button.setAttribute("aria-pressed", String(active));
    $(`#view-${button.dataset.view}`).hidden = !active;
  }
}

// Everything the key may see, afresh (after connecting with another key).
async function loadAll() {
  const main = $("main");
  main.setAttribute("aria-busy", "true");
  try {
    await guarded(async () => {
      await Promise.all([assistants.load(), files.load()]);
      emit("connected");
    });
  } finally {
    main.setAttribute("aria-busy", "false");
  }
}

// Another key: nothing the previous one saw stays on screen.
function forgetShown() {
  chat.reset();
  assistants.clear();
  files.clear();
  emit("connected");
}

async function start() {
  for (const button of document.querySelectorAll("nav [data-view]")) {
    button.addEventListener("click", () => showView(button.dataset.view));
  }
  assistants.init();
  chat.init();
  inspector.init();
  files.init();
  responses.init();

  const config = await serverConfig();
  const form = $("#key-form");
  form.hidden = !config.api_key_required;
  $("#api-key").value = getKey();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setKey($("#api-key").value.trim());
    forgetShown();
    loadAll();
  });
  $("#forget-key").addEventListener("click", () => {
    setKey("");
    $("#api-key").value = "";
    forgetShown();
  });
  if (config.api_key_required && !getKey()) {
    $("main").setAttribute("aria-busy", "false");
    showError("This server asks for an API key: enter one above.");
    $("#api-key").focus();
    return;
  }
  await loadAll();
}

start().catch(showError);
