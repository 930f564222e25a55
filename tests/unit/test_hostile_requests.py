"""Malformed and hostile requests through the real resolver (the object Lambda and
`engram serve` both run), on the MemOS (/v1) and EverOS (/api/v1) routes: each is a 4xx
in the route's error format naming the problem, never a 500 and never a silent accept."""

from __future__ import annotations

import base64
import json

import pytest
from tests.fakes.embedder import HashingEmbedder

from engram.api.app import create_app
from engram.api.guard import MAX_JSON_DEPTH, too_deep
from engram.config import Settings
from engram.local.runtime import build_local_runtime
from engram.local.server import LambdaContext, proxy_event

JSON = {"Content-Type": "application/json"}
T0 = 1_766_041_646_311
YEAR_10000_MS = 253_402_300_800_000
ADD = {"user_id": "u", "conversation_id": "c",
       "messages": [{"role": "user", "content": "hello"}]}
EVEROS_ADD = {"user_id": "u", "messages": [{"role": "user", "timestamp": T0, "content": "hi"}]}
SEARCH = {"query": "tea", "user_id": "u"}
EVEROS_SEARCH = {"filters": {"user_id": "u"}, "query": "tea"}
SIGN = {"objectList": [{"fileId": "f1", "fileName": "a.png", "fileType": "image"}]}


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    rt = build_local_runtime(Settings(data_dir=tmp_path_factory.mktemp("hostile"),
                                      api_keys={"k": "tenant-a"}), embedder=HashingEmbedder())
    held = type("Held", (), {"start": lambda self, ref: None})
    rt.services.ingest.workflow = held()  # async adds are accepted and never processed
    yield rt
    rt.close()


@pytest.fixture(scope="module")
def send(runtime):
    app = create_app(runtime.services)

    def send(method: str, path: str, body=None, headers: dict | None = None,
             base64_body: bool = False):
        raw = body if isinstance(body, str) or body is None else json.dumps(body)
        event = proxy_event(method, path, JSON if headers is None else headers, raw,
                            "tenant-a", "127.0.0.1")
        event["isBase64Encoded"] = base64_body
        response = app.resolve(event, LambdaContext())
        headers_out = {k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()}
        headers_out.update(response.get("headers") or {})
        return response["statusCode"], headers_out, json.loads(response["body"])

    return send


def refused(answer, status: int, *named: str, path: str = "/v1/add/message") -> None:
    """The answer is `status` in the path's error format and its message names `named`."""
    got, _, body = answer
    if path.startswith("/api/v1/object/"):  # MMS: 400 for a bad request, status 2018
        assert got == (400 if status == 422 else status), body
        assert body["status"] == (2018 if status in (400, 413, 422) else status), body
        message = body["error"]
    else:
        assert got == status and body["code"] == status and body["data"] is None, body
        message = body["message"]
    for word in named:
        assert word in message, (word, message)


def nested(depth: int) -> str:
    """A JSON value `depth` levels deep: [[[...]]]."""
    return "[" * depth + "]" * depth


# --- JSON nesting -------------------------------------------------------------------------

@pytest.mark.parametrize("path, template", [
    ("/v1/add/message", '{"user_id": "u", "conversation_id": "c", "messages": [{"role": '
                        '"user", "content": %s}]}'),
    ("/v1/search/memory", '{"query": "q", "user_id": "u", "filter": {"and": [%s]}}'),
    ("/v1/get/memory", '{"user_id": "u", "filter": %s}'),
    ("/api/v1/memories", '{"user_id": "u", "messages": %s}'),
    ("/api/v1/memories/search", '{"query": "q", "filters": {"AND": %s}}'),
    ("/api/v1/object/sign", '{"objectList": %s}'),
])
def test_deep_nesting_is_refused_before_parsing(send, path, template):
    refused(send("POST", path, template % nested(10_000)), 422, "deeper than 64", path=path)


def test_nesting_limit_is_exactly_64(send):
    # the top-level object is level 1
    at_limit = '{"user_id": "u", "filter": ' + nested(MAX_JSON_DEPTH - 1) + "}"
    over = '{"user_id": "u", "filter": ' + nested(MAX_JSON_DEPTH) + "}"
    status, _, body = send("POST", "/v1/get/memory", at_limit)
    assert status == 422 and "deeper" not in body["message"]  # a filter error, not depth
    refused(send("POST", "/v1/get/memory", over), 422, "deeper than 64")


