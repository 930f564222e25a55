"""Time in search through a real `engram serve` (rule-based extraction, int8 MiniLM) over
HTTP: dates a query names count from `reference_time` and lift what was said then;
`as_of` finds the version of a fact that held at that time; bad times are 422s."""

from __future__ import annotations

import pytest
import requests
from tests.conftest import EngramServer

from engram.models.times import to_epoch_ms

pytestmark = pytest.mark.slow

WEEK = [  # (when it was said, what): Thursday 11 to Wednesday 17 September 2025
    ("2025-09-11 18:00:00", "I went to the dentist for a check-up."),
    ("2025-09-13 18:00:00", "I went to a pottery class with my sister."),
    ("2025-09-14 18:00:00", "I cleaned the garage all afternoon."),
    ("2025-09-15 18:00:00", "I cooked a big curry for dinner."),
    ("2025-09-17 18:00:00", "I played tennis with my friends."),
]
WEEK_ZH = [
    ("2025-09-15 20:00:00", "我去看电影了。"),
    ("2025-09-16 20:00:00", "我去游泳了。"),
    ("2025-09-17 09:00:00", "我在家读书。"),
]


def post(server: EngramServer, route: str, body: dict) -> dict:
    response = server.post(route, body)
    assert response.status_code == 200, response.text
    assert response.json()["code"] == 0, response.json()
    return response.json()["data"]


def add(server: EngramServer, user: str, said: list[tuple[str, str]]) -> None:
    for n, (when, text) in enumerate(said):
        data = post(server, "add/message", {
            "user_id": user, "conversation_id": f"day-{n}", "async_mode": False,
            "messages": [{"role": "user", "content": text, "chat_time": when}]})
        assert data["status"] == "completed", data


def search(server: EngramServer, user: str, query: str, **extra) -> list[dict]:
    return post(server, "search/memory", {"query": query, "user_id": user,
                                          "include_preference": True, **extra}
                )["memory_detail_list"]


def everos(server: EngramServer, route: str, body: dict) -> requests.Response:
    return requests.post(f"{server.root_url}/api/v1/{route}", json=body, timeout=60,
                         headers={"Authorization": f"Bearer {server.api_key}"})


def test_last_saturday_finds_what_was_done_that_saturday(engram_server):
    user = "time-last-saturday"
    add(engram_server, user, WEEK)
    asked = "2025-09-18T09:00:00Z"  # a Thursday: last Saturday is 13 September

    found = search(engram_server, user, "What did I do last Saturday?", reference_time=asked)
    assert "pottery" in found[0]["memory_value"], [m["memory_value"] for m in found]

    # the same question asked a year on names another Saturday: the pottery class loses
    # exactly its boost, and the Sunday's garage (the closest in words) is first again
    later = search(engram_server, user, "What did I do last Saturday?",
                   reference_time="2026-09-18")
    assert "pottery" not in later[0]["memory_value"], [m["memory_value"] for m in later]
    boosted = {m["memory_value"]: m["relativity"] for m in found}
    plain = {m["memory_value"]: m["relativity"] for m in later}
    pottery = next(v for v in boosted if "pottery" in v)
    assert boosted[pottery] - plain[pottery] == pytest.approx(0.2, abs=1e-5)
    dentist = next(v for v in boosted if "dentist" in v)
    assert boosted[dentist] == plain[dentist]  # two days before the Saturday: unchanged


def test_yesterday_in_chinese_and_epoch_ms(engram_server):
    user = "time-yesterday-zh"
    add(engram_server, user, WEEK_ZH)
    asked = to_epoch_ms("2025-09-17 21:00:00", "asked")  # epoch ms work as well
    found = search(engram_server, user, "我昨天做了什么？", reference_time=asked)
    assert "游泳" in found[0]["memory_value"], [m["memory_value"] for m in found]


def test_a_query_without_a_date_is_scored_the_same_whatever_the_reference_time(engram_server):
    user = "time-no-date"
    add(engram_server, user, WEEK)
    plain = search(engram_server, user, "Who did I play tennis with?")
    for asked in ("2025-09-18", "2030-01-01T00:00:00+02:00"):
        assert search(engram_server, user, "Who did I play tennis with?",
                      reference_time=asked) == plain


