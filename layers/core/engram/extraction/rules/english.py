"""English: what a user turn's sentences state, in the first person, and that statement
rewritten in the third person. Sentences → fillers, questions and requests dropped
(keeping the declarative clause of a mixed sentence) → a dropped "I" supplied → I/me/my/we
rewritten as the subject, with verb agreement."""

from __future__ import annotations

import re

from engram.extraction.rules.subject import Subject

# --- sentences ------------------------------------------------------------------------

_EN_SENTENCE_BREAK = re.compile(r"(?<=[.!?;])\s+")
_EN_ABBREVIATIONS = frozenset(
    {"mr.", "mrs.", "ms.", "dr.", "st.", "jr.", "sr.", "vs.", "e.g.", "i.e.", "no.", "approx."}
)


def split_sentences_en(line: str) -> list[str]:
    sentences: list[str] = []
    for piece in _EN_SENTENCE_BREAK.split(line):
        if sentences and _continues(sentences[-1], piece):
            sentences[-1] = f"{sentences[-1]} {piece}"
        elif piece:
            sentences.append(piece)
    return sentences


def _continues(previous: str, piece: str) -> bool:
    """A break after 'Dr.' or before a lower-case word is not a sentence end."""
    last_word = previous.rsplit(" ", 1)[-1].lower()
    return last_word in _EN_ABBREVIATIONS or piece[:1].islower()


# --- fillers, questions, requests (English) -------------------------------------------

# Words that may open a sentence and carry nothing: stripped with or without a comma.
_EN_LEADING_CONJUNCTION = re.compile(
    r"^(?:but|and|so|also|plus|anyway|anyways|besides|however|btw|by the way|um+|uh+|"
    r"actually|honestly|oh)\b[\s,]*",
    re.I,
)
# Interjections: stripped only when punctuation follows ("Great, I'll go" but not
# "Great food is ...").
_EN_LEADING_INTERJECTION = re.compile(
    r"^(?:yes|yeah|yep|yup|no|nope|wow|hey|hi|hello|ok|okay|sure|alright|right|thanks|"
    r"thank you|great|cool|nice|awesome|haha+|lol|hmm+|ah+|aw+|ooh|oh my god|omg|well|"
    r"true|exactly|totally|seriously|congrats|congratulations|oh wow|oops)\s*[,!.:;-]+\s*",
    re.I,
)
_GREETINGS = frozenset("hey hi hello yep yeah wow thanks oh aw".split())
_EN_FILLER_WORDS = frozenset(
    "ok okay thanks thank you got it sure yes no yeah yep yup nope cool great nice awesome "
    "alright right sounds good bye goodbye hi hello hey haha lol see i me fine perfect wow oh "
    "hmm noted understood that that's thats it's is so really very too much amazing wonderful "
    "lovely sweet interesting true exactly agree totally absolutely definitely indeed of "
    "course to talk soon later care take welcome morning night evening afternoon glad meet "
    "have a day same here the what about agreed makes sense will do np no problem all "
    "congrats congratulations".split()
)
EN_WORD = re.compile(r"[A-Za-z][A-Za-z']*")
_EN_QUESTION_WORD_START = re.compile(
    r"^(?:what|what's|which|who|who's|whom|whose|where|where's|when|why|how|how's)\b"
    r"(?!\s+(?:i|we)\b)",
    re.I,
)
_EN_AUX_QUESTION_START = re.compile(
    r"^(?:is|are|am|was|were|do|does|did|can|could|would|will|should|shall|may|might|have|"
    r"has|had|isn't|aren't|don't|doesn't|didn't|can't|won't|wouldn't|shouldn't)\s+"
    r"(?:you|it|there|this|that|they|he|she|i|we|your|any)\b"
    r"|^any(?:one|body|thing)?\b",
    re.I,
)
_EN_ASKING = re.compile(
    r"\b(?:i(?:'d| would) like to know|i want to know|i wonder|i was wondering|"
    r"i'm wondering|do you know)\b",
    re.I,
)
_EN_REQUEST_START = re.compile(
    r"^(?:please|pls|plz|kindly|help me|tell me|show me|give me|let me know|remind me|"
    r"find me|recommend|suggest|explain|ask me|take a look|look at|check this|let's|lets|"
    r"could you|can you|would you|will you|i want you to|i need you to|"
    r"i(?:'d| would) like you to)\b",
    re.I,
)
EN_CLAUSE_BREAK = re.compile(r",\s+|\s+(?:but|so)\s+")
EN_FIRST_PERSON_WORD = re.compile(r"\b(?:i|i'm|i've|i'd|i'll|me|my|we|we're|our|us)\b", re.I)