def test_brackets_inside_strings_do_not_count():
    text = json.dumps({"a": "[" * 1000 + '\\"{' * 500, "b": ["]]]"]})
    assert not too_deep(text)
    assert too_deep('{"a": "x", "b": ' + nested(64) + "}")


# --- lone surrogates (refused in every string, never normalised) ----------------------------

@pytest.mark.parametrize("path, body, where", [
    ("/v1/add/message", {**ADD, "messages": [{"role": "user", "content": "hi \udfff there"}]},
     "messages.0.content"),
    ("/v1/add/message", {**ADD, "user_id": "u\ud800"}, "user_id"),
    ("/v1/add/message", {**ADD, "info": {"scene": "x\udc00"}}, "info.scene"),
    ("/v1/add/message", {**ADD, "info": {"k\udfff": "v"}}, "info: a key"),
    ("/v1/add/feedback", {"user_id": "u", "feedback_content": "no \ud83d"}, "feedback_content"),
    ("/v1/search/memory", {**SEARCH, "query": "\udfff"}, "query"),
    ("/api/v1/memories", {**EVEROS_ADD, "messages": [
        {"role": "user", "timestamp": T0, "content": [{"type": "text", "text": "a\udfffb"}]}]},
     "messages.0.content.0.text"),
    ("/api/v1/memories/search", {**EVEROS_SEARCH, "query": "x\udfff"}, "query"),
    ("/api/v1/object/sign", {"objectList": [
        {"fileId": "f", "fileName": "a\udfff.png", "fileType": "image"}]},
     "objectList.0.fileName"),
])
def test_lone_surrogates_are_refused_naming_the_field(send, path, body, where):
    refused(send("POST", path, body), 422, where, "lone surrogate", path=path)


def test_a_raw_lone_surrogate_in_the_body_text_is_refused(send):
    raw = '{"query": "tea \udfff", "user_id": "u"}'  # not escaped: the str itself holds it
    refused(send("POST", "/v1/search/memory", raw), 422, "query", "lone surrogate")


def test_a_surrogate_pair_is_a_character_and_is_kept(send):
    body = {**ADD, "user_id": "emoji", "async_mode": False,
            "messages": [{"role": "user", "content": "I love \U0001F375 tea"}]}
    raw = json.dumps(body)  # ensure_ascii: the emoji travels as \\ud83c\\udf75
    assert "\\ud83c\\udf75" in raw
    status, _, answer = send("POST", "/v1/add/message", raw)
    assert status == 200, answer
    status, _, answer = send("POST", "/v1/get/message", {"user_id": "emoji",
                                                         "conversation_id": "c"})
    assert answer["data"]["message_detail_list"][0]["content"] == "I love \U0001F375 tea"


# --- control characters in identifiers -------------------------------------------------------

def with_at(body: dict, dotted: str, value) -> dict:
    """A deep copy of body with `value` at the dotted path."""
    out = json.loads(json.dumps(body))
    node = out
    *parents, last = dotted.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return out


@pytest.mark.parametrize("path, body, field", [
    ("/v1/add/message", ADD, "user_id"),
    ("/v1/add/message", ADD, "conversation_id"),
    ("/v1/add/message", ADD, "agent_id"),
    ("/v1/add/message", ADD, "app_id"),
    ("/v1/add/message", ADD, "messages.0.message_id"),
    ("/v1/add/message", {**ADD, "allow_knowledgebase_ids": ["kb"]}, "allow_knowledgebase_ids.0"),
    ("/v1/add/feedback", {"user_id": "u", "feedback_content": "x"}, "user_id"),
    ("/v1/search/memory", SEARCH, "user_id"),
    ("/v1/search/memory", {**SEARCH, "knowledgebase_ids": ["kb"]}, "knowledgebase_ids.0"),
    ("/v1/get/status", {"task_id": "t"}, "task_id"),
    ("/v1/retry/task", {"task_id": "t"}, "task_id"),
    ("/v1/update/memory", {"memory_id": "m", "content": "x"}, "memory_id"),
    ("/v1/delete/memory", {"memory_ids": ["m"]}, "memory_ids.0"),
    ("/v1/get/message", {"user_id": "u", "conversation_id": "c"}, "conversation_id"),
    ("/api/v1/memories", EVEROS_ADD, "user_id"),
    ("/api/v1/memories", {**EVEROS_ADD, "session_id": "s"}, "session_id"),
    ("/api/v1/memories", EVEROS_ADD, "messages.0.sender_id"),
    ("/api/v1/memories", EVEROS_ADD, "messages.0.message_id"),
    ("/api/v1/memories/group", {"group_id": "g", "messages": [
        {"role": "user", "timestamp": T0, "sender_id": "a", "content": "x"}]}, "group_id"),
    ("/api/v1/memories/agent", {**EVEROS_ADD, "messages": [
        {"role": "tool", "timestamp": T0, "tool_call_id": "c1", "content": "x"}]},
     "messages.0.tool_call_id"),
    ("/api/v1/memories/delete", {"memory_id": "m"}, "memory_id"),
    ("/api/v1/memories/delete", {"user_id": "u"}, "user_id"),
    ("/api/v1/object/sign", SIGN, "objectList.0.fileId"),
    ("/api/v1/object/sign", SIGN, "userId"),
])
@pytest.mark.parametrize("bad, code", [("u\x00ser", "U+0000"), ("line\nbreak", "U+000A"),
                                       ("del\x7f", "U+007F"), ("c1\x85", "U+0085")])
