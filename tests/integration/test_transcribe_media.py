"""Amazon Transcribe (AWS profile) under moto: jobs started on the bucket's object with
the transcript written under the task's work prefix, their status, and the transcript
file (as Transcribe writes it) read into blocks with time spans."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws
from tests.fakes.aws import REGION, aws_credentials  # noqa: F401 - fixture

from engram.adapters.transcribe_media import TranscribeJobs, transcript_from_json
from engram.errors import ParseError

WORDS = [  # (start, end, word, punctuation after it)
    (0.04, 0.41, "Hello", ","), (0.41, 0.9, "team", "."),
    (1.2, 1.5, "The", ""), (1.5, 2.3, "quarterly", ""), (2.3, 2.7, "report", ""),
    (2.7, 2.9, "is", ""), (2.9, 3.3, "due", ""), (3.3, 3.9, "Friday", "."),
    (4.5, 4.9, "Maria", ""), (4.9, 5.4, "presents", ""), (5.4, 5.6, "the", ""),
    (5.6, 6.2, "numbers", ""), (6.2, 6.5, "on", ""), (6.5, 7.9, "Monday", "."),
]


def transcript_json(job_name: str, words=WORDS, offset: float = 0.0) -> dict:
    """A transcript file as Transcribe writes it: words with times, punctuation without."""
    items = []
    for start, end, word, punct in words:
        items.append({"id": len(items), "type": "pronunciation",
                      "start_time": f"{start + offset:.3f}", "end_time": f"{end + offset:.3f}",
                      "alternatives": [{"confidence": "0.998", "content": word}]})
        if punct:
            items.append({"id": len(items), "type": "punctuation",
                          "alternatives": [{"confidence": "0.0", "content": punct}]})
    text = " ".join(w for _, _, w, _ in words)
    return {"jobName": job_name, "accountId": "123456789012", "status": "COMPLETED",
            "results": {"transcripts": [{"transcript": text}], "items": items,
                        "language_code": "en-US"}}


def test_transcript_becomes_timed_blocks():
    transcript = transcript_from_json(json.dumps(transcript_json("j")).encode())

    (block,) = transcript.blocks  # short enough to be one block of about a minute
    assert block.text == ("Hello, team. The quarterly report is due Friday. "
                          "Maria presents the numbers on Monday.")
    assert (block.start_s, block.end_s) == (0.04, 7.9)
    assert transcript.seconds == 7.9


def test_long_transcripts_are_cut_into_minute_blocks_at_sentences_and_pauses():
    words = [(t * 10.0, t * 10.0 + 0.5, f"word{t}", "." if t % 3 == 2 else "")
             for t in range(15)]  # a sentence every 30 s, 150 s in all
    transcript = transcript_from_json(transcript_json("j", words))

    spans = [(b.start_s, b.end_s) for b in transcript.blocks]
    assert spans == [(0.0, 50.5), (60.0, 110.5), (120.0, 140.5)]
    assert transcript.blocks[0].text.startswith("word0 word1 word2. word3")
    assert transcript.seconds == 140.5


@pytest.mark.parametrize("body", [b"not json", b'{"results": {}}', b"[]"])
def test_unreadable_transcripts_are_parse_errors(body):
    with pytest.raises(ParseError, match="^the transcript could not be read"):
        transcript_from_json(body)


@pytest.fixture
def transcribe(aws_credentials):  # noqa: F811 - the fixture imported above
    with mock_aws():
        yield boto3.client("transcribe", region_name=REGION)


def test_start_writes_to_the_bucket_and_a_second_start_finds_the_job(transcribe):
    jobs = TranscribeJobs(transcribe, bucket="engram-ingest")

    assert jobs.start("uploads/t/u/x/standup.mp3", job_name="engram-abc",
                      output_key="work/t/task/content/m-1.transcript.json",
                      media_format="mp3") is True
    assert jobs.start("uploads/t/u/x/standup.mp3", job_name="engram-abc",
                      output_key="work/t/task/content/m-1.transcript.json",
                      media_format="mp3") is False  # a retried start: the same job

    job = transcribe.get_transcription_job(TranscriptionJobName="engram-abc")[
        "TranscriptionJob"]
    assert job["Media"] == {"MediaFileUri": "s3://engram-ingest/uploads/t/u/x/standup.mp3"}
    assert job["MediaFormat"] == "mp3"
    assert jobs.status("engram-abc").state in ("IN_PROGRESS", "COMPLETED")


def test_a_language_code_replaces_identification(transcribe):
    jobs = TranscribeJobs(transcribe, bucket="b", language_code="de-DE")
    jobs.start("k.wav", job_name="engram-de", output_key="o.json", media_format="wav")
    job = transcribe.get_transcription_job(TranscriptionJobName="engram-de")[
        "TranscriptionJob"]
    assert job["LanguageCode"] == "de-DE"


def test_formats_transcribe_cannot_read_are_refused_before_starting(transcribe):
    jobs = TranscribeJobs(transcribe, bucket="b")
    with pytest.raises(ParseError, match=r"^Amazon Transcribe cannot read \.mov files"):
        jobs.start("clip.mov", job_name="engram-mov", output_key="o.json", media_format="mov")
    assert transcribe.list_transcription_jobs()["TranscriptionJobSummaries"] == []