def strip_discourse_en(sentence: str, names: frozenset[str]) -> str:
    """Drop openers ('But', 'Wow,') and vocatives ('..., Caroline!') that carry nothing."""
    text = sentence.strip()
    for _ in range(4):
        stripped = _EN_LEADING_INTERJECTION.sub("", _EN_LEADING_CONJUNCTION.sub("", text))
        stripped = _strip_vocative(stripped, names)
        if stripped == text:
            break
        text = stripped
    return text


def _strip_vocative(text: str, names: frozenset[str]) -> str:
    """'Hey Jon, ...', 'Mel! ...', '..., Caroline!' → without the greeting and the name."""
    words = text.split(" ", 2)
    if len(words) == 3 and words[0].lower() in _GREETINGS:
        words = words[1:]  # "Hey Jon, ..." → "Jon, ..."
    if len(words) >= 2 and words[0].rstrip(",!.").lower() in names and words[0][-1:] in ",!.":
        text = " ".join(words[1:])
    head, comma, last = text.rpartition(",")
    if comma and last.strip(" !.?").lower() in names:
        text = head + last.strip()[-1:] if last.strip()[-1:] in "!.?" else head
    return text.strip()


def is_filler_en(sentence: str, names: frozenset[str]) -> bool:
    words = [w.lower() for w in EN_WORD.findall(sentence)]
    return all(w in _EN_FILLER_WORDS or w in names for w in words)


def is_question_en(clause: str) -> bool:
    return bool(
        clause.rstrip().endswith("?")
        or _EN_QUESTION_WORD_START.match(clause)
        or _EN_AUX_QUESTION_START.match(clause)
        or _EN_ASKING.search(clause)
    )


def is_request_en(clause: str) -> bool:
    return bool(_EN_REQUEST_START.match(clause))


def declarative_part_en(sentence: str) -> str | None:
    """The sentence if it states something; for 'I'm off to Paris, any tips?' the leading
    clauses that do; None for a pure question or request."""
    if is_request_en(sentence):
        return None
    if not is_question_en(sentence):
        return sentence
    kept: list[str] = []
    for clause in EN_CLAUSE_BREAK.split(sentence.rstrip("?")):
        if is_question_en(clause) or is_request_en(clause):
            break
        if not EN_FIRST_PERSON_WORD.search(clause):
            break
        kept.append(clause)
    return ", ".join(kept) or None


# --- statements -----------------------------------------------------------------------

EN_SENTENCE_END = re.compile(r"[\s!?;,:.]+$")
_EN_SLANG = re.compile(r"\b(gonna|wanna|gotta|kinda)\b", re.I)
_EN_SLANG_FULL = {"gonna": "going to", "wanna": "want to", "gotta": "have to", "kinda": "kind of"}
_EN_CONTENT_FREE = _EN_FILLER_WORDS | frozenset(
    "i i'm i've i'd i'll me my we do did does am is are was were have has had will would can "
    "could not don't didn't too also either neither".split()
)


def statement_en(sentence: str, names: frozenset[str]) -> tuple[str, bool] | None:
    """What a sentence states, in the first person, and whether its subject was supplied;
    None for a filler, a question or request, or a sentence that says nothing."""
    text = strip_discourse_en(_EN_SLANG.sub(_expand_slang, sentence), names)
    if not text or is_filler_en(text, names):
        return None
    declarative = declarative_part_en(text)
    if not declarative:
        return None
    stated = EN_SENTENCE_END.sub("", declarative)
    first_person = supply_subject_en(stated)
    if is_content_free_en(first_person):
        return None
    return first_person, first_person != stated