def test_control_characters_in_identifiers_are_refused(send, path, body, field, bad, code):
    answer = send("POST", path, with_at(body, field, bad))
    refused(answer, 422, field, "control characters", code, path=path)


@pytest.mark.parametrize("path, body, named", [
    ("/v1/search/memory", {**SEARCH, "filter": {"agent_id": "a\x00"}}, "agent_id"),
    ("/v1/get/memory", {"user_id": "u", "filter": {"and": [{"conversation_id": {
        "in": ["ok", "c\x00"]}}]}}, "conversation_id"),
    ("/api/v1/memories/search", {**EVEROS_SEARCH, "filters": {"user_id": "u\x00"}},
     "user_id"),
    ("/api/v1/memories/get", {"filters": {"AND": [{"user_id": "u"}, {"session_id": {
        "in": ["s", "s\x01"]}}]}, "memory_type": "episodic_memory"}, "AND.1.session_id"),
])
def test_control_characters_in_filter_identifiers_are_refused(send, path, body, named):
    refused(send("POST", path, body), 422, named, "control characters")


def test_control_characters_in_query_identifiers_are_refused(send):
    refused(send("GET", "/v1/get/status?task_id=a%00b", None, {}), 422, "task_id",
            "control characters")


def test_lone_surrogates_outside_json_are_refused_or_echoed_safely(send, runtime):
    """A query string or a path is not JSON: an API Gateway event can carry a lone
    surrogate there (`engram serve` decodes them strictly)."""
    app = create_app(runtime.services)
    event = proxy_event("GET", "/v1/get/status", {}, None, "tenant-a", "127.0.0.1")
    event["queryStringParameters"] = {"task_id": "t\udfff"}
    event["multiValueQueryStringParameters"] = {"task_id": ["t\udfff"]}
    response = app.resolve(event, LambdaContext())
    assert response["statusCode"] == 422 and "lone surrogate" in response["body"]
    status, _, body = send("GET", "/v1/no/\udfff/route", None, {})
    assert status == 404 and "\\udfff" in body["message"]


def test_unicode_identifiers_stay_accepted(send):
    status, _, body = send("POST", "/v1/get/message",
                           {"user_id": "用户-ü", "conversation_id": "会话 1"})
    assert status == 200 and body["data"]["message_detail_list"] == []


# --- Content-Type -----------------------------------------------------------------------------

@pytest.mark.parametrize("path, body", [("/v1/add/message", ADD), ("/v1/search/memory", SEARCH),
                                        ("/api/v1/memories", EVEROS_ADD),
                                        ("/api/v1/object/sign", SIGN)])
@pytest.mark.parametrize("content_type", [
    "text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
    "multipart/form-data", "multipart/form-data; boundary=x", "application/jsonx",
    "application/xml"])
def test_a_body_not_sent_as_json_is_415(send, path, body, content_type):
    answer = send("POST", path, body, {"Content-Type": content_type})
    refused(answer, 415, "application/json", content_type.split(";")[0], path=path)


@pytest.mark.parametrize("headers", [{}, {"Content-Type": "application/json; charset=utf-8"},
                                     {"content-type": "Application/JSON"}])
