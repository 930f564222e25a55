"""Scale benchmark: search latency and ingest throughput as one user's memories grow.

    python -m bench.scale --memories 10000,100000 --tenants 20 --queries 200 --out bench/results/

For each size N the target user holds N memories and the other users of `--tenants`
tenants hold `--others` × N more between them, so the index's (tenant, user) partitions
are exercised. Memories are generated third-person sentences (templates × vocabulary,
fixed seed). Embedding 100k texts with the real model would take many minutes on two
cores, so a pool of distinct sentences is embedded once with the real MiniLMEmbedder and
each memory's text is two pool sentences, its vector their length-weighted mix plus a
little noise (the fidelity of that mix against the real embedding is measured and
reported). Queries are natural-language questions embedded by the real model at query
time, inside SearchService.search, exactly as `engram serve` runs it.

Everything runs in-process on the adapters `engram serve` wires (build_local_runtime)
in a temporary data directory that is removed at the end. Threads are left as `engram
serve` sets them unless --torch-threads / --blas-threads say otherwise. Load average and
CPU pressure are recorded: on a shared machine, compare wall time with CPU time per call.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import ceil
from pathlib import Path

import numpy as np

from engram.adapters.local_index import LocalMemoryIndex
from engram.adapters.minilm_embedder import MiniLMEmbedder
from engram.api.memos.models import AddMessageRequest, SearchRequest
from engram.api.memos.translate import accept_args, search_spec
from engram.config import Settings
from engram.local.runtime import LocalRuntime, build_local_runtime, local_embedder
from engram.models.domain import FACT_TYPES, Memory, MemoryType, content_hash
from engram.ports import IndexQuery
from engram.services.search import SearchService

TENANT = "t00"  # the target user's tenant; other users live here too
TARGET_USER = "u_target"
TARGET_NAME = "Maya"
WARM_UP_QUERIES = 20
BATCH = 1_000
SEED = 20240611
NOISE_NORM = 0.05  # norm of the noise added to each mixed vector (the mix is unit length)
FIDELITY_SAMPLE = 200
USERS_PER_TENANT = 3
SESSION_TURNS = 10
BASE_TIME_MS = 1_717_200_000_000  # 1 June 2024: memories are spread over the 2 years before
DAY_MS = 86_400_000
TARGET_P50_MS = 20.0
TARGET_P95_MS = 50.0
TARGET_SIZE = 100_000

# --- vocabulary -------------------------------------------------------------------------

PEOPLE = ["Ana", "Tom", "Priya", "Kenji", "Lucas", "Sofia", "Omar", "Chloe", "Mateo", "Hannah",
          "Ravi", "Elena", "Jonas", "Amara", "Diego", "Yuki", "Noah", "Leila", "Felix", "Ingrid",
          "Marcus", "Zara", "Pablo", "Mei", "Samuel", "Nadia", "Oscar", "Clara", "Ibrahim",
          "Greta"]
RELATIONS = ["sister", "brother", "friend", "colleague", "cousin", "neighbour", "mother",
             "father", "partner", "aunt", "uncle", "flatmate", "manager", "old classmate"]
PLACES = ["Lisbon", "Kyoto", "Berlin", "Toronto", "Cape Town", "Oaxaca", "Edinburgh", "Seoul",
          "Marrakech", "Reykjavik", "Vancouver", "Istanbul", "Buenos Aires", "Hanoi",
          "Copenhagen", "Porto", "Melbourne", "Nairobi", "Prague", "Santiago", "Dublin",
          "Tbilisi", "Bologna", "Lyon", "Austin", "Montreal", "Krakow", "Valencia", "Singapore",
          "Wellington"]
ACTIVITIES = [("hiking", "hiking"), ("kayaking", "kayaking"), ("rock climbing", "climbing"),
              ("cycling", "cycling"), ("surfing", "surfing"), ("skiing", "skiing"),
              ("birdwatching", "birdwatching"), ("camping", "camping"), ("sailing", "sailing"),
              ("swimming", "swimming"), ("running", "running"), ("scuba diving", "diving"),
              ("horse riding", "riding"), ("paddleboarding", "paddleboarding"),
              ("stargazing", "stargazing"), ("fishing", "fishing"), ("salsa dancing", "dancing"),
              ("pottery", "pottery"), ("photography", "photography"), ("yoga", "yoga")]
FOODS = ["sushi", "ramen", "tacos", "paella", "dim sum", "pad thai", "falafel", "lasagna", "pho",
         "curry", "ceviche", "dumplings", "croissants", "goulash", "risotto", "bibimbap",
         "empanadas", "shakshuka", "pierogi", "moussaka"]
DRINKS = ["green tea", "black coffee", "oat milk lattes", "sparkling water", "chai", "matcha",
          "kombucha", "hot chocolate", "espresso", "mint tea", "orange juice", "red wine"]
JOBS = ["nurse", "software engineer", "architect", "teacher", "graphic designer", "pharmacist",
        "data analyst", "chef", "veterinarian", "journalist", "civil engineer",
        "physiotherapist", "accountant", "librarian", "product manager"]
PET_KINDS = ["dog", "cat", "rabbit", "parrot", "tortoise", "hamster"]
PET_NAMES = ["Biscuit", "Miso", "Pepper", "Luna", "Mango", "Olive", "Ziggy", "Noodle",
             "Juniper", "Pickles"]
GENRES = ["jazz", "lo-fi hip hop", "classical", "indie rock", "bossa nova", "techno", "folk",
          "k-pop", "blues", "afrobeat"]
SPORTS = ["tennis", "badminton", "squash", "football", "volleyball", "basketball",
          "table tennis", "padel"]
LANGUAGES = ["Spanish", "Japanese", "Portuguese", "German", "Korean", "Italian", "Arabic",
             "French", "Mandarin", "Swahili"]
COURSES = ["pottery", "watercolour painting", "machine learning", "Italian cooking",
           "first aid", "creative writing", "woodworking", "public speaking", "piano"]
EVENTS = ["a jazz festival", "a climate conference", "a wedding", "a food market",
          "a marathon expo", "a book fair", "a tech meetup", "a film festival",
          "a charity gala", "an art exhibition"]
ITEMS = ["a vintage camera", "a cookbook", "a pair of running shoes", "a watercolour set",
         "a board game", "a silk scarf", "a record player", "a houseplant", "a smartwatch",
         "a leather journal"]
BOOKS = ["The Overstory", "Circe", "Project Hail Mary", "Educated", "The Name of the Wind",
         "Pachinko", "Klara and the Sun", "Sapiens", "The Martian", "Normal People"]
ORGS = ["the local food bank", "an animal shelter", "the community garden",
        "a youth football club", "the public library", "a refugee support centre"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
YEARS = ["2021", "2022", "2023", "2024"]
DISLIKES = ["exhausting", "boring", "stressful", "too crowded", "overwhelming", "tedious"]
LODGING = ["small guesthouses", "hostels", "apartment rentals", "campsites",
           "bed and breakfasts"]
CUISINES = ["Ethiopian", "Peruvian", "Georgian", "Vietnamese", "Lebanese", "Korean",
            "Sicilian", "Mexican"]
DISTANCES = ["5K", "10K", "half-marathon", "marathon", "15K"]
OTHER_NAMES = ["Caroline", "Melanie", "Jon", "Gina", "Audrey", "Andrew", "Nate", "Joanna",
               "Tim", "Deborah", "Evan", "Sam", "Calvin", "Dave", "Jolene", "Maria", "John",
               "Fiona", "Harold", "Beatrix"]
CONTEXTS = ["assistant: How was your weekend?", "assistant: Any plans for the holidays?",
            "assistant: What have you been up to lately?", "assistant: Tell me more about that.",
            "assistant: How is work going?", "assistant: What do you like to eat?", ""]
# info.scene values and their shares; biz_id is one of 50 values (a ~2% filter).
SCENES = [("chat", 0.6), ("journal", 0.2), ("support", 0.15), ("onboarding", 0.05)]
BIZ_IDS = 50

# (memory type, category tag, key, value, tag slots, polarity). Values are third person,
# as the extractor writes them; {user} is the user's name.
L, U, P = MemoryType.long_term, MemoryType.user, MemoryType.preference
TEMPLATES: list[tuple[MemoryType, str, str, str, tuple[str, ...], str | None]] = [
    (L, "travel", "{Activity} in {place}",
     "{user} went {activity} in {place} with {user}'s {rel} {person} on {date}.",
     ("act_tag", "place_tag"), None),
    (L, "family", "Visit to {person}",
     "{user} visited {user}'s {rel} {person} in {place} in {month} {year}.",
     ("person_tag", "place_tag"), None),
    (L, "food", "Dinner in {place}",
     "{user} and {person} had dinner at a {cuisine} restaurant in {place} on {date}.",
     ("place_tag",), None),
    (L, "learning", "{Course} course",
     "{user} started a {course} course in {month} {year} and goes every {weekday}.",
     ("course_tag",), None),
    (L, "events", "Event in {place}",
     "{user} attended {event} in {place} with {person} on {date}.", ("place_tag",), None),
    (L, "family", "{Person} moved to {place}",
     "{user}'s {rel} {person} moved to {place} in {month} {year}.",
     ("person_tag", "place_tag"), None),
    (L, "sport", "{Distance} race in {place}",
     "{user} ran a {distance} race in {place} on {date} and finished it with {person}.",
     ("place_tag",), None),
    (L, "shopping", "Gift for {person}",
     "{user} bought {item} for {person}'s birthday on {date}.", ("person_tag",), None),
    (L, "reading", "Reading {book}",
     "{user} read {book} during a trip to {place} in {month} {year}.",
     ("place_tag",), None),
    (L, "travel", "Trip to {place}",
     "{user} spent two weeks in {place} in {month} {year} and went {activity} almost every day.",
     ("place_tag", "act_tag"), None),
    (L, "pet", "Adopted {petname}",
     "{user} adopted a {pet} named {petname} from a shelter in {place} on {date}.",
     ("pet_tag",), None),
    (U, "work", "Works as a {job}",
     "{user} works as a {job} in {place} and has been there since {year}.",
     ("place_tag",), None),
    (U, "pet", "{Pet} {petname}", "{user} has a {pet} named {petname} who loves {activity}.",
     ("pet_tag",), None),
    (U, "family", "{Rel} {person}",
     "{user}'s {rel} is called {person} and lives in {place}.", ("person_tag",), None),
    (U, "home", "Lives in {place}", "{user} lives in {place} with {user}'s {rel} {person}.",
     ("place_tag",), None),
    (U, "learning", "Learning {language}",
     "{user} is learning {language} to prepare for a move to {place}.",
     ("language_tag", "place_tag"), None),
    (U, "sport", "Plays {sport}", "{user} plays {sport} every {weekday} with {person}.",
     ("sport_tag",), None),
    (U, "health", "Allergic to {food}", "{user} is allergic to {food} and avoids it.", (), None),
    (U, "volunteering", "Volunteers at {org}",
     "{user} volunteers at {org} in {place} on {weekday}s.", ("place_tag",), None),
    (P, "food", "Food preference",
     "{user} loves {food} and orders it whenever {user} is in {place}.",
     ("food_tag",), "positive"),
    (P, "drink", "Drink preference", "{user} prefers {drink} over {drink2}.", (), "positive"),
    (P, "activities", "Dislikes {activity}",
     "{user} dislikes {activity} because {user} finds it {dislike}.",
     ("act_tag",), "negative"),
    (P, "music", "Music preference",
     "{user} enjoys {genre} music, especially while {activity}.", ("genre_tag",), "positive"),
    (P, "travel", "Travel preference",
     "{user} would rather stay in {lodging} than in hotels when travelling to {place}.",
     ("place_tag",), "positive"),
    (P, "food", "Dislikes {food}", "{user} does not like {food} and never orders it.",
     ("food_tag",), "negative"),
    (P, "reading", "Favourite book", "{user}'s favourite book is {book}.", (), "positive"),
]

QUESTIONS = [
    "Where did {user} go {activity}?",
    "Who did {user} go {activity} with in {place}?",
    "When did {user} visit {place}?",
    "What does {user} like to drink in the morning?",
    "What food does {user} dislike?",
    "What is {user}'s job?",
    "What is the name of {user}'s {pet}?",
    "Which restaurants did {user} try in {place}?",
    "Does {user} prefer {drink} or {drink2}?",
    "What did {user} do with {person} in {month} {year}?",
    "What music does {user} listen to while {activity}?",
    "Has {user} ever been to {place}?",
    "Which language is {user} learning and why?",
    "What sport does {user} play with {person}?",
    "What did {user} buy for {person}'s birthday?",
    "Where does {user}'s {rel} {person} live?",
    "What happened when {user} went to {place} in {year}?",
    "Which books has {user} read recently?",
    "Is {user} allergic to anything?",
    "How does {user} usually spend {weekday} evenings?",
    "Who is {person}?",
    "What did {user} think about {activity}?",
    "Where does {user} like to stay when travelling?",
    "Which events did {user} attend with {person}?",
]

USER_TURNS = [
    "I went {activity} in {place} with my {rel} {person} last weekend.",
    "I've been learning {language} because we might move to {place}.",
    "I really love {food}, I order it every time I'm in {place}.",
    "Honestly I can't stand {food}.",
    "I work as a {job} now, mostly on night shifts.",
    "My {pet} {petname} just turned three!",
    "I prefer {drink} over {drink2} in the mornings.",
    "Yesterday I bought {item} for {person}'s birthday.",
    "I'm reading {book} at the moment and I can't put it down.",
    "We're planning a trip to {place} in {month}.",
    "I play {sport} with {person} every {weekday}.",
    "I volunteer at {org} on {weekday}s.",
    "I usually listen to {genre} while {activity}.",
    "I signed up for a {course} course that starts in {month}.",
]
ASSISTANT_TURNS = [
    "That sounds wonderful! How did it go?", "Nice, what made you choose {place}?",
    "Thanks for sharing. Anything else on your mind today?",
    "Good to know, I'll keep that in mind.", "How long have you been doing that?",
]


def slots(rng: random.Random, user: str) -> dict[str, str]:
    activity, act_tag = rng.choice(ACTIVITIES)
    drink, drink2 = rng.sample(DRINKS, 2)
    s = {
        "user": user, "person": rng.choice(PEOPLE), "rel": rng.choice(RELATIONS),
        "place": rng.choice(PLACES), "activity": activity, "act_tag": act_tag,
        "date": f"{rng.randint(1, 28)} {rng.choice(MONTHS)} {rng.choice(YEARS)}",
        "month": rng.choice(MONTHS), "year": rng.choice(YEARS), "food": rng.choice(FOODS),
        "drink": drink, "drink2": drink2, "job": rng.choice(JOBS), "pet": rng.choice(PET_KINDS),
        "petname": rng.choice(PET_NAMES), "genre": rng.choice(GENRES),
        "sport": rng.choice(SPORTS), "language": rng.choice(LANGUAGES),
        "course": rng.choice(COURSES), "event": rng.choice(EVENTS), "item": rng.choice(ITEMS),
        "book": rng.choice(BOOKS), "org": rng.choice(ORGS), "weekday": rng.choice(WEEKDAYS),
        "dislike": rng.choice(DISLIKES), "lodging": rng.choice(LODGING),
        "cuisine": rng.choice(CUISINES), "distance": rng.choice(DISTANCES),
    }
    for name in ("activity", "course", "person", "pet", "rel", "distance"):
        s[name.capitalize()] = s[name][:1].upper() + s[name][1:]
    for name in ("place", "person", "course", "language", "sport", "food", "genre", "pet"):
        s[f"{name}_tag"] = s[name].lower()
    return s


# --- synthetic data ---------------------------------------------------------------------

@dataclass(frozen=True)
class PoolSentence:
    text: str  # mentions TARGET_NAME; other users' memories substitute their own name
    key: str
    tags: tuple[str, ...]
    memory_type: MemoryType
    polarity: str | None
    anchors: tuple[str, ...]  # person and place mentioned: a memory's second sentence shares one


def sentence_pool(size: int, rng: random.Random) -> list[PoolSentence]:
    pool: dict[str, PoolSentence] = {}
    attempts = 0
    while len(pool) < size:
        attempts += 1
        if attempts > size * 50:
            raise RuntimeError(f"the templates cannot make {size} distinct sentences")
        memory_type, category, key, value, tag_slots, polarity = rng.choice(TEMPLATES)
        s = slots(rng, TARGET_NAME)
        text = value.format(**s)
        if text in pool:
            continue
        tags = tuple(dict.fromkeys([category, *(s[t] for t in tag_slots)]))[:5]
        anchors = tuple(a for a in (s["person"], s["place"]) if a in text)
        pool[text] = PoolSentence(text, key.format(**s), tags, memory_type, polarity, anchors)
    return list(pool.values())


@dataclass
class Dataset:
    memories: list[Memory]  # the target user's first, then everyone else's
    vectors: np.ndarray  # one row per memory, unit length
    target_count: int
    users: int
    tenants: int
    tag_share: float
    biz_share: float


def make_dataset(n: int, others_share: float, tenants: int, pool: list[PoolSentence],
                 pool_vectors: np.ndarray, seed: int) -> Dataset:
    """N memories for the target user, others_share × N spread over the other users."""
    rng = random.Random(seed)
    by_anchor: dict[str, list[int]] = defaultdict(list)
    for i, sentence in enumerate(pool):
        for anchor in sentence.anchors:
            by_anchor[anchor].append(i)
    owners = [(TENANT, TARGET_USER, TARGET_NAME)]
    for t in range(tenants):
        for u in range(USERS_PER_TENANT):
            if (t, u) != (0, 0):
                owners.append((f"t{t:02d}", f"u{t:02d}_{u}", OTHER_NAMES[(t * 3 + u) % 20]))
    extra = round(n * others_share)
    counts = [n] + [extra // (len(owners) - 1) + (1 if i < extra % (len(owners) - 1) else 0)
                    for i in range(len(owners) - 1)]

    memories: list[Memory] = []
    firsts, seconds, first_weights, second_weights = [], [], [], []
    scene_names, scene_weights = zip(*SCENES, strict=True)
    for (tenant, user, name), count in zip(owners, counts, strict=True):
        for k in range(count):
            i = rng.randrange(len(pool))
            main = pool[i]
            # The second sentence mostly shares a person or place with the first.
            if main.anchors and rng.random() < 0.7:
                j = rng.choice(by_anchor[rng.choice(main.anchors)])
            else:
                j = rng.randrange(len(pool))
            if j == i:
                j = (i + 1) % len(pool)
            detail = pool[j]
            value = f"{main.text} {detail.text}"
            key = main.key
            if name != TARGET_NAME:
                value, key = value.replace(TARGET_NAME, name), key.replace(TARGET_NAME, name)
            created = BASE_TIME_MS - rng.randrange(730) * DAY_MS - rng.randrange(DAY_MS)
            memory = Memory(
                id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                tenant_id=tenant, user_id=user, conversation_id=f"conv_{k // 25}",
                memory_type=main.memory_type, memory_key=key, memory_value=value,
                tags=list(main.tags),
                info={"scene": rng.choices(scene_names, scene_weights)[0],
                      "biz_id": f"b{rng.randrange(BIZ_IDS):02d}", "source": "chat"},
                confidence=round(rng.uniform(0.85, 0.97), 2),
                sources=[f"msg_{rng.getrandbits(64):016x}"],
                create_time=created, update_time=created, event_time=created - DAY_MS,
                valid_from=created - DAY_MS,
                content_hash=content_hash(main.memory_type, value),
                polarity=main.polarity,
                preference_type="explicit" if main.memory_type == MemoryType.preference else None,
                context=rng.choice(CONTEXTS))
            memories.append(memory)
            firsts.append(i)
            seconds.append(j)
            # Mean pooling weighs each part by its tokens: the key goes with the first part.
            first_weights.append(len(key.split()) + len(main.text.split()))
            second_weights.append(len(detail.text.split()))

    weights = np.array([first_weights, second_weights], dtype=np.float32)
    weights /= weights.sum(axis=0)
    mixed = (weights[0, :, None] * pool_vectors[firsts]
             + weights[1, :, None] * pool_vectors[seconds])
    mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
    noise = np.random.default_rng(seed).standard_normal(mixed.shape).astype(np.float32)
    noise *= NOISE_NORM / np.linalg.norm(noise, axis=1, keepdims=True)
    mixed += noise
    mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
    target = memories[:n]
    return Dataset(
        memories=memories, vectors=mixed.astype(np.float32), target_count=n,
        users=len(owners), tenants=tenants,
        tag_share=sum("travel" in m.tags for m in target) / n,
        biz_share=sum(m.info["biz_id"] == "b07" for m in target) / n)


def make_questions(count: int, rng: random.Random) -> list[str]:
    questions: dict[str, None] = {}
    while len(questions) < count:
        questions[rng.choice(QUESTIONS).format(**slots(rng, TARGET_NAME))] = None
    return list(questions)


def make_sessions(turns: int, rng: random.Random) -> list[list[dict]]:
    sessions, chat_time = [], BASE_TIME_MS
    for start in range(0, turns, SESSION_TURNS):
        session = []
        for t in range(min(SESSION_TURNS, turns - start)):
            chat_time += 60_000
            s = slots(rng, TARGET_NAME)
            if t % 2 == 0:
                session.append({"role": "user", "name": TARGET_NAME, "chat_time": chat_time,
                                 "content": rng.choice(USER_TURNS).format(**s)})
            else:
                session.append({"role": "assistant", "chat_time": chat_time,
                                "content": rng.choice(ASSISTANT_TURNS).format(**s)})
        sessions.append(session)
    return sessions


# --- measurement ------------------------------------------------------------------------

def percentiles(values_ms: Sequence[float]) -> dict:
    """Nearest-rank percentiles (the smallest value with at least q of the samples at or
    below it)."""
    ordered = sorted(values_ms)

    def rank(q: float) -> float:
        return ordered[max(ceil(q * len(ordered)) - 1, 0)]

    return {"n": len(ordered), "p50": round(statistics.median(ordered), 2),
            "p95": round(rank(0.95), 2), "p99": round(rank(0.99), 2),
            "mean": round(statistics.fmean(ordered), 2), "max": round(ordered[-1], 2)}


def timed(call: Callable[[int], object], count: int) -> dict:
    """Wall milliseconds per call for items 0..count-1, after WARM_UP_QUERIES warm-up
    calls, and the process CPU time per call (all threads: more than the wall time means
    several cores worked, far less means the process waited for a CPU)."""
    for i in range(min(WARM_UP_QUERIES, count)):
        call(i)
    latencies = []
    cpu_started = time.process_time()
    for i in range(count):
        started = time.perf_counter()
        call(i)
        latencies.append((time.perf_counter() - started) * 1000)
    cpu = (time.process_time() - cpu_started) * 1000 / count
    return {**percentiles(latencies), "cpu_ms_per_call": round(cpu, 2)}


class Clocked:
    """Wraps an adapter and adds the wall time of the named methods to `clock[name]`."""

    def __init__(self, target: object, name: str, methods: Sequence[str], clock: dict):
        self._target, self._name, self._methods, self._clock = target, name, methods, clock

    def __getattr__(self, attr: str):
        value = getattr(self._target, attr)
        if attr not in self._methods:
            return value

        def timed_method(*args, **kwargs):
            started = time.perf_counter()
            try:
                return value(*args, **kwargs)
            finally:
                self._clock[self._name] += time.perf_counter() - started

        return timed_method


@dataclass
class Variant:
    name: str
    filter: dict | None
    share: float | None  # share of the target user's memories that pass the filter


def measure_search(runtime: LocalRuntime, embedder: MiniLMEmbedder, questions: list[str],
                   variants: list[Variant], target_rows: int) -> dict:
    service = runtime.services.search  # the object `engram serve` answers search/memory with
    out: dict = {"variants": {}, "components": {}}
    foreign = 0
    for variant in variants:
        requests = [SearchRequest(query=q, user_id=TARGET_USER, filter=variant.filter)
                    for q in questions]
        results: list = []

        def run(i: int, reqs: list[SearchRequest] = requests, into: list = results) -> None:
            into.append(service.search(TENANT, search_spec(reqs[i])))

        latency = timed(run, len(requests))
        for found in results:
            foreign += sum(1 for s in found.facts + found.preferences
                           if (s.memory.tenant_id, s.memory.user_id) != (TENANT, TARGET_USER))
        out["variants"][variant.name] = {
            "filter": variant.filter, "filter_share": variant.share, "latency_ms": latency,
            "results_per_query": round(statistics.fmean(
                len(r.facts) + len(r.preferences) for r in results[-len(requests):]), 2)}

    # Where the time of one unfiltered call goes: the same requests through a second
    # SearchService over the same adapters, each wrapped in a timer (~1 µs per call).
    clock: dict[str, float] = defaultdict(float)
    clocked = SearchService(
        memories=Clocked(runtime.store, "store_get_many", ("get_many",), clock),
        index=Clocked(runtime.index, "index_search", ("search_groups",), clock),
        embedder=Clocked(embedder, "embed", ("embed",), clock))
    requests = [SearchRequest(query=q, user_id=TARGET_USER) for q in questions]
    for req in requests[:WARM_UP_QUERIES]:
        clocked.search(TENANT, search_spec(req))
    clock.clear()
    started = time.perf_counter()
    for req in requests:
        clocked.search(TENANT, search_spec(req))
    total = (time.perf_counter() - started) * 1000 / len(requests)
    split = {k: round(v * 1000 / len(requests), 2) for k, v in clock.items()}
    split["fusion_and_rest"] = round(total - sum(split.values()), 2)
    split["total"] = round(total, 2)
    out["mean_split_ms"] = split

    # Components alone: the query embedding, and the one index call the service makes
    # (facts and preferences scored together), with each filter.
    vectors = embedder.embed(questions)
    default = SearchRequest(query="x", user_id=TARGET_USER)
    out["components"]["embed_only"] = timed(
        lambda i: embedder.embed([questions[i]]), len(questions))
    groups = [IndexQuery(FACT_TYPES, default.memory_limit_number * 3),
              IndexQuery((MemoryType.preference,), default.preference_limit_number * 3)]

    def index_call(where=None) -> Callable[[int], None]:
        def call(i: int) -> None:
            runtime.index.search_groups(TENANT, TARGET_USER, vectors[i], questions[i], groups,
                                        where)
        return call

    out["components"]["index_only"] = timed(index_call(), len(questions))
    for variant in variants:
        if variant.filter is not None:
            where = search_spec(SearchRequest(query="x", user_id=TARGET_USER,
                                              filter=variant.filter)).where
            out["components"][f"index_only_{variant.name}"] = timed(
                index_call(where), len(questions))
    # The floor under the dense half of one index call: a plain product over a matrix of
    # the partition's shape (memory bandwidth bound at 100k × 384 float32 = 150 MB).
    matrix = np.random.default_rng(0).standard_normal(
        (target_rows, vectors.shape[1])).astype(np.float32)
    out["components"]["numpy_matvec_floor"] = timed(
        lambda i: matrix @ vectors[i], len(questions))
    out["foreign_results"] = foreign  # memories of another user returned: must be 0
    return out


def bulk_load(runtime: LocalRuntime, data: Dataset, seed: int) -> dict:
    """put_many + upsert in batches of BATCH, tenants interleaved as they would arrive."""
    order = list(range(len(data.memories)))
    random.Random(seed).shuffle(order)
    store_s = index_s = 0.0
    for start in range(0, len(order), BATCH):
        rows = order[start:start + BATCH]
        batch = [data.memories[r] for r in rows]
        t0 = time.perf_counter()
        runtime.store.put_many(batch)
        t1 = time.perf_counter()
        runtime.index.upsert(batch, data.vectors[rows])
        index_s += time.perf_counter() - t1
        store_s += t1 - t0
    total = store_s + index_s
    count = len(order)
    return {"memories": count, "batch": BATCH, "seconds": round(total, 2),
            "memories_per_second": round(count / total, 1),
            "store_put_many_seconds": round(store_s, 2),
            "index_upsert_seconds": round(index_s, 2),
            "store_memories_per_second": round(count / store_s, 1),
            "index_memories_per_second": round(count / index_s, 1)}


def ingest_turns(runtime: LocalRuntime, sessions: list[list[dict]], label: str) -> dict:
    """add/message in sync mode (the whole pipeline before returning), one call a session."""
    turns = added = 0
    per_call = []
    started = time.perf_counter()
    for number, session in enumerate(sessions):
        req = AddMessageRequest(user_id=TARGET_USER, conversation_id=f"{label}_{number}",
                                async_mode=False, messages=session)
        t0 = time.perf_counter()
        result = runtime.services.ingest.accept(TENANT, *accept_args(req))
        per_call.append((time.perf_counter() - t0) * 1000)
        if result.status != "completed":
            raise RuntimeError(f"ingest of session {number} ended {result.status}")
        turns += len(session)
        added += len(result.memory_views["added"]) + len(result.memory_views["updated"])
    seconds = time.perf_counter() - started
    return {"turns": turns, "calls": len(sessions), "seconds": round(seconds, 2),
            "turns_per_second": round(turns / seconds, 1),
            "memories_added_or_updated": added, "call_ms": percentiles(per_call)}


def fidelity(embedder: MiniLMEmbedder, data: Dataset, rng: random.Random) -> dict:
    """Cosine between a memory's synthetic vector and the real embedding of its dense text."""
    sample = rng.sample(range(data.target_count), min(FIDELITY_SAMPLE, data.target_count))
    real = embedder.embed([data.memories[i].dense_text for i in sample])
    cosines = np.sum(real * data.vectors[sample], axis=1)
    # For scale: how close two unrelated memories of the same user are.
    other = rng.sample(range(data.target_count), len(sample))
    unrelated = np.sum(real * data.vectors[other], axis=1)
    return {"sample": len(sample), "cosine_mean": round(float(cosines.mean()), 3),
            "cosine_min": round(float(cosines.min()), 3),
            "cosine_p10": round(float(np.percentile(cosines, 10)), 3),
            "unrelated_cosine_mean": round(float(unrelated.mean()), 3)}


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def cpu_pressure() -> str | None:
    """PSI 'some' line: the share of time at least one runnable task waited for a CPU."""
    try:
        with open("/proc/pressure/cpu") as pressure:
            return pressure.readline().strip()
    except OSError:
        return None