def _expand_slang(m: re.Match[str]) -> str:
    full = _EN_SLANG_FULL[m.group(0).lower()]
    return full.capitalize() if m.group(0)[0].isupper() else full


def is_content_free_en(text: str) -> bool:
    return all(w.lower() in _EN_CONTENT_FREE for w in EN_WORD.findall(text))


# --- subjectless English sentences -----------------------------------------------------

IRREGULAR_PAST = frozenset(
    "went ran saw got made took came had did was were said told found gave knew thought "
    "bought brought felt left met paid sent sat spent stood taught won wrote ate drank drove "
    "flew forgot began broke chose fell grew heard held hid kept lost meant rode rang rose "
    "sang shot slept spoke swam threw understood woke wore built caught dug fought fed led "
    "lent sold sought shook stole struck swore tore bent bled blew drew fled froze hung knelt "
    "laid leapt learnt shone shrank slid spun spat sprang stuck swept swung wept wound "
    "become became been done gone seen taken given written eaten".split()
)
# "Going to Paris tomorrow": the -ing words that usually mean a dropped "I'm".
_SUBJECTLESS_ING = frozenset(
    "planning hoping thinking heading looking feeling trying going".split()
)
# Present-tense verbs that open a subjectless chat line: "Love that painting!"
_SUBJECTLESS_PRESENT = frozenset(
    "love like enjoy hate prefer adore appreciate hope guess believe wish miss know".split()
)
_NOT_PAST_VERBS = frozenset("based used called named located related united".split())
_LEADING_ADVERB = frozenset("just finally recently also really totally actually still".split())
_COPULA_LATER = re.compile(r"\s(?:is|was|are|were)\s", re.I)
_EN_ME = re.compile(r"\b(?:me|myself)\b", re.I)


def supply_subject_en(sentence: str) -> str:
    """'Went to the gym' → 'I went to the gym'; 'Going to Paris' → "I'm going to Paris".
    Chat often drops the subject; without one the memory would not say who did it."""
    words = sentence.split(" ", 2)
    first = words[0].lstrip("[(").lower()  # "[shared a photo: ...]" from a photo caption
    verb = words[1].lower() if first in _LEADING_ADVERB and len(words) > 1 else first
    lowered = sentence[0].lower() + sentence[1:]
    # "Working with kids is rewarding": the -ing word is the subject, not a dropped "I'm".
    gerund_subject = _COPULA_LATER.search(sentence.split(",", 1)[0])
    # Not when "me" is the object: "Really made me proud" dropped "It", not "I".
    if _EN_ME.search(sentence):
        return sentence
    if first in _SUBJECTLESS_ING and not gerund_subject:
        return f"I'm {lowered}"
    if first in ("been", "done"):
        return f"I've {lowered}"
    if _is_past(verb) or verb in _SUBJECTLESS_PRESENT:
        return f"I {lowered}"
    return sentence


def _is_past(word: str) -> bool:
    if word in _NOT_PAST_VERBS:
        return False
    regular = len(word) > 4 and word.endswith("ed") and not word.endswith("eed")  # not "need"
    return word in IRREGULAR_PAST or regular


# --- first person → third person ------------------------------------------------------

