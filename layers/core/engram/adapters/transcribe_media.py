"""Speech-to-text with Amazon Transcribe: the TranscriptionJobs port.

A job reads the audio/video object from the bucket and writes its transcript JSON back
to the bucket (under the task's work prefix); Transcribe announces the end of a job on
EventBridge ("Transcribe Job State Change"), which the transcript-done function hears.
`transcript_from_json` turns the transcript's word items into blocks with time spans.
"""

from __future__ import annotations

import json
import re
from typing import Any

from engram.errors import ParseError
from engram.models.parsed import TextBlock, Transcript, merge_timed_blocks
from engram.ports import JobState

# What StartTranscriptionJob accepts as MediaFormat; anything else is refused up front.
MEDIA_FORMATS = frozenset({"mp3", "mp4", "wav", "flac", "ogg", "amr", "webm", "m4a"})
SENTENCE_END = re.compile(r"[.!?。！？]$")
PAUSE_SECONDS = 1.5  # a silence this long ends a stretch of speech


class TranscribeJobs:
    def __init__(self, client: Any, *, bucket: str, language_code: str = ""):
        self._client = client  # a boto3 Transcribe client
        self._bucket = bucket
        self._language = language_code  # "": Transcribe identifies the language

    def start(self, key: str, *, job_name: str, output_key: str,
              media_format: str | None) -> bool:
        if media_format and media_format not in MEDIA_FORMATS:
            raise ParseError(
                f"Amazon Transcribe cannot read .{media_format} files; it reads "
                f"{', '.join(sorted(MEDIA_FORMATS))}")
        params: dict[str, Any] = {
            "TranscriptionJobName": job_name,
            "Media": {"MediaFileUri": f"s3://{self._bucket}/{key}"},
            "OutputBucketName": self._bucket,
            "OutputKey": output_key,
        }
        if media_format:
            params["MediaFormat"] = media_format
        if self._language:
            params["LanguageCode"] = self._language
        else:
            params["IdentifyLanguage"] = True
        try:
            self._client.start_transcription_job(**params)
        except self._client.exceptions.ConflictException:
            return False  # the name is taken: this job was started before
        return True

    def status(self, job_name: str) -> JobState:
        job = self._client.get_transcription_job(TranscriptionJobName=job_name)[
            "TranscriptionJob"]
        return JobState(job["TranscriptionJobStatus"], job.get("FailureReason"))

    def parse_transcript(self, data: bytes) -> Transcript:
        return transcript_from_json(data)


def transcript_from_json(data: bytes | str | dict) -> Transcript:
    """Transcribe's transcript file → blocks of about a minute, each with the start of
    its first word and the end of its last. Stretches end at sentence ends and pauses."""
    try:
        body = json.loads(data) if isinstance(data, (bytes, str)) else data
        items = body["results"]["items"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ParseError(f"the transcript could not be read: {exc}") from exc
    stretches: list[TextBlock] = []
    words: list[str] = []
    start = end = None
    for item in items:
        content = (item.get("alternatives") or [{}])[0].get("content", "")
        if item.get("type") == "punctuation":
            if words:
                words[-1] += content
            if words and SENTENCE_END.search(content):
                stretches.append(TextBlock(" ".join(words), start_s=start, end_s=end))
                words, start = [], None
            continue
        begin, finish = float(item["start_time"]), float(item["end_time"])
        if words and end is not None and begin - end >= PAUSE_SECONDS:
            stretches.append(TextBlock(" ".join(words), start_s=start, end_s=end))
            words, start = [], None
        words.append(content)
        start = begin if start is None else start
        end = finish
    if words:
        stretches.append(TextBlock(" ".join(words), start_s=start, end_s=end))
    seconds = max((float(i["end_time"]) for i in items if "end_time" in i), default=0.0)
    blocks = [TextBlock(b.text, start_s=round(b.start_s or 0.0, 2), end_s=round(b.end_s or 0.0, 2))
              for b in merge_timed_blocks(stretches)]
    return Transcript(blocks=blocks, seconds=seconds)