def test_json_without_or_with_a_parameterised_content_type_is_read(send, headers):
    status, _, body = send("POST", "/v1/search/memory", SEARCH, headers)
    assert status == 200, body


def test_a_get_without_a_body_needs_no_content_type(send):
    assert send("GET", "/v1/get/status?task_id=nope", None, {"Content-Type": "text/html"})[0] \
        == 404


# --- a body that is not a JSON object ---------------------------------------------------------

@pytest.mark.parametrize("path", ["/v1/add/message", "/v1/search/memory", "/v1/get/status",
                                  "/api/v1/memories", "/api/v1/object/sign"])
@pytest.mark.parametrize("raw, kind", [
    (json.dumps([ADD, {**ADD, "user_id": "second"}]), "an array"),
    ("[]", "an array"), ('"text"', "a string"), ("42", "a number"), ("null", "null"),
    ("true", "a boolean")])
def test_a_body_that_is_not_an_object_is_422(send, runtime, path, raw, kind):
    refused(send("POST", path, raw), 422, "must be a JSON object", kind, path=path)


def test_an_array_body_stores_nothing(send):
    send("POST", "/v1/add/message", json.dumps([{**ADD, "user_id": "arr"}] * 2))
    status, _, body = send("POST", "/v1/get/message", {"user_id": "arr", "conversation_id": "c"})
    assert status == 200 and body["data"]["message_detail_list"] == []


@pytest.mark.parametrize("raw, status, named", [
    ('{"user_id": NaN}', 400, "NaN is not a JSON value"),
    ('{"query": "x", "user_id": "u", "relativity": Infinity}', 400, "Infinity"),
    ('{"user_id": "u", "n": -Infinity}', 400, "-Infinity"),
    ('{"user_id": "u", "n": 1' + "0" * 5000 + "}", 422, "number"),
    ('{"user_id": "u",', 400, "not valid JSON"),
    ("   ", 400, "not valid JSON"),
])
def test_what_json_does_not_allow_is_refused(send, raw, status, named):
    refused(send("POST", "/v1/search/memory", raw), status, named)


def test_a_base64_body_that_is_not_utf8_is_400(send):
    raw = base64.b64encode(b'{"query": "\xff\xfe"}').decode()
    refused(send("POST", "/v1/search/memory", raw, base64_body=True), 400, "not UTF-8")
    refused(send("POST", "/v1/search/memory", "abc", base64_body=True), 400, "not UTF-8")


# --- times outside 1970-01-01 .. 2100-01-01 ---------------------------------------------------

@pytest.mark.parametrize("chat_time", [1e300, -1e20, -1, YEAR_10000_MS, "2100-01-02",
                                       "1969-12-31T23:59:59Z", "0001-01-01", -1e308, 1e308,
                                       -(10 ** 400), 10 ** 400, 4_102_444_801])
def test_chat_time_out_of_range_names_the_message(send, chat_time):
    messages = [{"role": "user", "content": f"m{i}"} for i in range(4)]
    messages[3]["chat_time"] = chat_time
    refused(send("POST", "/v1/add/message", {**ADD, "messages": messages}), 422,
            "messages.3.chat_time", "between 1970-01-01 and 2100-01-01")


@pytest.mark.parametrize("chat_time", [0, 1_700_000_000, 1_700_000_000_000, "2099-12-31",
                                       "2025-09-12 08:00:00"])
def test_chat_time_in_range_is_accepted(send, chat_time):
    body = {**ADD, "messages": [{"role": "user", "content": "x", "chat_time": chat_time}]}
    assert send("POST", "/v1/add/message", body)[0] == 200