EN_ADVERBS = (
    "really|also|just|usually|always|often|never|still|actually|totally|sometimes|generally|"
    "mostly|recently|finally|definitely|absolutely|truly|rarely|seldom|even|only|already|"
    "kind of|sort of|personally|now|currently|normally|typically|especially|particularly|"
    "honestly|certainly|probably|literally|barely|hardly|mainly|simply|then|too"
)
_EN_FIRST_PERSON = re.compile(
    r"\b(?:(?P<i_contraction>[Ii]'(?:m|ve|ll|d))"
    r"|(?P<i>[Ii])(?P<adverbs>(?:\s+(?:" + EN_ADVERBS + r"))*)\s+(?P<verb>[a-z]+(?:'t)?)"
    r"|(?P<we_contraction>[Ww]e'(?:re|ve|ll|d))"
    r"|(?P<word>I|i|[Mm]e|[Mm]y|[Mm]ine|[Mm]yself|[Ww]e|[Uu]s|[Oo]ur|[Oo]urs|[Oo]urselves))\b"
)
_AGREEMENT = {
    "am": "is", "have": "has", "do": "does", "don't": "doesn't", "haven't": "hasn't",
    "were": "was", "weren't": "wasn't", "be": "is",
}
_NO_AGREEMENT = frozenset(
    "can could will would shall should may might must ought did was and or but too as in at "
    "on to of for with who that the a an so myself alone it not never can't won't couldn't "
    "wouldn't shouldn't didn't wasn't mustn't if when".split()
)
_DECISION_PAST = {"choose": "chose", "pick": "picked", "select": "selected"}
_EN_HAD_NEXT = re.compile(r"\s+(?:been|had|already|never|gone|done|seen|left|forgotten)\b", re.I)
_EN_CONTRACTIONS = {"m": "is", "ve": "has", "ll": "will", "re": "are"}


def third_person_en(text: str, subject: Subject) -> tuple[str, bool]:
    """Rewrite I/me/my/we as the subject, with verb agreement for the common cases.
    Returns the text and whether the subject appears in it."""
    mentioned = False

    def replace(m: re.Match[str]) -> str:
        nonlocal mentioned
        # "themselves" does not say who: "Relaxing and expressing ourselves is key".
        mentioned = mentioned or (m["word"] or "").lower() not in ("myself", "ourselves")
        if m["i_contraction"]:
            return f"{subject.name} {_contraction(m, m['i_contraction'][2:], 'has')}"
        if m["i"]:
            return f"{subject.name}{m['adverbs']} {agree_verb(m['verb'])}"
        if m["we_contraction"]:
            return f"{subject.group} {_contraction(m, m['we_contraction'][3:], 'have')}"
        return _pronoun(m["word"].lower(), subject)

    return _EN_FIRST_PERSON.sub(replace, text), mentioned


def _contraction(m: re.Match[str], suffix: str, have: str) -> str:
    if suffix == "d":
        return "had" if _EN_HAD_NEXT.match(m.string, m.end()) else "would"
    return have if suffix == "ve" else _EN_CONTRACTIONS[suffix]


def _pronoun(word: str, subject: Subject) -> str:
    if word in ("i", "me"):
        return subject.name
    if word in ("my", "mine", "our", "ours"):
        return subject.possessive
    if word in ("myself", "ourselves"):
        return "themselves"
    return subject.group  # we, us


def agree_verb(verb: str) -> str:
    """The verb after 'I', in the third person singular: like → likes, am → is."""
    lower = verb.lower()
    if lower in _AGREEMENT:
        return _AGREEMENT[lower]
    if lower in _DECISION_PAST:
        return _DECISION_PAST[lower]
    if lower in _NO_AGREEMENT or _is_past(lower) or lower.endswith("'t"):
        return verb
    if lower.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    if lower.endswith("y") and lower[-2:-1] not in ("a", "e", "i", "o", "u"):
        return verb[:-1] + "ies"
    return verb + "s"


_COMMON_SENTENCE_STARTS = frozenset(
    "the a an this that that's these those it it's there they their he she his her you your "
    "you're you've you'd you'll everyone everything nothing some all most many people life "
    "cool so what how".split()
)


def attribute_en(text: str, subject: Subject) -> str:
    """'The transgender stories were so inspiring' → 'Caroline said the ...', so a
    statement without a subject still says whose it is."""
    first, _, rest = text.partition(" ")
    if first.lower() in _COMMON_SENTENCE_STARTS or (first.endswith("ing") and first[1:].islower()):
        text = f"{first.lower()} {rest}".strip()
    return f"{subject.name} said {text}"