def hardware() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    memory = next((int(line.split()[1]) // 1024 for line in open("/proc/meminfo")
                   if line.startswith("MemTotal:")), 0)
    import torch

    try:
        from threadpoolctl import threadpool_info

        blas = [f"{i['internal_api']} {i['version']} ({i['num_threads']} threads)"
                for i in threadpool_info() if i["user_api"] == "blas"]
    except ImportError:
        blas = []
    return {"cpu": cpu, "blas": blas, "cores": os.cpu_count(),
            "usable_cores": len(os.sched_getaffinity(0)),
            "memory_mb": memory, "python": platform.python_version(),
            "machine": platform.machine(), "numpy": np.__version__,
            "torch": torch.__version__, "torch_threads": torch.get_num_threads()}


# --- one size ---------------------------------------------------------------------------

def run_size(n: int, args: argparse.Namespace, embedder: MiniLMEmbedder,
             pool: list[PoolSentence], pool_vectors: np.ndarray, questions: list[str],
             sessions: list[list[dict]], check_fidelity: bool) -> dict:
    result: dict = {"memories_target_user": n, "load_average_start": load_average(),
                    "cpu_pressure_start": cpu_pressure()}
    begun = started = time.perf_counter()
    data = make_dataset(n, args.others, args.tenants, pool, pool_vectors, args.seed + n)
    result["generate_seconds"] = round(time.perf_counter() - started, 2)
    result["memories_total"] = len(data.memories)
    result["users"], result["tenants"] = data.users, data.tenants
    print(f"[{n}] generated {len(data.memories)} memories for {data.users} users "
          f"in {result['generate_seconds']} s", flush=True)
    if check_fidelity:
        result["vector_fidelity"] = fidelity(embedder, data, random.Random(args.seed))
        print(f"[{n}] vector fidelity {result['vector_fidelity']}", flush=True)
    variants = [
        Variant("no_filter", None, None),
        Variant("tag_filter", {"tags": {"contains": "travel"}}, round(data.tag_share, 4)),
        Variant("info_filter", {"biz_id": "b07"}, round(data.biz_share, 4)),
    ]
    with tempfile.TemporaryDirectory(prefix="engram-scale-") as tmp:
        runtime = build_local_runtime(
            Settings(data_dir=Path(tmp), api_keys={"bench-key": TENANT}), embedder=embedder)
        try:
            result["bulk_load"] = bulk_load(runtime, data, args.seed)
            print(f"[{n}] bulk load {result['bulk_load']}", flush=True)
            del data
            gc.collect()
            result["rss_mb_after_load"] = rss_mb()
            # A full collection walks every object the in-memory index holds: the pause a
            # request would see if one triggered during it.
            result["gc_tracked_objects"] = len(gc.get_objects())
            started = time.perf_counter()
            gc.collect()
            result["gc_full_collect_ms"] = round((time.perf_counter() - started) * 1000, 1)
            result["search"] = measure_search(runtime, embedder, questions, variants, n)
            for name, v in result["search"]["variants"].items():
                print(f"[{n}] search {name}: {v['latency_ms']}", flush=True)
            print(f"[{n}] mean split of an unfiltered search: "
                  f"{result['search']['mean_split_ms']}", flush=True)
            for name, c in result["search"]["components"].items():
                print(f"[{n}] {name}: {c}", flush=True)
            result["ingest_service_at_size"] = ingest_turns(runtime, sessions, f"scale{n}")
            print(f"[{n}] ingest service into this user: {result['ingest_service_at_size']}",
                  flush=True)
        finally:
            runtime.close()
        index_file = Path(tmp) / "index.db"
        result["index_file_mb"] = round(index_file.stat().st_size / 2**20, 1)
        result["store_file_mb"] = round((Path(tmp) / "engram.db").stat().st_size / 2**20, 1)
        del runtime
        gc.collect()
        started = time.perf_counter()
        reopened = LocalMemoryIndex(index_file)  # what `engram serve` does at start
        result["index_reopen_seconds"] = round(time.perf_counter() - started, 2)
        reopened.close()
        del reopened
        gc.collect()
    result["load_average_end"] = load_average()
    result["cpu_pressure_end"] = cpu_pressure()
    result["seconds"] = round(time.perf_counter() - begun, 2)
    return result


