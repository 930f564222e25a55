"""Non-text items without a server: MemOS parts → items, the accept-time checks (URLs,
sizes, counts), passages and provenance of parsed text, agent trajectories, and the
EverOS filter language."""

from __future__ import annotations

import base64

import pytest

from engram.api.everos.translate import compile_scope
from engram.api.memos.translate import memos_items
from engram.config import Limits
from engram.errors import PayloadTooLarge, Unprocessable
from engram.extraction.documents import add_locations, passages
from engram.extraction.images import image_description, image_turns
from engram.extraction.trajectories import trajectory_candidates
from engram.models.content import ItemInput, ItemStatus, TextBlockRef
from engram.models.domain import Candidate, MemoryType, MessageRecord, Role
from engram.models.pipeline import IngestJob, ToolCallRecord
from engram.services.attachments import AttachmentIntake
from engram.services.uploads import UploadService
from engram.services.url_policy import SsrfPolicy

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 20


@pytest.mark.parametrize("url, allow, refused", [
    ("https://cdn.example.com/a.png", [], None),
    ("http://127.0.0.1:8080/a.png", [], "loopback"),
    ("http://10.0.0.5/a.png", [], "private"),
    ("http://[::1]/a.png", [], "loopback"),
    ("http://[::ffff:192.168.1.1]/a.png", [], "private"),
    ("http://169.254.10.10/a.png", [], "link-local"),
    ("http://localhost:9000/a.png", [], "local machine"),
    ("http://169.254.169.254/latest/meta-data", ["169.254.169.254"], "metadata"),
    ("http://metadata.google.internal/", ["metadata.google.internal"], "metadata"),
    ("http://127.0.0.1:8080/a.png", ["127.0.0.1:8080"], None),
    ("http://127.0.0.1:8081/a.png", ["127.0.0.1:8080"], "loopback"),
    ("http://127.0.0.1:8081/a.png", ["127.0.0.1"], None),
    ("ftp://example.com/a.png", [], "only http and https"),
])
def test_fetch_refusal(url, allow, refused):
    reason = SsrfPolicy(allow).url_refusal(url)
    assert (reason is None) if refused is None else (refused in reason), reason


def test_memos_parts_become_items():
    encoded = base64.b64encode(PNG).decode()
    items = memos_items(0, [
        {"type": "text", "text": "hi"},
        {"type": "image_url", "image_url": {"url": "https://cdn.example.com/img/a%20b.png"}},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{encoded}"}},
        {"type": "file", "file": {"file_data": base64.b64encode(b"%PDF-1.4").decode(),
                                  "file_name": "r.pdf"}},
        {"type": "file", "file": {"file_data": "https://cdn.example.com/file/MemOS 2.pdf"}},
    ])
    assert [(i.where, i.type) for i in items] == [
        ("messages[0].content[1].image_url.url", "image"),
        ("messages[0].content[2].image_url.url", "image"),
        ("messages[0].content[3].file.file_data", "file"),
        ("messages[0].content[4].file.file_data", "file")]
    assert items[0].url and items[0].name == "a b.png"
    assert items[1].data == PNG and items[1].content_type == "image/png"
    assert items[1].name == "image.png"
    assert items[2].data == b"%PDF-1.4" and items[2].name == "r.pdf"
    assert items[3].name == "MemOS 2.pdf"


@pytest.mark.parametrize("part, message", [
    ({"type": "image_url", "image_url": {"url": "not a url"}}, "http(s) URL or a data:image"),
    ({"type": "image_url", "image_url": {"url": "data:text/html;base64,PGI+"}}, "not an image"),
    ({"type": "file", "file": {"file_data": "%%% not base64 %%%"}}, "not base64"),
    ({"type": "image_url", "image_url": {"url": "data:image/png,raw"}}, "data:<type>;base64"),
])
def test_bad_parts_name_where_they_are(part, message):
    with pytest.raises(Unprocessable) as error:
        memos_items(2, [part])
    assert error.value.message.startswith("messages[2].content[0].") and message in str(error.value)


class NoStore:
    def head(self, key):
        return None


def intake(limits: Limits | None = None) -> AttachmentIntake:
    limits = limits or Limits()
    return AttachmentIntake(UploadService(None, NoStore(), limits), limits)


def test_accept_stores_inline_content_beside_the_request():
    item = ItemInput(where="messages[0].content[3]", type="image", data=PNG, name="a.png")
    accepted = intake().accept("t", "u", "task", [("m1", item)])
    (content,) = accepted.items
    assert content.index == 3 and content.ref == "m1#item=3"
    assert content.key == "requests/t/u/task/items/m1-3" and accepted.blobs == [(content.key, PNG)]
    assert accepted.statuses[0].state == "waiting" and accepted.statuses[0].uri == content.key


def test_accept_limits():
    small = Limits(max_image_bytes=10, max_files_per_request=2)
    with pytest.raises(PayloadTooLarge, match="limit for images is 10 bytes"):
        intake(small).accept("t", "u", "task", [
            ("m", ItemInput(where="w", type="image", data=PNG))])
    with pytest.raises(Unprocessable, match="3 files or other non-text items; the limit is 2"):
        intake(small).accept("t", "u", "task", [
            ("m", ItemInput(where=f"messages[0].content[{i}]", type="file", data=b"x"))
            for i in range(3)])
    with pytest.raises(Unprocessable, match="loopback"):
        intake().accept("t", "u", "task", [
            ("m", ItemInput(where="w", type="image", url="http://127.0.0.1/a.png"))])


