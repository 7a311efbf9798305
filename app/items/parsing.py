"""Turning import files (JSON Lines or a JSON array) into items, line by line, with no database involved."""

# Public API
# ----------
#   parse_jsonl(stream, options)         JSON Lines from an iterable of bytes (file lines or any chunks),
#                                        streamed: one result per non-blank line, no more held than a line.
#   parse_json_array(data, options)      a JSON array, as bytes/str or as an already-parsed list.
#   parse_record(line, record, options)  one already-parsed record.
#   iter_jsonl_lines(stream, max_bytes)  and parse_lines(lines, options): the two halves of parse_jsonl,
#                                        for callers that need to sit between splitting and parsing.
#   sniff_format(head)                   "json" when the file starts with "[", else "jsonl".
#   content_hash(prompt, texts)          the hash items are deduplicated by when they have no external_id.
#
# Every result is a ParseResult: a list[ParsedItem] for one source line (several items when the line is
# split into pairs) or a LineError. Line numbers are 1-based: the line of a JSON Lines file, or the element
# index + 1 of an array; line 0 means the document as a whole (an array file that is not valid JSON or not
# an array). Blank lines give no result. Bad input never raises: each problem becomes a LineError whose
# message is written for the admin who made the file. Batching, deduplication against stored items and
# all-or-nothing versus best-effort imports are the caller's.
#
# Line shapes, detected per line:
#   native       {"external_id"?, "prompt", "responses", "metadata"?, "gold"?}; a response is a string or
#                {"text", "model"?, "metadata"?}; a prompt is a string or a list of {"role", "content"}
#   completions  the same with "completions" for "responses" (AlpacaEval: "id" is the external_id)
#   TRL          {"prompt", "chosen", "rejected"} as strings or message lists, or whole conversations
#                in "chosen" and "rejected" with the prompt left implicit
#   HH-RLHF      {"chosen", "rejected"} holding whole "\n\nHuman: ...\n\nAssistant: ..." transcripts
# Keys a shape does not use (such as "source") go into the item's metadata; "metadata" wins on clashes.

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import combinations
from json.encoder import encode_basestring_ascii
from typing import Any, Literal, TypeAlias

import orjson

from app.json_codec import may_hold_long_integer

ROLES = ("user", "assistant", "system")
# Column widths of the items tables: checked here so a bad line gets a message, not a database error.
MAX_EXTERNAL_ID_CHARS = 200
MAX_MODEL_CHARS = 200

_UTF8_BOM = b"\xef\xbb\xbf"
# A JSON escape that decodes to NUL or to a UTF-16 surrogate: only lines containing one need the full scan.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
_HH_MARKER = re.compile(r"\n\n(Human|Assistant):")
_HH_REPLY = "\n\nAssistant:"
_HH_ROLES = {"Human": "user", "Assistant": "assistant"}
_ENVELOPE_KEYS = ("external_id", "metadata", "gold")


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """How lines become items; invalid option values are programming errors and raise ValueError."""

    pairs: Literal["none", "all"] | int = "none"
    seed: int = 0
    min_responses: int = 2
    max_responses: int = 16
    max_text_chars: int = 100_000
    max_line_bytes: int = 2_000_000

    def __post_init__(self) -> None:
        pairs_ok = self.pairs in ("none", "all") or (
            isinstance(self.pairs, int) and not isinstance(self.pairs, bool) and self.pairs >= 1
        )
        if not pairs_ok:
            raise ValueError(f'pairs must be "none", "all" or a positive integer, got {self.pairs!r}')
        if not 1 <= self.min_responses <= self.max_responses:
            raise ValueError("need 1 <= min_responses <= max_responses")
        if self.max_text_chars < 1 or self.max_line_bytes < 1:
            raise ValueError("max_text_chars and max_line_bytes must be positive")


DEFAULT_OPTIONS = ImportOptions()