# --- report -----------------------------------------------------------------------------

def verdicts(results: dict) -> dict:
    run = results["sizes"].get(str(TARGET_SIZE))
    if run is None:
        return {"size": TARGET_SIZE, "status": "not run"}
    latency = run["search"]["variants"]["no_filter"]["latency_ms"]
    return {"size": TARGET_SIZE,
            "p50_ms": latency["p50"], "p50_target_ms": TARGET_P50_MS,
            "p50": "PASS" if latency["p50"] <= TARGET_P50_MS else "FAIL",
            "p95_ms": latency["p95"], "p95_target_ms": TARGET_P95_MS,
            "p95": "PASS" if latency["p95"] <= TARGET_P95_MS else "FAIL"}


def report(results: dict) -> str:
    hw = results["hardware"]
    sizes = results["sizes"]
    lines = [
        "# Scale benchmark",
        "",
        f"Model: {results['model']} (query embedded inside every timed search). Hardware: "
        f"{hw['cpu']}, {hw['cores']} cores ({hw['usable_cores']} usable), "
        f"{hw['memory_mb']} MB; numpy {hw['numpy']} ({', '.join(hw['blas'])}), torch "
        f"{hw['torch']} ({hw['torch_threads']} threads; run with torch threads "
        f"{results['threads']['torch']}, BLAS threads {results['threads']['blas']}). "
        f"Load average (1/5/15 min) at start "
        f"{results['load_average_start']}, at end {results['load_average_end']}; CPU "
        f"pressure at start `{results['cpu_pressure_start']}`, at end "
        f"`{results['cpu_pressure_end']}`. Total run {results['seconds']} s.",
        f"Vectors: {results['pool']['sentences']} distinct sentences embedded once "
        f"({results['pool']['sentences_per_second']} sentences/s); a memory is two of them, "
        f"its vector their token-weighted mix + noise (norm {NOISE_NORM}). "
        + (f"Cosine to the real embedding of the memory's text: mean "
           f"{results['vector_fidelity']['cosine_mean']}, p10 "
           f"{results['vector_fidelity']['cosine_p10']} (two unrelated memories: "
           f"{results['vector_fidelity']['unrelated_cosine_mean']})."
           if results.get("vector_fidelity") else ""),
        f"Search: SearchService.search with API defaults (6 facts + 6 preferences), "
        f"{results['queries']} questions sequentially after {WARM_UP_QUERIES} warm-up queries; "
        f"nearest-rank percentiles.",
        "",
    ]
    v = results["verdict"]
    if v.get("status") == "not run":
        lines.append(f"Target (p50 ≤ {TARGET_P50_MS} ms, p95 ≤ {TARGET_P95_MS} ms at "
                     f"{TARGET_SIZE:,} memories): not run.")
    else:
        lines.append(f"**Target at {TARGET_SIZE:,} memories, no filter:** p50 {v['p50_ms']} ms "
                     f"≤ {TARGET_P50_MS} → **{v['p50']}**; p95 {v['p95_ms']} ms ≤ "
                     f"{TARGET_P95_MS} → **{v['p95']}**.")
    lines.append("")
    for n, run in sizes.items():
        load = run["bulk_load"]
        lines += [
            f"## {int(n):,} memories for the user ({run['memories_total']:,} in total, "
            f"{run['users']} users in {run['tenants']} tenants)",
            "",
            f"Bulk load (put_many + upsert, batches of {load['batch']}): "
            f"{load['memories_per_second']:,} memories/s ({load['seconds']} s: store "
            f"{load['store_put_many_seconds']} s, index {load['index_upsert_seconds']} s). "
            f"RSS after load {run['rss_mb_after_load']} MB; files: index "
            f"{run['index_file_mb']} MB, store {run['store_file_mb']} MB; index reopen "
            f"{run['index_reopen_seconds']} s; a full gc.collect() over "
            f"{run['gc_tracked_objects']:,} objects {run['gc_full_collect_ms']} ms. "
            f"Results from another user: {run['search']['foreign_results']}. "
            f"Load average {run['load_average_start']} → {run['load_average_end']}.",
            "",
            "| SearchService.search | filter share | p50 ms | p95 ms | p99 ms | mean ms "
            "| CPU ms/query |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, var in run["search"]["variants"].items():
            lat = var["latency_ms"]
            share = "all" if var["filter_share"] is None else f"{var['filter_share']:.1%}"
            lines.append(
                f"| {name} | {share} | {lat['p50']} | {lat['p95']} | {lat['p99']} | "
                f"{lat['mean']} | {lat['cpu_ms_per_call']} |")
        split = run["search"]["mean_split_ms"]
        lines += ["", f"Mean split of an unfiltered search (a second, timed pass): embed "
                  f"{split.get('embed', 0)} ms, index {split.get('index_search', 0)} ms, store "
                  f"{split.get('store_get_many', 0)} ms, fusion and the rest "
                  f"{split['fusion_and_rest']} ms; total {split['total']} ms.", "",
                  "| component alone | p50 ms | p95 ms | p99 ms | mean ms | CPU ms/call |",
                  "|---|---|---|---|---|---|"]
        for name, c in run["search"]["components"].items():
            lines.append(f"| {name} | {c['p50']} | {c['p95']} | {c['p99']} | {c['mean']} | "
                         f"{c['cpu_ms_per_call']} |")
        ing = run["ingest_service_at_size"]
        lines += ["", f"IngestService.accept (sync) into this user: {ing['turns']} turns "
                  f"in {ing['seconds']} s = **{ing['turns_per_second']} turns/s** (per call of "
                  f"{SESSION_TURNS} turns: p50 {ing['call_ms']['p50']} ms, p95 "
                  f"{ing['call_ms']['p95']} ms).", ""]
    ing = results["ingest_service_empty"]
    lines += [f"IngestService.accept (sync) into an empty store: {ing['turns']} turns in "
              f"{ing['seconds']} s = **{ing['turns_per_second']} turns/s** "
              f"({ing['memories_added_or_updated']} memories written).", ""]
    if len(sizes) > 1:
        first, last = list(sizes)[0], list(sizes)[-1]
        a, b = sizes[first], sizes[last]
        rows = [(f"search {name} {q}", a["search"]["variants"][name]["latency_ms"][q],
                 b["search"]["variants"][name]["latency_ms"][q])
                for name in a["search"]["variants"] for q in ("p50", "p95")]
        rows += [(f"{name} p50", a["search"]["components"][name]["p50"],
                  b["search"]["components"][name]["p50"]) for name in a["search"]["components"]]
        rows += [("bulk load memories/s", a["bulk_load"]["memories_per_second"],
                  b["bulk_load"]["memories_per_second"]),
                 ("ingest service turns/s", a["ingest_service_at_size"]["turns_per_second"],
                  b["ingest_service_at_size"]["turns_per_second"]),
                 ("index reopen s", a["index_reopen_seconds"], b["index_reopen_seconds"]),
                 ("full gc.collect ms", a["gc_full_collect_ms"], b["gc_full_collect_ms"]),
                 ("RSS after load MB", a["rss_mb_after_load"], b["rss_mb_after_load"])]
        lines += [f"## Growth {int(first):,} → {int(last):,} memories "
                  f"(×{int(last) / int(first):g} data)", "",
                  f"| metric | {int(first):,} | {int(last):,} | ratio |", "|---|---|---|---|"]
        lines += [f"| {name} | {x} | {y} | {y / x:.2f}× |" if x else f"| {name} | {x} | {y} | – |"
                  for name, x, y in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--memories", default="10000,100000",
                        help="comma-separated sizes: the target user's memory count")
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--others", type=float, default=0.1,
                        help="other users' memories, as a share of the target user's")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--pool", type=int, default=5_000, help="distinct sentences embedded")
    parser.add_argument("--ingest-turns", type=int, default=300)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="threads for the embedding model (default as `engram serve`: "
                             "every usable core)")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="threads for numpy's BLAS (default: left as numpy starts)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    sizes = sorted(int(n) for n in args.memories.split(","))
    # A stopped run still removes its temporary data directories.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    begun = time.perf_counter()
    load_start, pressure_start = load_average(), cpu_pressure()

    if args.blas_threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.blas_threads, user_api="blas")  # stays in effect for the run
    # What `engram serve` runs (ENGRAM_EMBEDDER, int8 ONNX by default); --torch-threads
    # measures the sentence-transformers path instead.
    embedder = (MiniLMEmbedder(threads=args.torch_threads) if args.torch_threads
                else local_embedder(Settings()))
    embedder.warm_up()
    rng = random.Random(args.seed)
    pool = sentence_pool(args.pool, rng)
    started = time.perf_counter()
    pool_vectors = embedder.embed([s.text for s in pool])
    pool_seconds = time.perf_counter() - started
    print(f"embedded {len(pool)} pool sentences in {pool_seconds:.1f} s", flush=True)
    questions = make_questions(args.queries, rng)
    sessions = make_sessions(args.ingest_turns, rng)

    with tempfile.TemporaryDirectory(prefix="engram-scale-") as tmp:
        runtime = build_local_runtime(
            Settings(data_dir=Path(tmp), api_keys={"bench-key": TENANT}), embedder=embedder)
        try:
            ingest_empty = ingest_turns(runtime, sessions, "empty")
        finally:
            runtime.close()
    print(f"ingest service into an empty store: {ingest_empty}", flush=True)

    results: dict = {
        "model": embedder.model_name, "hardware": hardware(), "seed": args.seed,
        "threads": {"torch": args.torch_threads or "default",
                    "blas": args.blas_threads or "default"},
        "load_average_start": load_start, "cpu_pressure_start": pressure_start,
        "queries": len(questions),
        "questions_sample": questions[:5],
        "pool": {"sentences": len(pool), "seconds": round(pool_seconds, 2),
                 "sentences_per_second": round(len(pool) / pool_seconds, 1)},
        "others_share": args.others, "ingest_service_empty": ingest_empty, "sizes": {},
    }
    for i, n in enumerate(sizes):
        run = run_size(n, args, embedder, pool, pool_vectors, questions, sessions,
                       check_fidelity=i == 0)
        results["vector_fidelity"] = results.get("vector_fidelity") or run.pop(
            "vector_fidelity", None)
        results["sizes"][str(n)] = run
    if len(sizes) > 1:
        a, b = (results["sizes"][str(n)]["search"]["variants"]["no_filter"]["latency_ms"]
                for n in (sizes[0], sizes[-1]))
        results["growth"] = {"from": sizes[0], "to": sizes[-1],
                             "p50_ratio": round(b["p50"] / a["p50"], 2),
                             "p95_ratio": round(b["p95"] / a["p95"], 2)}
    results["verdict"] = verdicts(results)
    results["load_average_end"] = load_average()
    results["cpu_pressure_end"] = cpu_pressure()
    results["seconds"] = round(time.perf_counter() - begun, 1)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale.json").write_text(json.dumps(results, indent=2))
    text = report(results)
    (args.out / "scale.md").write_text(text)
    print(text)
    v = results["verdict"]
    if v.get("status") == "not run":
        print(f"target p50≤{TARGET_P50_MS:g}ms p95≤{TARGET_P95_MS:g}ms at {TARGET_SIZE}: not run")
    else:
        print(f"target at {TARGET_SIZE}: p50 {v['p50_ms']} ms ≤ {TARGET_P50_MS:g} {v['p50']}; "
              f"p95 {v['p95_ms']} ms ≤ {TARGET_P95_MS:g} {v['p95']}")
    print(" ".join(
        f"p50_ms@{n}={r['search']['variants']['no_filter']['latency_ms']['p50']:.1f} "
        f"p95_ms@{n}={r['search']['variants']['no_filter']['latency_ms']['p95']:.1f}"
        for n, r in results["sizes"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