# --- parsed text ------------------------------------------------------------------------

def block(text: str, page: int | None = 1, **extra) -> TextBlockRef:
    return TextBlockRef(message_id="m1", index=2, item_type="pdf", kind="pdf", name="r.pdf",
                        location="uploads/t/anon/1/r.pdf", text=text, page=page, **extra)


def test_provenance_forms():
    assert block("x", page=2).ref == "m1#item=2&page=2"
    assert block("x", page=2).location_ref == "uploads/t/anon/1/r.pdf#page=2"
    timed = block("x", page=None, start_s=12.5, end_s=30.0)
    assert timed.ref == "m1#item=2&t=12.5,30" and timed.location_ref.endswith("#t=12.5,30")
    assert block("x", page=None).ref == "m1#item=2"


def test_passages_keep_pages_apart_and_split_long_text():
    sentence = "The quarterly numbers are in. " * 60  # ~1,800 characters
    found = passages([block("Intro.", 1), block("More intro.", 1), block("Page two.", 2),
                      block(sentence.strip(), 3)])
    assert [[b.text for b in p] for p in found[:2]] == [["Intro.", "More intro."], ["Page two."]]
    long_parts = found[2:]
    assert len(long_parts) == 2 and all(p[0].page == 3 for p in long_parts)
    assert all(len(p[0].text) <= 900 for p in long_parts)


def test_image_turns_follow_their_message_in_its_speakers_voice():
    message = MessageRecord(tenant_id="t", user_id="u", conversation_id="c", message_id="m1",
                            seq=0, role=Role.user, text="Look at this", speaker="Alice")
    status = ItemStatus(message_id="m1", index=1, type="image", name="a.png",
                        state="completed", kind="image")
    image = TextBlockRef(message_id="m1", index=1, item_type="image", kind="image",
                         name="a.png", location="k", text="Gate B12 [closes] 9:40")
    turns = image_turns([message], [image], [status])
    assert [t.message_id for t in turns] == ["m1", "m1#item=1"]
    assert turns[1].text == '[image: text reading "Gate B12 (closes) 9:40"]'
    assert turns[1].speaker == "Alice" and turns[1].role == Role.user
    assert image_description("", "a.png") == "a.png (no text in it)"


def test_sources_gain_the_object_key_and_page():
    candidate = Candidate(memory_type=MemoryType.long_term, memory_key="k", memory_value="v",
                          sources=["m1#item=2&page=3", "m0"])
    add_locations([candidate], [block("x", 3)], [])
    assert candidate.sources == ["m1#item=2&page=3", "m0", "uploads/t/anon/1/r.pdf#page=3"]


# --- agent trajectories -----------------------------------------------------------------

def test_tool_calls_become_a_case_and_a_skill():
    def record(i: int, role: Role, text: str) -> MessageRecord:
        return MessageRecord(tenant_id="t", user_id="u", conversation_id="c",
                             message_id=f"m{i}", seq=i, role=role, text=text, chat_time=i)

    job = IngestJob(task_id="x", tenant_id="t", user_id="u", conversation_id="c", kind="agent",
                    messages=[record(0, Role.user, "Book a table for two tonight"),
                              record(1, Role.assistant, ""),
                              record(2, Role.tool, "Booked at 19:30, table 4"),
                              record(3, Role.assistant, "Done: 19:30, table 4.")],
                    tool_calls=[ToolCallRecord(message_id="m1", call_id="c1", name="book",
                                               arguments='{"people": 2, "time": "tonight"}',
                                               result_message_id="m2")])
    case, skill = trajectory_candidates(job.messages, job.tool_calls)
    assert case.memory_type == MemoryType.tool_trajectory
    assert case.memory_key == "Book a table for two tonight"
    assert case.memory_value == ('1. book({"people":2,"time":"tonight"}) → Booked at 19:30, '
                                 "table 4 Answer: Done: 19:30, table 4.")
    assert case.sources == ["m0", "m1", "m2"]
    assert (skill.memory_type, skill.memory_value) == (MemoryType.tool_schema,
                                                       "Tool book takes people, time.")


# --- EverOS filters ----------------------------------------------------------------------

def test_everos_filters_choose_partitions_and_sessions():
    scope = compile_scope({"AND": [{"user_id": {"in": ["a", "b"]}},
                                   {"session_id": "s1"}, {"timestamp": {"gte": 1000}}],
                           "unknown": 1})
    assert scope.partitions == ["a", "b"] and not scope.is_group
    assert scope.sessions.all_of[0].all_of[0].value == "s1"
    assert [(c.op, c.value) for c in scope.times] == [("gte", 1000 * 1000)]
    group = compile_scope({"group_id": "g1", "OR": [{"session_id": "x"}, {"session_id": "y"}]})
    assert group.partitions == ["group:g1"] and group.is_group
    with pytest.raises(Unprocessable, match="user_id or group_id"):
        compile_scope({"session_id": "s"})
    with pytest.raises(Unprocessable, match="unknown operator"):
        compile_scope({"user_id": "u", "timestamp": {"after": 1}})