@dataclass(frozen=True, slots=True)
class ParsedResponse:
    """One response; source_position is its 0-based place in the source line, kept when lines are split."""

    text: str
    model: str | None
    metadata: dict[str, Any]
    source_position: int


@dataclass(frozen=True, slots=True)
class ParsedItem:
    """One item to store.

    Pair items split from a line with more responses have external_id f"{source id}::{i}-{j}" (None when
    the line has no id), metadata["source_prompt_id"] (when it has one) and source_group, the content_hash
    the whole line would have had. content_hash covers the prompt and this item's response texts only.
    TRL and HH-RLHF rows carry metadata["source_label"] = {"chosen": 0}; it must never reach raters.
    """

    external_id: str | None
    prompt: str | list[dict[str, str]]
    responses: tuple[ParsedResponse, ...]
    metadata: dict[str, Any]
    gold: dict[str, Any] | None
    source_group: str | None
    content_hash: str


@dataclass(frozen=True, slots=True)
class LineError:
    """A line that gives no items; line 0 stands for the document as a whole."""

    line: int
    error: str


ParseResult: TypeAlias = list[ParsedItem] | LineError
Prompt: TypeAlias = str | list[dict[str, str]]


@dataclass(frozen=True, slots=True)
class _Source:
    """One valid source line before it is split into items."""

    external_id: str | None
    prompt: Prompt
    responses: tuple[ParsedResponse, ...]
    metadata: dict[str, Any]
    gold: dict[str, Any] | None


class _LineProblem(Exception):
    """Bad input in one line; parse_record turns it into that line's LineError."""


# ----------------------------------------------------------------------------------------------------------
# Entry points


def parse_jsonl(stream: Iterable[bytes], options: ImportOptions = DEFAULT_OPTIONS) -> Iterator[ParseResult]:
    """Parse JSON Lines lazily: one result per non-blank line, in order."""
    return parse_lines(iter_jsonl_lines(stream, options.max_line_bytes), options)


def parse_json_array(
    data: bytes | str | list[Any], options: ImportOptions = DEFAULT_OPTIONS
) -> Iterator[ParseResult]:
    """Parse a JSON array document; problems with the document itself come as one LineError with line 0."""
    records = data if isinstance(data, list) else _load_array(data)
    if isinstance(records, LineError):
        yield records
        return
    for index, record in enumerate(records, start=1):
        yield parse_record(index, record, options)


def parse_lines(
    lines: Iterable[tuple[int, Any] | LineError], options: ImportOptions = DEFAULT_OPTIONS
) -> Iterator[ParseResult]:
    """Parse numbered lines: bytes values are decoded as JSON, other values are taken as parsed records.

    LineErrors in the input (such as oversized lines from iter_jsonl_lines) are passed through in place.
    """
    for entry in lines:
        if isinstance(entry, LineError):
            yield entry
            continue
        line, value = entry
        if isinstance(value, bytes | bytearray):
            if not value or value.isspace():
                continue
            yield _parse_raw(line, bytes(value), options)
        else:
            yield parse_record(line, value, options)


def parse_record(line: int, record: Any, options: ImportOptions = DEFAULT_OPTIONS) -> ParseResult:
    """Parse one already-decoded record of any accepted shape."""
    return _parse_checked(line, record, options, scan=True)


def sniff_format(head: bytes) -> Literal["json", "jsonl"]:
    """Tell a JSON array from JSON Lines by the first bytes (a JSON Lines line must be an object)."""
    return "json" if head.removeprefix(_UTF8_BOM).lstrip().startswith(b"[") else "jsonl"


