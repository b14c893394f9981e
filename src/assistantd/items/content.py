"""Message content between the two API surfaces.

Items store a message's content once, in the Assistants wire shape (`text` parts with their
annotations, `image_file`, `image_url`, `refusal`), plus `input_file` parts, which only the
Responses API has. These functions turn Responses parts into that shape and back.
"""

from __future__ import annotations

from typing import Any

from assistantd.items.schemas import InputFile, InputImage, InputText, OutputText, Refusal

Part = InputText | InputImage | InputFile | OutputText | Refusal


def stored_part(part: Part) -> dict[str, Any]:
    """A Responses content part (input or output) in the stored shape."""
    if isinstance(part, InputText):
        return {"type": "text", "text": {"value": part.text, "annotations": []}}
    if isinstance(part, OutputText):
        annotations = [stored_annotation(a, part.text) for a in part.annotations]
        return {"type": "text", "text": {"value": part.text, "annotations": annotations}}
    if isinstance(part, Refusal):
        return {"type": "refusal", "refusal": part.refusal}
    if isinstance(part, InputImage):
        detail = part.detail or "auto"
        if part.file_id is not None:
            return {"type": "image_file", "image_file": {"file_id": part.file_id, "detail": detail}}
        return {"type": "image_url", "image_url": {"url": part.image_url, "detail": detail}}
    spec = part.model_dump(exclude={"type"}, exclude_none=True)
    return {"type": "input_file", "input_file": spec}


def stored_text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": {"value": text, "annotations": []}}


def input_parts(content: list[dict[str, Any]], include: frozenset[str]) -> list[dict[str, Any]]:
    """A user, system or developer message's stored content as Responses input parts."""
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = part["type"]
        if kind == "text":
            parts.append({"type": "input_text", "text": part["text"]["value"]})
        elif kind == "image_file":
            image = part["image_file"]
            parts.append(
                {
                    "type": "input_image",
                    "detail": image.get("detail") or "auto",
                    "file_id": image["file_id"],
                    "image_url": None,
                }
            )
        elif kind == "image_url":
            image = part["image_url"]
            parts.append(
                {
                    "type": "input_image",
                    "detail": image.get("detail") or "auto",
                    "file_id": None,
                    "image_url": image["url"],
                }
            )
        elif kind == "input_file":
            spec = dict(part["input_file"])
            parts.append({"type": "input_file", **spec})
    return parts


def output_parts(
    content: list[dict[str, Any]], files: dict[str, str], *, logprobs: bool = False
) -> list[dict[str, Any]]:
    """An assistant message's stored content as Responses output parts. `files` names the
    files its citations point to (file id -> filename); `logprobs`: show the tokens' log
    probabilities stored with the text. Images a code interpreter made belong to its call item
    on this surface, not to the message."""
    parts: list[dict[str, Any]] = []
    for part in content:
        if part["type"] == "text":
            text = part["text"]
            parts.append(
                {
                    "type": "output_text",
                    "annotations": [
                        wire_annotation(a, files) for a in text.get("annotations") or []
                    ],
                    "logprobs": (text.get("logprobs") or []) if logprobs else [],
                    "text": text["value"],
                }
            )
        elif part["type"] == "refusal":
            parts.append({"type": "refusal", "refusal": part["refusal"]})
    return parts


def cited_files(content: list[dict[str, Any]]) -> set[str]:
    """The files an assistant message's annotations point to."""
    found: set[str] = set()
    for part in content:
        if part["type"] == "text":
            for annotation in part["text"].get("annotations") or []:
                inner = annotation.get(annotation["type"])
                if isinstance(inner, dict) and inner.get("file_id"):
                    found.add(inner["file_id"])
    return found


def wire_annotation(annotation: dict[str, Any], files: dict[str, str]) -> dict[str, Any]:
    """A stored (Assistants) annotation as the Responses API writes it."""
    kind = annotation["type"]
    if kind == "file_citation":
        file_id = annotation["file_citation"]["file_id"]
        return {
            "type": "file_citation",
            "file_id": file_id,
            "filename": files.get(file_id, annotation.get("filename", "")),
            "index": annotation["end_index"],
        }
    if kind == "file_path":
        cited = annotation.get("container_file")
        if cited is not None:
            return {
                "type": "container_file_citation",
                "container_id": cited["container_id"],
                "file_id": cited["file_id"],
                "filename": cited["filename"],
                "start_index": annotation["start_index"],
                "end_index": annotation["end_index"],
            }
        file_id = annotation["file_path"]["file_id"]
        return {"type": "file_path", "file_id": file_id, "index": annotation["start_index"]}
    if kind == "url_citation":
        return {
            "type": "url_citation",
            "url": annotation["url_citation"]["url"],
            "title": annotation["url_citation"].get("title", ""),
            "start_index": annotation["start_index"],
            "end_index": annotation["end_index"],
        }
    inner = annotation.get(kind) or {}
    return {"type": kind, **inner, **{k: v for k, v in annotation.items() if k != kind}}


def stored_annotation(annotation: dict[str, Any], text: str) -> dict[str, Any]:
    """A Responses annotation (a replayed output's) in the stored shape."""
    kind = annotation.get("type")
    if kind in ("file_citation", "file_path") and "file_id" in annotation:
        index = int(annotation.get("index") or 0)
        stored: dict[str, Any] = {
            "type": kind,
            "text": "",
            "start_index": index,
            "end_index": index,
            kind: {"file_id": annotation["file_id"]},
        }
        if annotation.get("filename"):
            stored["filename"] = annotation["filename"]
        return stored
    if kind == "url_citation":
        start, end = int(annotation.get("start_index") or 0), int(annotation.get("end_index") or 0)
        return {
            "type": kind,
            "text": text[start:end],
            "start_index": start,
            "end_index": end,
            kind: {"url": annotation.get("url", ""), "title": annotation.get("title", "")},
        }
    return dict(annotation)