@pytest.mark.parametrize("path, body, named", [
    ("/v1/add/feedback", {"user_id": "u", "feedback_content": "x", "feedback_time": 10 ** 16},
     "feedback_time"),
    ("/v1/search/memory", {**SEARCH, "filter": {"create_time": {"gte": 1e300}}}, "create_time"),
    ("/v1/search/memory", {**SEARCH, "filter": {"create_time": {"lt": -1e308}}}, "create_time"),
    ("/v1/add/feedback", {"user_id": "u", "feedback_content": "x", "feedback_time": -10 ** 400},
     "feedback_time"),
    ("/v1/get/memory", {"user_id": "u", "filter": {"update_time": {"lt": "9999-12-31"}}},
     "update_time"),
    ("/api/v1/memories", {**EVEROS_ADD, "messages": [
        {"role": "user", "timestamp": YEAR_10000_MS, "content": "x"}]}, "messages.0.timestamp"),
    ("/api/v1/memories/group", {"group_id": "g", "messages": [
        {"role": "user", "timestamp": -1, "sender_id": "a", "content": "x"}]},
     "messages.0.timestamp"),
    ("/api/v1/memories/search", {**EVEROS_SEARCH, "filters": {
        "user_id": "u", "timestamp": {"gte": YEAR_10000_MS}}}, "timestamp"),
])
def test_other_times_out_of_range_are_422(send, path, body, named):
    refused(send("POST", path, body), 422, named, "between 1970-01-01 and 2100-01-01",
            path=path)


# --- methods ----------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["PATCH", "OPTIONS", "HEAD", "TRACE", "PUT", "DELETE", "GET"])
@pytest.mark.parametrize("path", ["/v1/add/message", "/api/v1/memories/search"])
def test_another_method_on_a_known_route_is_405_with_allow(send, method, path):
    status, headers, body = send(method, path, ADD)
    assert status == 405 and body["code"] == 405 and body["data"] is None, body
    assert headers["Allow"] == "POST" and "allowed: POST" in body["message"]
    assert method in body["message"]


@pytest.mark.parametrize("method, path, allow", [
    ("PATCH", "/v1/get/status", "GET, POST"),
    ("DELETE", "/v1/get/memory/m1", "GET"),
    ("POST", "/api/v1/tasks/t1", "GET"),
    ("POST", "/v1/openapi.json", "GET"),
])
def test_allow_lists_the_routes_methods(send, method, path, allow):
    status, headers, body = send(method, path, None, {})
    assert status == 405 and headers["Allow"] == allow, body


def test_405_on_object_sign_is_in_mms_format(send):
    status, headers, body = send("GET", "/api/v1/object/sign", None, {})
    assert status == 405 and headers["Allow"] == "POST"
    assert body["status"] == 405 and "allowed: POST" in body["error"]


@pytest.mark.parametrize("method", ["PATCH", "GET", "POST"])
def test_an_unknown_path_is_404_whatever_the_method(send, method):
    status, headers, body = send(method, "/v1/no/such/route", {})
    assert status == 404 and body["code"] == 404 and "Allow" not in headers


# --- identifiers at their longest ------------------------------------------------------------

@pytest.mark.parametrize("char", ["0", "用", "\U0001F375"])
def test_the_longest_identifiers_are_stored_and_erased(send, char):
    """256 characters, up to 36 bytes each once percent-encoded: still within file-name and
    object-key limits (was a 500, 'File name too long')."""
    user, conversation = char * 256, "c" + char * 255
    body = {"user_id": user, "conversation_id": conversation, "async_mode": False,
            "messages": [{"role": "user", "message_id": char * 256, "content": [
                {"type": "text", "text": "my notes"},
                {"type": "file", "file": {"file_data": "aGVsbG8=", "filename": "n.txt"}}]}]}
    status, _, answer = send("POST", "/v1/add/message", body)
    assert status == 200, answer
    status, _, answer = send("POST", "/api/v1/memories", {**EVEROS_ADD, "user_id": user})
    assert status in (200, 202), answer
    status, _, answer = send("POST", "/api/v1/object/sign", {**SIGN, "userId": user})
    assert status == 200, answer
    status, _, answer = send("POST", "/v1/get/message",
                             {"user_id": user, "conversation_id": conversation})
    assert [m["content"] for m in answer["data"]["message_detail_list"]][0].startswith("my")
    status, _, answer = send("POST", "/v1/delete/memory", {"user_id": user})
    assert status == 200, answer


def test_long_segments_stay_short_and_distinct():
    from engram.models.pipeline import MAX_SEGMENT, segment

    ids = ["用" * 256, "用" * 255 + "户", "0" * 256, "0" * 200, "0" * 201, "a%~b"]
    segments = [segment(i) for i in ids]
    assert all(len(s.encode()) <= MAX_SEGMENT for s in segments)
    assert len(set(segments)) == len(ids)
    assert segment("0" * 200) == "0" * 200 and segment("a/../b") == "a%2F%2E%2E%2Fb"
