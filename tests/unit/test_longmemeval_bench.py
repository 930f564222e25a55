"""bench.longmemeval: the data loader (both layouts) and the metrics, on a tiny synthetic
question (never the eval data), with expectations worked out by hand."""

import json
import math
from types import SimpleNamespace

import bench.longmemeval as lme
import pytest
from bench.locomo import Retrieved
from bench.longmemeval import (
    dcg,
    ndcg_any,
    per_question,
    percentile,
    session_recall,
    summary,
    turn_recall_all,
)
from bench.longmemeval_data import load, select, session_of


def raw_question(qid: str = "q1", qtype: str = "single-session-assistant") -> dict:
    return {
        "question_id": qid, "question_type": qtype,
        "question": "What did you recommend for my trip?", "answer": "Kyoto",
        "question_date": "2023/05/30 (Tue) 23:42",
        "answer_session_ids": ["answer_s2"],
        "haystack_session_ids": ["s1", "answer_s2"],
        "haystack_dates": ["2023/05/20 (Sat) 00:31", "2023/05/21 (Sun) 14:05"],
        "haystack_sessions": [
            [{"role": "user", "content": "I like tea."},
             {"role": "assistant", "content": "Noted."}],
            [{"role": "user", "content": "Where should I go in Japan?", "has_answer": False},
             {"role": "assistant", "content": "Try Kyoto in spring.", "has_answer": True},
             {"role": "user", "content": "Thanks!", "has_answer": True}]],
    }


def test_a_directory_and_a_list_file_load_the_same_questions(tmp_path):
    folder = tmp_path / "dev"
    folder.mkdir()
    (folder / "2_q2.json").write_text(json.dumps(raw_question("q2", "multi-session")))
    (folder / "1_q1.json").write_text(json.dumps(raw_question("q1")))
    single = tmp_path / "longmemeval_s_cleaned.json"
    single.write_text(json.dumps([raw_question("q1"), raw_question("q2", "multi-session")]))

    from_dir, from_file = load(folder), load(single)

    assert from_dir == from_file
    assert [q.question_id for q in from_dir] == ["q1", "q2"]  # file-name order
    q = from_dir[0]
    assert q.question_date == "2023-05-30T23:42:00+00:00"
    assert [s.chat_time for s in q.sessions] == ["2023-05-20T00:31:00+00:00",
                                                  "2023-05-21T14:05:00+00:00"]
    assert [t.message_id for t in q.sessions[1].turns] == [
        "answer_s2#0", "answer_s2#1", "answer_s2#2"]
    assert [t.role for t in q.sessions[1].turns] == ["user", "assistant", "user"]
    # the assistant's answer turn is evidence too; a turn without the flag is not
    assert q.evidence_turns == ("answer_s2#1", "answer_s2#2")
    assert q.answer_session_ids == ("answer_s2",)
    assert q.sessions[1].words == 11
    assert session_of("answer_s2#1") == "answer_s2"


def test_select_leaves_out_abstention_then_filters_types_then_limits(tmp_path):
    questions = [question for raw in (raw_question("a"), raw_question("b_abs"),
                                      raw_question("d"), raw_question("c", "multi-session"))
                 for question in load(write(tmp_path, raw))]
    assert [q.question_id for q in select(questions)] == ["a", "d", "c"]
    assert [q.question_id for q in select(questions, ["single-session-assistant"])] == ["a", "d"]
    # a limit takes one of each type in turn (a, then c), not the first two (a, d)
    assert [q.question_id for q in select(questions, limit=2)] == ["a", "c"]
    assert [q.question_id for q in select(questions, limit=1)] == ["a"]
    assert [q.question_id for q in select(questions, limit=5)] == ["a", "d", "c"]
    assert [q.question_id for q in select(questions, ["multi-session"], 1)] == ["c"]
    with pytest.raises(ValueError, match="unknown question types"):
        select(questions, ["single-session"])


def write(tmp_path, raw: dict):
    path = tmp_path / f"{raw['question_id']}.json"
    path.write_text(json.dumps(raw))
    return path


def test_session_recall_any_and_all():
    assert session_recall({"A", "C"}, {"A", "B"}) == (1.0, 0.0)
    assert session_recall({"A", "B", "C"}, {"A", "B"}) == (1.0, 1.0)
    assert session_recall({"C"}, {"A", "B"}) == (0.0, 0.0)