def content_hash(prompt: Prompt, texts: Iterable[str]) -> str:
    """sha256 of canonical JSON of the prompt and the response texts in order; no Unicode normalisation.

    Canonical JSON: json.dumps([prompt, texts], ensure_ascii=True, sort_keys=True, separators=(",", ":")).
    """
    # Built from parts: json.dumps of a lone string is encode_basestring_ascii, one C call; ASCII escapes
    # keep the form exact (every code point survives, even a lone surrogate).
    head = (
        encode_basestring_ascii(prompt)
        if isinstance(prompt, str)
        else json.dumps(prompt, sort_keys=True, separators=(",", ":"))
    )
    canonical = f"[{head},[{','.join(map(encode_basestring_ascii, texts))}]]"
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


# ----------------------------------------------------------------------------------------------------------
# Splitting a byte stream into lines


def iter_jsonl_lines(
    stream: Iterable[bytes], max_line_bytes: int = DEFAULT_OPTIONS.max_line_bytes
) -> Iterator[tuple[int, bytes] | LineError]:
    """Yield (line number, raw line) for each non-blank line; a line over max_line_bytes becomes a LineError.

    The stream may be file lines or chunks cut anywhere. An oversized line is counted but never kept, so
    memory stays within max_line_bytes plus one chunk whatever the input.
    """
    splitter = _LineSplitter(max_line_bytes)
    for chunk in stream:
        yield from splitter.feed(chunk)
    yield from splitter.finish()


class _LineSplitter:
    def __init__(self, max_line_bytes: int) -> None:
        self.max_line_bytes = max_line_bytes
        self.line_no = 0
        # The start of a line cut by a chunk boundary: its size so far, and its bytes while within the limit.
        self.size = 0
        self.buffer = bytearray()

    def feed(self, chunk: bytes) -> Iterator[tuple[int, bytes] | LineError]:
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            if self.size:
                self._take(memoryview(chunk)[start:end])
                done = self._end_line(*self._drain())
            else:
                # Whole line inside this chunk (always so for file lines): no copy into the buffer.
                done = self._end_line(chunk[start:end], end - start)
            if done is not None:
                yield done
            start = end + 1
        if start < len(chunk):
            self._take(memoryview(chunk)[start:])

    def finish(self) -> Iterator[tuple[int, bytes] | LineError]:
        if self.size and (done := self._end_line(*self._drain())) is not None:
            yield done

    def _take(self, piece: memoryview) -> None:
        self.size += len(piece)
        if self.size > self.max_line_bytes:
            self.buffer.clear()
        else:
            self.buffer += piece

    def _drain(self) -> tuple[bytes, int]:
        raw, size = bytes(self.buffer), self.size
        self.buffer.clear()
        self.size = 0
        return raw, size

    def _end_line(self, raw: bytes, size: int) -> tuple[int, bytes] | LineError | None:
        self.line_no += 1
        if size > self.max_line_bytes:
            return LineError(self.line_no, f"line is {size} bytes; the limit is {self.max_line_bytes}")
        if self.line_no == 1:
            raw = raw.removeprefix(_UTF8_BOM)
        if not raw or raw.isspace():
            return None
        return self.line_no, raw


# ----------------------------------------------------------------------------------------------------------
# Decoding


def _parse_raw(line: int, raw: bytes, options: ImportOptions) -> ParseResult:
    if len(raw) > options.max_line_bytes:
        return LineError(line, f"line is {len(raw)} bytes; the limit is {options.max_line_bytes}")
    try:
        record = _decode_line(raw)
    except UnicodeDecodeError as exc:
        return LineError(line, f"not valid UTF-8: byte {exc.start + 1} of the line cannot be decoded")
    except _LineProblem as problem:
        return LineError(line, str(problem))
    return _parse_checked(line, record, options, scan=_SUSPECT_ESCAPE.search(raw) is not None)


