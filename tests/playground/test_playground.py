"""The playground at /playground, driven in headless Chromium as a person would use it.

A live server with API keys on, the scripted model, real code in a real sandbox. It runs once,
in the SQLite run: the page only calls the public API, which the rest of the suite tests on both
databases.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.playground.conftest import KEY, Console
from tests.sandbox.conftest import SandboxServer, code_call, fresh_database
from tests.sandbox.test_quickstart import INSTRUCTIONS, SINEWAVE
from tests.support.scripted_model import Reply, ScriptedModel, ToolCall
from tests.support.server import LiveServer

pytestmark = pytest.mark.skipif(
    os.environ.get("ASSISTANTD_TEST_BACKEND") == "postgres",
    reason="the playground is a page over the public API: it runs in the SQLite run",
)

GUIDE = (
    "Lighthouse keeper's guide. The lamp must be lit thirty minutes before sunset.\n\n"
    "The fog horn sounds two long blasts every minute while visibility is under one mile."
)
Shot = Callable[[str], Path]


def connect(page: Page, live: SandboxServer, key: str = KEY) -> None:
    """Open the playground and enter the key, as its first screen asks."""
    page.goto(f"{live.api.url}/playground")
    field = page.get_by_label("API key", exact=True)
    expect(field).to_be_visible()
    field.fill(key)
    page.get_by_role("button", name="Connect", exact=True).click()
    loaded(page)


def loaded(page: Page) -> None:
    """Wait until the page has loaded what the key may see (or failed to)."""
    expect(page.locator("main")).to_have_attribute("aria-busy", "false")


def new_assistant(page: Page, name: str, *, code: bool = False, search: bool = False) -> None:
    page.get_by_role("button", name="New assistant").click()
    page.get_by_role("textbox", name="Name", exact=True).fill(name)
    page.get_by_role("textbox", name="Model", exact=True).fill("gpt-4o")
    page.get_by_role("checkbox", name="Code interpreter").set_checked(code)
    page.get_by_role("checkbox", name="File search").set_checked(search)


def save(page: Page, name: str) -> None:
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("combobox", name="Assistant")).to_contain_text(name)
    expect(page.locator("#assistant option:checked")).to_contain_text(name)


def new_thread(page: Page) -> None:
    """Start a thread and wait until it is the one shown."""
    thread = page.get_by_role("combobox", name="Thread", exact=True)
    before = thread.input_value()
    page.get_by_role("button", name="New thread").click()
    expect(thread).not_to_have_value(before)
    expect(thread).to_have_value(re.compile("^thread_"))


def send(page: Page, text: str) -> None:
    page.get_by_role("textbox", name="Message").fill(text)
    page.get_by_role("button", name="Send", exact=True).click()


def last_answer(page: Page) -> Locator:
    return page.get_by_role("log", name="Messages").get_by_role("article").last


def test_page_is_static_and_quick(live: SandboxServer, page: Page) -> None:
    served = httpx.get(f"{live.api.url}/playground")
    assert served.status_code == 200
    assert served.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in served.headers["content-security-policy"]
    assert (
        httpx.get(f"{live.api.url}/playground/main.js")
        .headers["content-type"]
        .startswith("text/javascript")
    )
    assert httpx.get(f"{live.api.url}/playground/nothing.js").status_code == 404
    assert httpx.get(f"{live.api.url}/playground/config.json").json() == {"api_key_required": True}
    page.goto(f"{live.api.url}/playground")
    expect(page.get_by_label("API key", exact=True)).to_be_visible()
    paint = page.evaluate(
        "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null"
    )
    assert paint is not None
    assert paint < 1000, f"first contentful paint after {paint} ms"


def test_sinewave_with_the_code_interpreter(
    live: SandboxServer, model: ScriptedModel, page: Page, shot: Shot
) -> None:
    connect(page, live)
    shot("connected")
    new_assistant(page, "Data Visualization", code=True)
    page.get_by_role("textbox", name="Instructions", exact=True).fill(INSTRUCTIONS)
    page.get_by_label("Temperature", exact=True).fill("0.2")
    save(page, "Data Visualization")
    shot("assistant-saved")
    (saved,) = [a for a in live.client.beta.assistants.list() if a.name == "Data Visualization"]
    assert [t.type for t in saved.tools] == ["code_interpreter"]
    assert saved.instructions == INSTRUCTIONS
    assert saved.temperature == pytest.approx(0.2)

    answer = "Here is the visualization of a sine wave: the wave from 0 to 4π."
    model.script(
        "Create a visualization of a sinewave",
        code_call(SINEWAVE),
        Reply(text=[answer[:20], answer[20:40], answer[40:]], chunk_delay=0.05),
    )
    new_thread(page)
    send(page, "Create a visualization of a sinewave")
    messages = page.get_by_role("log", name="Messages")
    expect(messages.get_by_role("article").first).to_contain_text(
        "Create a visualization of a sinewave"
    )
    answered = messages.get_by_role("article").last
    expect(answered).to_contain_text(answer, timeout=60_000)
    chart = answered.locator("img")
    expect(chart).to_have_count(1)
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 300", arg=chart.element_handle()
    )
    expect(page.locator("#run-status")).to_contain_text("completed")
    shot("chart")

    runs = page.locator("#runs details")
    expect(runs).to_have_count(1)
    expect(runs.first).to_contain_text("completed")
    runs.first.locator("summary").click()
    code = runs.first.locator("pre.code")
    expect(code).to_contain_text("y = np.sin(x)")
    expect(code).to_contain_text("plt.show()")
    expect(runs.first).to_contain_text("Usage")
    step_image = runs.first.locator("img")
    expect(step_image).to_have_count(1)
    page.wait_for_function("img => img.naturalWidth > 300", arg=step_image.element_handle())
    shot("run-steps")

    # Streaming as it arrives: the model's words show while its run is still in progress; then
    # "Cancel run" stops it.
    model.script("Keep thinking", Reply(text=["Thinking ", "about it"], hang=True))
    send(page, "Keep thinking")
    expect(messages.get_by_role("article").last).to_contain_text("Thinking about it")
    expect(page.locator("#run-status")).to_contain_text("in_progress")
    shot("streaming")
    page.get_by_role("button", name="Cancel run").click()
    expect(page.locator("#run-status")).to_contain_text("cancelled")
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_enabled()
    expect(runs).to_have_count(2)
    expect(runs.last).to_contain_text("cancelled")
    shot("cancelled")

    # Later, in a new page of the same tab: the earlier thread, picked from the list.
    thread = page.get_by_role("combobox", name="Thread", exact=True)
    thread_id = thread.input_value()
    page.reload()
    loaded(page)
    expect(page.get_by_role("combobox", name="Assistant")).to_contain_text("Data Visualization")
    expect(messages.get_by_role("article")).to_have_count(0)
    thread.select_option(thread_id)
    expect(messages.get_by_role("article")).to_have_count(4)
    expect(messages.get_by_role("article").nth(1)).to_contain_text(answer)
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 300",
        arg=messages.locator("img").first.element_handle(),
    )
    expect(runs).to_have_count(2)
    shot("earlier-thread")


def test_file_search_cites_a_passage(
    live: SandboxServer, model: ScriptedModel, page: Page, shot: Shot
) -> None:
    connect(page, live)
    page.get_by_role("button", name="Files", exact=True).click()

    # A plain upload, dropped on the page.
    page.locator("#file-drop").evaluate(
        """(zone) => {
            const data = new DataTransfer();
            data.items.add(new File(["notes for later"], "dropped.md", {type: "text/markdown"}));
            zone.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true}));
        }"""
    )
    files = page.get_by_role("table", name="Files", exact=True)
    expect(files).to_contain_text("dropped.md")
    shot("dropped")

    page.get_by_label("Vector store name", exact=True).fill("Keeper's guide")
    page.get_by_role("button", name="Create vector store").click()
    expect(page.get_by_role("combobox", name="Vector store", exact=True)).to_contain_text(
        "Keeper's guide"
    )
    page.get_by_label("Upload to vector store", exact=True).set_input_files(
        files=[{"name": "guide.txt", "mimeType": "text/plain", "buffer": GUIDE.encode()}]
    )
    expect(page.get_by_role("list", name="Uploads")).to_contain_text("added to")
    store_files = page.get_by_role("table", name="Vector store files")
    expect(store_files).to_contain_text("guide.txt")
    expect(store_files).to_contain_text("completed", timeout=60_000)
    expect(page.locator("#store-counts")).to_contain_text("1 completed")
    shot("ingested")
    (store,) = [s for s in live.client.vector_stores.list() if s.name == "Keeper's guide"]

    page.get_by_role("button", name="Assistants", exact=True).click()
    new_assistant(page, "Librarian", search=True)
    page.get_by_label("Vector stores", exact=True).select_option(store.id)
    save(page, "Librarian")
    (saved,) = [a for a in live.client.beta.assistants.list() if a.name == "Librarian"]
    assert saved.tool_resources.file_search.vector_store_ids == [store.id]  # type: ignore[union-attr]

    model.script(
        "fog horn sound",
        Reply(tool_calls=[ToolCall("file_search", json.dumps({"queries": ["fog horn"]}))]),
        Reply(text="Two long blasts every minute 【0†guide.txt】 in fog."),
    )
    new_thread(page)
    send(page, "How often does the fog horn sound?")
    answered = last_answer(page)
    expect(answered).to_contain_text("Two long blasts every minute", timeout=60_000)
    citation = answered.get_by_role("button", name=re.compile("^Citation 1"))
    expect(citation).to_have_text("[1]")
    citation.click()
    passage = page.get_by_role("complementary", name="Cited passage 1")
    expect(passage).to_contain_text("guide.txt")
    expect(passage).to_contain_text("The fog horn sounds two long blasts every minute")
    shot("citation")

    runs = page.locator("#runs details")
    runs.last.locator("summary").click()
    expect(runs.last).to_contain_text("File search")
    expect(runs.last.locator("blockquote").first).to_contain_text("fog horn")
    shot("search-step")

    page.get_by_role("button", name="Files", exact=True).click()
    page.get_by_role("button", name="Delete dropped.md").click()
    expect(files).not_to_contain_text("dropped.md")
    expect(files).to_contain_text("guide.txt")


def test_function_call_takes_the_typed_output(
    live: SandboxServer, model: ScriptedModel, page: Page, shot: Shot
) -> None:
    connect(page, live)
    new_assistant(page, "Forecaster")
    page.get_by_label(re.compile("^Functions")).fill(
        json.dumps(
            [
                {
                    "name": "get_weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                }
            ]
        )
    )
    save(page, "Forecaster")
    model.script(
        "weather in Ouagadougou",
        Reply(tool_calls=[ToolCall("get_weather", json.dumps({"city": "Ouagadougou"}))]),
        Reply(text="It is sunny in Ouagadougou."),
    )
    new_thread(page)
    send(page, "What is the weather in Ouagadougou?")
    outputs = page.get_by_role("form", name="Tool outputs")
    expect(outputs).to_be_visible(timeout=60_000)
    expect(outputs.get_by_label("Arguments of get_weather", exact=True)).to_contain_text(
        '"city": "Ouagadougou"'
    )
    expect(page.get_by_role("button", name="Cancel run")).to_be_enabled()
    shot("requires-action")
    outputs.get_by_label("Output of get_weather", exact=True).fill('{"sky": "sunny"}')
    outputs.get_by_role("button", name="Submit outputs").click()
    expect(last_answer(page)).to_contain_text("It is sunny in Ouagadougou.", timeout=60_000)
    expect(outputs).to_be_hidden()
    tool_message = next(
        m
        for body in model.requests("weather in Ouagadougou")
        for m in body["messages"]
        if m["role"] == "tool"
    )
    assert tool_message["content"] == '{"sky": "sunny"}'
    shot("answered")

    # Edit it, then delete it.
    (saved,) = [a for a in live.client.beta.assistants.list() if a.name == "Forecaster"]
    assert saved.tools[0].function.name == "get_weather"  # type: ignore[union-attr]
    page.get_by_label("Top P", exact=True).fill("0.5")
    page.get_by_label("Name", exact=True).fill("Forecaster 2")
    save(page, "Forecaster 2")
    edited = live.client.beta.assistants.retrieve(saved.id)
    assert (edited.name, edited.top_p) == ("Forecaster 2", pytest.approx(0.5))
    assert [t.type for t in edited.tools] == ["function"]
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.get_by_role("combobox", name="Assistant")).not_to_contain_text("Forecaster 2")
    assert saved.id not in [a.id for a in live.client.beta.assistants.list()]


def test_a_failed_run_shows_its_last_error(
    live: SandboxServer, model: ScriptedModel, page: Page, shot: Shot
) -> None:
    connect(page, live)
    new_assistant(page, "Unlucky")
    save(page, "Unlucky")
    model.script("bad request please", Reply(status=400, error_message="scripted refusal"))
    send(page, "bad request please")
    error = page.get_by_role("log", name="Messages").get_by_role("note", name="run error")
    expect(error).to_contain_text("scripted refusal", timeout=60_000)
    expect(page.locator("#run-status")).to_contain_text("failed")
    runs = page.locator("#runs details")
    expect(runs.last).to_contain_text("failed")
    expect(runs.last).to_contain_text("Last error")
    expect(runs.last).to_contain_text("scripted refusal")
    shot("failed")


def test_responses_mode(live: SandboxServer, model: ScriptedModel, page: Page, shot: Shot) -> None:
    connect(page, live)
    page.get_by_role("button", name="Responses", exact=True).click()
    page.get_by_label("Response model", exact=True).fill("gpt-4o")
    page.get_by_label("Input", exact=True).fill("hello from the responses tab")
    page.get_by_role("button", name="Send input").click()
    items = page.get_by_role("log", name="Output items")
    expect(items.get_by_role("article").last).to_contain_text(
        "Echo: hello from the responses tab", timeout=60_000
    )
    expect(page.locator("#r-status")).to_contain_text("completed")
    conversation = page.get_by_label("Conversation", exact=True).input_value()
    assert conversation.startswith("conv_")
    listed = httpx.get(
        f"{live.api.url}/v1/conversations/{conversation}/items",
        headers={"Authorization": f"Bearer {KEY}"},
    ).json()
    assert [item["type"] for item in listed["data"]] == ["message", "message"]
    shot("responses")

    # The code interpreter in an auto container: its code and its chart as output items.
    model.script("sinewave in a response", code_call(SINEWAVE), Reply(text="Drawn."))
    page.get_by_role("checkbox", name="Code interpreter (auto container)").check()
    page.get_by_label("Input", exact=True).fill("sinewave in a response")
    page.get_by_role("button", name="Send input").click()
    call = items.get_by_role("article", name="code_interpreter_call")
    expect(call.locator("pre.code")).to_contain_text("y = np.sin(x)", timeout=60_000)
    expect(items.get_by_role("article").last).to_contain_text("Drawn.", timeout=60_000)
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 300",
        arg=call.locator("img").element_handle(),
    )
    shot("responses-code")


def test_a_wrong_key_sees_nothing(
    live: SandboxServer, page: Page, console: Console, shot: Shot
) -> None:
    live.client.beta.assistants.create(model="gpt-4o", name="Not for strangers")
    console.expect("status of 401")  # the browser logs each refused request
    connect(page, live, key="sk-wrong-key")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Incorrect API key provided")
    options = page.get_by_role("combobox", name="Assistant").locator("option")
    expect(options).to_have_count(1)
    threads = page.get_by_role("combobox", name="Thread", exact=True).locator("option")
    expect(threads).to_have_count(1)
    expect(page.locator("body")).not_to_contain_text("Not for strangers")
    assert page.evaluate("sessionStorage.length") == 1
    assert page.evaluate("localStorage.getItem('assistantd.playground.key')") is None
    shot("refused")
    # The right key, in the same tab, sees the project's assistants.
    page.get_by_label("API key", exact=True).fill(KEY)
    page.get_by_role("button", name="Connect", exact=True).click()
    loaded(page)
    expect(page.get_by_role("combobox", name="Assistant")).to_contain_text("Not for strangers")
    expect(alert).to_be_hidden()
    new_thread(page)
    expect(threads).to_have_count(2)
    # Threads this browser remembers are the key's own: another key is not shown them.
    page.get_by_label("API key", exact=True).fill("sk-another-wrong-key")
    page.get_by_role("button", name="Connect", exact=True).click()
    loaded(page)
    expect(alert).to_contain_text("Incorrect API key provided")
    expect(threads).to_have_count(1)
    expect(options).to_have_count(1)


def test_open_mode_on_loopback_asks_for_no_key(
    chromium: str, server_env: dict[str, str], work_dir: Path, page: Page, shot: Shot
) -> None:
    env = {
        **server_env,
        "ASSISTANTD_DATABASE_URL": fresh_database(server_env["ASSISTANTD_DATABASE_URL"], work_dir),
        "ASSISTANTD_DATA_DIR": str(work_dir / "data-playground-open"),
        "ASSISTANTD_API_KEYS": "",
        "ASSISTANTD_EMBEDDED_WORKER": "false",  # listing needs no worker (nor a sandbox)
    }
    server = LiveServer(env, work_dir / "playground-open.log").start()
    try:
        created = httpx.post(
            f"{server.url}/v1/assistants", json={"model": "gpt-4o", "name": "Open house"}
        )
        assert created.status_code == 200, created.text
        assert httpx.get(f"{server.url}/playground/config.json").json() == {
            "api_key_required": False
        }
        page.goto(f"{server.url}/playground")
        loaded(page)
        expect(page.get_by_role("combobox", name="Assistant")).to_contain_text("Open house")
        expect(page.get_by_label("API key", exact=True)).to_be_hidden()
        expect(page.get_by_role("alert")).to_be_hidden()
        shot("open")
    finally:
        server.stop()


def test_a_new_assistant_saves_with_the_default_model(live: SandboxServer, page: Page) -> None:
    connect(page, live)
    page.get_by_role("button", name="New assistant").click()
    page.get_by_role("textbox", name="Name", exact=True).fill("Defaults")
    expect(page.get_by_role("textbox", name="Model", exact=True)).to_have_value("gpt-4o")
    save(page, "Defaults")  # the saved one is the one selected
    (saved,) = [a for a in live.client.beta.assistants.list() if a.name == "Defaults"]
    assert saved.model == "gpt-4o"
    assert page.locator("#assistant").input_value() == saved.id