def test_turn_recall_needs_every_evidence_turn_and_skips_questions_without_any():
    assert turn_recall_all({"s#1", "s#2", "t#0"}, {"s#1", "s#2"}) == 1.0
    assert turn_recall_all({"s#1"}, {"s#1", "s#2"}) == 0.0
    assert turn_recall_all({"s#1"}, set()) is None


def test_dcg_is_longmemevals_first_two_ranks_undiscounted():
    assert dcg([1, 1, 1]) == pytest.approx(1 + 1 + 1 / math.log2(3))


def test_ndcg_counts_an_answer_session_once_at_its_first_citation():
    # ranks 2 and 4 bring A and B (the second A gains nothing): 1/log2 2 + 1/log2 4 over
    # the ideal 1 + 1
    assert ndcg_any([{"C"}, {"A"}, {"A"}, {"B"}], {"A", "B"}, 10) == pytest.approx(0.75)
    assert ndcg_any([{"B"}, {"C"}, {"A"}], {"A"}, 10) == pytest.approx(1 / math.log2(3))
    assert ndcg_any([{"A"}, {"B"}], {"A", "B"}, 10) == 1.0
    assert ndcg_any([{"C"}, {"A"}], {"A"}, 1) == 0.0  # A is past the cut
    # one item citing both answer sessions is one relevant rank of an ideal two
    assert ndcg_any([{"A", "B"}], {"A", "B"}, 10) == pytest.approx(0.5)
    assert ndcg_any([], {"A"}, 10) == 0.0


def test_per_question_maps_cited_turns_to_sessions(tmp_path):
    q = load(write(tmp_path, raw_question()))[0]
    retrieved = [Retrieved(frozenset({"s1#0"}), 3),
                 Retrieved(frozenset({"answer_s2#1", "answer_s2#2"}), 7),
                 Retrieved(frozenset({"answer_s2#0"}), 5)]

    at1, at2 = per_question(q, retrieved, 1), per_question(q, retrieved, 2)

    assert (at1["recall_any"], at1["recall_all"], at1["turn_recall_all"]) == (0.0, 0.0, 0.0)
    assert (at1["words"], at1["sources_per_memory"], at1["ndcg_any"]) == (3, 1.0, 0.0)
    assert (at2["recall_any"], at2["recall_all"], at2["turn_recall_all"]) == (1.0, 1.0, 1.0)
    assert (at2["words"], at2["sources_per_memory"], at2["ndcg_any"]) == (10, 1.5, 1.0)


def test_summary_averages_turn_recall_over_the_questions_that_have_evidence_turns():
    rows = [{"recall_any": 1.0, "recall_all": 1.0, "turn_recall_all": 1.0, "ndcg_any": 1.0,
             "words": 10, "sources_per_memory": 1.0},
            {"recall_any": 1.0, "recall_all": 0.0, "turn_recall_all": None, "ndcg_any": 0.5,
             "words": 20, "sources_per_memory": 2.0}]
    out = summary(rows)
    assert (out["n"], out["recall_all"], out["turn_recall_all"], out["turn_n"]) == (
        2, 0.5, 1.0, 1)
    assert (out["ndcg_any"], out["words"], out["sources_per_memory"]) == (0.75, 15.0, 1.5)
    assert summary(rows, turn_level=False)["turn_recall_all"] is None


def test_percentile_is_nearest_rank():
    assert percentile([5.0, 1.0], 95) == 5.0
    assert percentile([float(i) for i in range(1, 21)], 95) == 19.0
    assert percentile([float(i) for i in range(1, 21)], 50) == 10.0


class _Search:
    def search(self, tenant, spec):
        return SimpleNamespace(facts=[], preferences=[])


@pytest.mark.parametrize("with_dates", [True, False])
def test_engram_search_sends_the_question_date_unless_asked_now(monkeypatch, with_dates):
    sent = []
    monkeypatch.setattr(lme, "search_spec", lambda req: sent.append(req) or req)
    runtime = SimpleNamespace(services=SimpleNamespace(search=_Search()))
    dates = {"lme-q1": "2023-05-30T23:42:00+00:00", "lme-q2": "2023-06-01T08:00:00+00:00"}

    lme.engram_search(runtime, 20, dates if with_dates else {})("lme-q2", "where?")

    assert (sent[0].user_id, sent[0].memory_limit_number, sent[0].preference_limit_number) == (
        "lme-q2", 20, 20)
    expected = 1_685_606_400_000 if with_dates else None  # 2023-06-01T08:00Z in epoch ms
    assert sent[0].reference_time == expected