def _decode_line(raw: bytes) -> Any:
    """orjson for the common line; the standard decoder for the rest, and for its exact error messages.

    Whatever orjson accepts the standard decoder reads to the same value (long integers aside, which are
    routed around it), so the fast path changes speed only. Everything orjson refuses (bad JSON or UTF-8,
    NaN, numbers out of range, lone surrogates, deep nesting) is decoded again by the standard decoder,
    which accepts it or says precisely what is wrong.
    """
    if not may_hold_long_integer(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return _decode_json(raw.decode("utf-8"))


def _decode_json(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}" if exc.lineno > 1 else f"column {exc.colno}"
        raise _LineProblem(f"not valid JSON: {exc.msg} at {where}") from None
    except RecursionError:
        raise _LineProblem("not valid JSON here: nested too deeply") from None
    except ValueError as exc:
        raise _LineProblem(f"not valid JSON: {exc}") from None


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are Python extensions to JSON that the database's JSON columns refuse.
    raise ValueError(f"{name} is not allowed (JSON has no NaN or Infinity)")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise ValueError(f"the number {shown} is too large to store")
    return value


def _load_array(data: bytes | str) -> list[Any] | LineError:
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data.removeprefix("\ufeff")
        records = _decode_json(text)
    except UnicodeDecodeError as exc:
        return LineError(0, f"not valid UTF-8: byte {exc.start + 1} of the file cannot be decoded")
    except _LineProblem as problem:
        return LineError(0, str(problem))
    if not isinstance(records, list):
        hint = " (for one object per line, use JSON Lines)" if isinstance(records, dict) else ""
        return LineError(0, f"a JSON file must hold an array of items, got {_kind(records)}{hint}")
    return records


def _parse_checked(line: int, record: Any, options: ImportOptions, *, scan: bool) -> ParseResult:
    try:
        if scan and (problem := _find_unstorable(record)) is not None:
            return LineError(line, problem)
        return _build_items(_read_source(record, options), options)
    except _LineProblem as problem:
        return LineError(line, str(problem))


def _find_unstorable(record: Any) -> str | None:
    """Name the first string the database cannot store: one with NUL or with a lone UTF-16 surrogate."""
    stack: list[tuple[str, Any]] = [("", record)]
    # A stack, not recursion: nesting as deep as the JSON decoder allows must not exhaust the call stack here.
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if (problem := _string_problem(value)) is not None:
                return f"{path or 'the line'} {problem}"
        elif isinstance(value, dict):
            for key, child in reversed(value.items()):
                if isinstance(key, str) and (problem := _string_problem(key)) is not None:
                    return f"a key in {path or 'the line'} {problem}"
                stack.append((f"{path}.{key}" if path else str(key), child))
        elif isinstance(value, list):
            stack.extend((f"{path}[{index}]", child) for index, child in reversed(list(enumerate(value))))
        elif isinstance(value, float) and not math.isfinite(value):
            return f"{path or 'the line'} is {value}, which cannot be stored (JSON has no NaN or Infinity)"
    return None


def _string_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which cannot be stored"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate escape (\\ud800 to \\udfff), which is not valid Unicode"
    return None


# ----------------------------------------------------------------------------------------------------------
# Line shapes


def _read_source(record: Any, options: ImportOptions) -> _Source:
    if not isinstance(record, dict):
        raise _LineProblem(f"each item must be a JSON object, got {_kind(record)}")
    if "responses" in record or "completions" in record:
        return _read_native(record, options)
    has_chosen, has_rejected = "chosen" in record, "rejected" in record
    if has_chosen != has_rejected:
        given, missing = ("chosen", "rejected") if has_chosen else ("rejected", "chosen")
        raise _LineProblem(f'"{given}" needs "{missing}" beside it')
    if has_chosen:
        return _read_preference(record, options)
    wanted = '"responses" (or "completions", or "chosen" and "rejected")'
    raise _LineProblem(f"missing {wanted}" if "prompt" in record else f'missing "prompt" and {wanted}')


def _read_native(record: dict[str, Any], options: ImportOptions) -> _Source:
    if "responses" in record and "completions" in record:
        raise _LineProblem('give either "responses" or "completions", not both')
    key = "responses" if "responses" in record else "completions"
    prompt = _read_prompt(record["prompt"], options) if "prompt" in record else _missing("prompt")
    values = record[key]
    if not isinstance(values, list) or len(values) < options.min_responses:
        got = len(values) if isinstance(values, list) else _kind(values)
        raise _LineProblem(f'"{key}" must be a list of at least {options.min_responses} responses, got {got}')
    if len(values) > options.max_responses:
        raise _LineProblem(f'"{key}" has {len(values)} responses; the limit is {options.max_responses}')
    responses = tuple(
        [_read_response(value, key, position, options) for position, value in enumerate(values)]
    )
    return _with_envelope(record, ("prompt", key), prompt, responses, options)


def _read_preference(record: dict[str, Any], options: ImportOptions) -> _Source:
    """TRL rows (prompt, chosen, rejected) and HH-RLHF rows (two whole transcripts)."""
    chosen, rejected = record["chosen"], record["rejected"]
    if isinstance(chosen, list) or isinstance(rejected, list):
        prompt, texts = _read_trl_messages(record, options)
    elif "prompt" in record:
        prompt = _read_prompt(record["prompt"], options)
        texts = [_check_text(record[key], key, options) for key in ("chosen", "rejected")]
    else:
        prompt, texts = _read_hh(chosen, rejected, options)
    if not options.min_responses <= 2 <= options.max_responses:
        raise _LineProblem(
            f'a "chosen"/"rejected" row gives 2 responses; this import takes '
            f"{options.min_responses} to {options.max_responses}"
        )
    responses = tuple(ParsedResponse(text, None, {}, position) for position, text in enumerate(texts))
    source = _with_envelope(record, ("prompt", "chosen", "rejected"), prompt, responses, options)
    # Responses stay in source order (chosen first): raters never see this label; display order is shuffled.
    source.metadata["source_label"] = {"chosen": 0}
    return source


def _read_trl_messages(record: dict[str, Any], options: ImportOptions) -> tuple[Prompt, list[str]]:
    """TRL conversational rows: replies as one assistant message each, or whole conversations to split."""
    chosen = _read_messages(record["chosen"], "chosen", options)
    rejected = _read_messages(record["rejected"], "rejected", options)
    if len(chosen) == 1 and len(rejected) == 1:
        if "prompt" not in record:
            raise _LineProblem(
                'without "prompt", "chosen" and "rejected" must be whole conversations: '
                "the shared turns, then one assistant reply each"
            )
        texts = [
            _reply_text(messages[0], f"{key}[0]")
            for messages, key in ((chosen, "chosen"), (rejected, "rejected"))
        ]
        return _read_prompt(record["prompt"], options), texts
    prompt = _shared_prompt(chosen, rejected)
    given = _read_prompt(record["prompt"], options) if record.get("prompt") is not None else None
    # A string "prompt" beside whole conversations (UltraFeedback) repeats the user turn, as TRL assumes.
    if isinstance(given, list) and given != prompt:
        raise _LineProblem('"prompt" does not match the conversation shared by "chosen" and "rejected"')
    return prompt, [_reply_text(chosen[-1], "chosen[-1]"), _reply_text(rejected[-1], "rejected[-1]")]


def _shared_prompt(chosen: list[dict[str, str]], rejected: list[dict[str, str]]) -> list[dict[str, str]]:
    if len(chosen) < 2 or len(rejected) < 2 or chosen[:-1] != rejected[:-1]:
        raise _LineProblem(
            '"chosen" and "rejected" must share every message but the last assistant reply '
            '(or give the shared part as "prompt" and one reply each)'
        )
    prompt = chosen[:-1]
    if prompt[-1]["role"] != "user":
        raise _LineProblem(
            f'the conversation shared by "chosen" and "rejected" ends with a {prompt[-1]["role"]} turn, '
            "not a user turn"
        )
    return prompt


def _reply_text(message: dict[str, str], field: str) -> str:
    if message["role"] != "assistant":
        raise _LineProblem(f'{field} must be an assistant message, got role "{message["role"]}"')
    if not message["content"].strip():
        raise _LineProblem(f"{field}.content is empty")
    return message["content"]


def _read_hh(chosen: Any, rejected: Any, options: ImportOptions) -> tuple[Prompt, list[str]]:
    """HH-RLHF: the turns both transcripts share are the prompt; what follows them, the two replies.

    Splitting at the shared prefix, not at each transcript's last marker, follows TRL's own HH script: some
    replies contain text that looks like further turns, and it belongs to the reply.
    """
    chosen_text, rejected_text = _hh_transcript(chosen, "chosen"), _hh_transcript(rejected, "rejected")
    shared = chosen_text[: _common_prefix_length(chosen_text, rejected_text)]
    cut = shared.rfind(_HH_REPLY)
    prompt = _hh_turns(chosen_text[:cut], options) if cut > 0 else []
    replies = [text[cut + len(_HH_REPLY) :] for text in (chosen_text, rejected_text)]
    # A later Human turn inside a reply means the transcripts part before it, not at the final reply.
    if not prompt or prompt[-1]["role"] != "user" or any("\n\nHuman:" in reply for reply in replies):
        raise _LineProblem(
            '"chosen" and "rejected" must share a conversation ending in a Human turn, '
            "and differ only in the final Assistant reply"
        )
    return prompt, [
        # HH-RLHF holds a few empty final replies; they are real data (the assistant said nothing), so kept.
        _check_text(reply.strip(), f'the final Assistant reply in "{key}"', options, allow_blank=True)
        for key, reply in zip(("chosen", "rejected"), replies, strict=True)
    ]


def _hh_transcript(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise _LineProblem(f'"{key}" must be a string or a list of messages, got {_kind(value)}')
    text = "\n\n" + value.lstrip("\n")
    if not text.startswith("\n\nHuman:"):
        raise _LineProblem(
            f'without "prompt", "{key}" must be a whole HH-RLHF transcript '
            '("Human: ...", then "Assistant: ...")'
        )
    return text


def _hh_turns(transcript: str, options: ImportOptions) -> list[dict[str, str]]:
    parts = _HH_MARKER.split(transcript)
    # ["", role, content, role, content, ...]: the transcript starts with a marker, so parts[0] is empty.
    messages = []
    for turn, (role, content) in enumerate(zip(parts[1::2], parts[2::2], strict=True), start=1):
        text = _check_text(content.strip(), f"turn {turn} of the conversation", options, allow_blank=True)
        messages.append({"role": _HH_ROLES[role], "content": text})
    return messages


def _common_prefix_length(a: str, b: str) -> int:
    # Binary search over slice comparisons: C-speed even for the longest texts allowed.
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


# ----------------------------------------------------------------------------------------------------------
# Fields


def _with_envelope(
    record: dict[str, Any],
    shape_keys: tuple[str, ...],
    prompt: Prompt,
    responses: tuple[ParsedResponse, ...],
    options: ImportOptions,
) -> _Source:
    """Add the fields every shape shares: external_id, metadata (with unused keys) and gold."""
    external_id, id_key = _read_external_id(record)
    used = {*shape_keys, *_ENVELOPE_KEYS, id_key}
    metadata = {key: value for key, value in record.items() if key not in used}
    explicit = record.get("metadata")
    if explicit is not None and not isinstance(explicit, dict):
        raise _LineProblem(f'"metadata" must be an object, got {_kind(explicit)}')
    metadata.update(explicit or {})
    return _Source(external_id, prompt, responses, metadata, _read_gold(record.get("gold"), options))


def _read_external_id(record: dict[str, Any]) -> tuple[str | None, str | None]:
    for key in ("external_id", "id"):
        value = record.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise _LineProblem(f'"{key}" must be a string or an integer, got {_kind(value)}')
        text = str(value)
        if not text.strip():
            raise _LineProblem(f'"{key}" is empty')
        if len(text) > MAX_EXTERNAL_ID_CHARS:
            raise _LineProblem(f'"{key}" is {len(text)} characters; the limit is {MAX_EXTERNAL_ID_CHARS}')
        return text, key
    return None, None


def _read_prompt(value: Any, options: ImportOptions) -> Prompt:
    if isinstance(value, str):
        return _check_text(value, "prompt", options)
    if not isinstance(value, list):
        raise _LineProblem(f"prompt must be a string or a list of messages, got {_kind(value)}")
    messages = _read_messages(value, "prompt", options)
    if not any(message["content"].strip() for message in messages):
        raise _LineProblem("prompt has no message with any content")
    return messages


def _read_messages(value: Any, field: str, options: ImportOptions) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise _LineProblem(f"{field} must be a list of messages, got {_kind(value)}")
    if not value:
        raise _LineProblem(f"{field} is an empty list of messages")
    return [_read_message(message, f"{field}[{index}]", options) for index, message in enumerate(value)]


def _read_message(value: Any, field: str, options: ImportOptions) -> dict[str, str]:
    # Keys other than role and content (name, tool calls) are dropped: items hold plain chat turns.
    if not isinstance(value, dict):
        raise _LineProblem(f'{field} must be an object with "role" and "content", got {_kind(value)}')
    for key in ("role", "content"):
        if key not in value:
            raise _LineProblem(f'{field} has no "{key}"')
    role = value["role"]
    if role not in ROLES:
        raise _LineProblem(f'unknown role {_show(role)} in {field}; expected "user", "assistant" or "system"')
    content = _check_text(value["content"], f"{field}.content", options, allow_blank=True)
    return {"role": role, "content": content}


def _read_response(value: Any, key: str, position: int, options: ImportOptions) -> ParsedResponse:
    """One response, read by the short way when it is a plain string or {"text", "model"?} that passes
    every check, else by _read_full_response, which names the field ("responses[1]") in its errors."""
    if isinstance(value, str):
        if _text_fits(value, options):
            return ParsedResponse(value, None, {}, position)
    elif isinstance(value, dict):
        text, model = value.get("text"), value.get("model")
        plain = len(value) == (2 if "model" in value else 1)
        model_fits = model is None or (isinstance(model, str) and len(model) <= MAX_MODEL_CHARS)
        if plain and model_fits and isinstance(text, str) and _text_fits(text, options):
            return ParsedResponse(text, model or None, {}, position)
    return _read_full_response(value, f"{key}[{position}]", position, options)


def _read_full_response(value: Any, field: str, position: int, options: ImportOptions) -> ParsedResponse:
    if isinstance(value, str):
        return ParsedResponse(_check_text(value, field, options), None, {}, position)
    if not isinstance(value, dict):
        raise _LineProblem(f'{field} must be an object with "text" (or a string), got {_kind(value)}')
    if "text" not in value:
        raise _LineProblem(f'{field} has no "text"')
    text = _check_text(value["text"], f"{field}.text", options)
    model = value.get("model")
    if model is not None and not isinstance(model, str):
        raise _LineProblem(f"{field}.model must be a string, got {_kind(model)}")
    if model is not None and len(model) > MAX_MODEL_CHARS:
        raise _LineProblem(f"{field}.model is {len(model)} characters; the limit is {MAX_MODEL_CHARS}")
    explicit = value.get("metadata")
    if explicit is not None and not isinstance(explicit, dict):
        raise _LineProblem(f"{field}.metadata must be an object, got {_kind(explicit)}")
    metadata = {key: extra for key, extra in value.items() if key not in ("text", "model", "metadata")}
    metadata.update(explicit or {})
    return ParsedResponse(text, model or None, metadata, position)


def _read_gold(value: Any, options: ImportOptions) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _LineProblem(f'"gold" must be an object with "answers" and "explanation", got {_kind(value)}')
    unknown = sorted(str(key) for key in value if key not in ("answers", "explanation"))
    if unknown:
        names = ", ".join(_show(key) for key in unknown)
        raise _LineProblem(f'"gold" has unknown key(s) {names}; expected "answers" and "explanation"')
    answers = value.get("answers")
    if not isinstance(answers, dict) or not answers:
        raise _LineProblem('"gold.answers" must be an object mapping each question to its answer')
    explanation = _check_text(value.get("explanation", ""), '"gold.explanation"', options, allow_blank=True)
    return {"answers": answers, "explanation": explanation}


def _text_fits(value: str, options: ImportOptions) -> bool:
    """What _check_text accepts of a string that may not be blank (isspace tests the same characters as
    strip, without copying the text)."""
    return len(value) <= options.max_text_chars and bool(value) and not value.isspace()


def _check_text(value: Any, field: str, options: ImportOptions, *, allow_blank: bool = False) -> str:
    if not isinstance(value, str):
        raise _LineProblem(f"{field} must be a string, got {_kind(value)}")
    if len(value) > options.max_text_chars:
        raise _LineProblem(f"{field} is {len(value)} characters; the limit is {options.max_text_chars}")
    if not allow_blank and not value.strip():
        raise _LineProblem(f"{field} is empty")
    return value


def _missing(key: str) -> Any:
    raise _LineProblem(f'missing "{key}"')


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    names = {str: "a string", int: "a number", float: "a number", list: "a list", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    shown = json.dumps(value, ensure_ascii=False, default=repr)
    return shown if len(shown) <= 40 else shown[:37] + "..."


# ----------------------------------------------------------------------------------------------------------
# Items and pairs


def _build_items(source: _Source, options: ImportOptions) -> list[ParsedItem]:
    texts = [response.text for response in source.responses]
    digest = content_hash(source.prompt, texts)
    pairs = _pick_pairs(len(texts), digest, options)
    if pairs is None:
        return [
            ParsedItem(
                source.external_id,
                source.prompt,
                source.responses,
                source.metadata,
                source.gold,
                None,
                digest,
            )
        ]
    if source.gold is not None:
        raise _LineProblem(
            f'this line has "gold" and {len(texts)} responses, but this import splits such lines into pairs, '
            "which the gold answers cannot follow; give gold items exactly 2 responses"
        )
    return [_pair_item(source, digest, first, second) for first, second in pairs]


def _pick_pairs(count: int, digest: str, options: ImportOptions) -> list[tuple[int, int]] | None:
    """The (i, j) response pairs to make items of, or None to keep the line as one item."""
    if options.pairs == "none" or count <= 2:
        return None
    every = list(combinations(range(count), 2))
    if options.pairs == "all" or options.pairs >= len(every):
        return every
    # Seeded by the content, not by file position: re-importing or reordering a file picks the same pairs.
    chooser = random.Random(f"{options.seed}:{digest}")
    return sorted(chooser.sample(every, options.pairs))


def _pair_item(source: _Source, source_hash: str, first: int, second: int) -> ParsedItem:
    responses = (source.responses[first], source.responses[second])
    metadata = dict(source.metadata)
    external_id = None
    if source.external_id is not None:
        external_id = f"{source.external_id}::{first}-{second}"
        metadata["source_prompt_id"] = source.external_id
        if len(external_id) > MAX_EXTERNAL_ID_CHARS:
            raise _LineProblem(
                f'pair id "{external_id}" is {len(external_id)} characters; '
                f"the limit is {MAX_EXTERNAL_ID_CHARS} (shorten the external_id)"
            )
    digest = content_hash(source.prompt, [response.text for response in responses])
    return ParsedItem(external_id, source.prompt, responses, metadata, None, source_hash, digest)