def test_as_of_finds_the_fact_as_it_stood_then(engram_server):
    user = "time-as-of"
    add(engram_server, user, [
        ("2025-01-10 09:00:00", "I love drinking coffee in the morning."),
        ("2025-03-01 09:00:00", "I went hiking in the Alps."),
        ("2025-06-01 09:00:00", "I don't like drinking coffee in the morning anymore."),
    ])

    def coffee(**extra) -> list[str]:
        found = post(engram_server, "search/memory", {
            "query": "Do I like coffee?", "user_id": user, **extra})
        return [p["preference"] for p in found["preference_detail_list"]]

    assert coffee()[0] == "The user doesn't like drinking coffee in the morning anymore."
    assert coffee(as_of="2025-03-15") == ["The user loves drinking coffee in the morning."]
    assert coffee(as_of="2025-06-02") == coffee()
    assert coffee(as_of="2025-01-01") == []  # nothing was said yet
    # asked for what was first said, the first version answers; asked plainly, the newest
    first = post(engram_server, "search/memory", {
        "query": "What did I originally say about coffee?", "user_id": user})
    assert [p["preference"] for p in first["preference_detail_list"]] == [
        "The user loves drinking coffee in the morning."]

    facts = [m["memory_value"] for m in search(engram_server, user, "hiking", as_of="2025-02-01")]
    assert not any("Alps" in v for v in facts), facts  # said on 1 March, after as_of
    facts = [m["memory_value"] for m in search(engram_server, user, "hiking", as_of="2025-03-02")]
    assert any("Alps" in v for v in facts), facts


@pytest.mark.parametrize(("field", "value", "says"), [
    ("reference_time", "last Saturday", "is not a date"),
    ("reference_time", 5_000_000_000_000, "between 1970-01-01 and 2100-01-01"),
    ("as_of", "2101-01-01", "between 1970-01-01 and 2100-01-01"),
    ("as_of", True, "must be a date"),
])
def test_a_bad_time_is_a_422_naming_the_field(engram_server, field, value, says):
    response = engram_server.post("search/memory", {"query": "q", "user_id": "time-422",
                                                    field: value})
    assert response.status_code == 422, response.text
    assert field in response.json()["message"] and says in response.json()["message"]
    response = everos(engram_server, "memories/search", {
        "filters": {"user_id": "time-422"}, "query": "q", field: value})
    assert response.status_code == 422, response.text
    assert field in response.json()["message"] and says in response.json()["message"]


def test_everos_search_takes_the_reference_time_and_as_of(engram_server):
    user = "time-everos"
    for when, text in WEEK:
        response = everos(engram_server, "memories", {
            "user_id": user, "session_id": "week", "async_mode": False,
            "messages": [{"role": "user", "content": text,
                          "timestamp": to_epoch_ms(when, "when")}]})
        assert response.status_code == 200, response.text

    def episodes(**extra) -> list[str]:
        response = everos(engram_server, "memories/search", {
            "filters": {"user_id": user}, "query": "What did I do last Saturday?", **extra})
        assert response.status_code == 200, response.text
        return [e["episode"] for e in response.json()["data"]["episodes"]]

    assert "pottery" in episodes(reference_time="2025-09-18")[0]
    # as of Friday night only Thursday's check-up was known
    assert [e for e in episodes(as_of="2025-09-12T23:00:00Z")] == [
        "The user went to the dentist for a check-up."]


def test_the_openapi_document_describes_both_extensions(engram_server):
    document = requests.get(f"{engram_server.base_url}/openapi.json", timeout=30).json()
    schemas = document["components"]["schemas"]
    for model in ("SearchRequest", "MemorySearchRequest"):
        fields = schemas[model]["properties"]
        for name in ("reference_time", "as_of"):
            assert fields[name]["description"].startswith("Engram extension."), (model, name)
