import pytest

from engram.retrieval.lexical import stem, tokenize


def test_lowercases_and_splits_on_non_alphanumerics():
    assert tokenize("Paris-Hotel/BOOKING,cheap") == ["paris", "hotel", "book", "cheap"]


def test_removes_stopwords():
    assert tokenize("What is the name of my dog?") == ["nam", "dog"]


def test_contractions_leave_no_fragments():
    assert tokenize("I don't like it; she's here") == ["don", "lik"]


def test_plurals_and_verb_endings_meet_their_base_form():
    pairs = [
        ("hotels", "hotel"),
        ("running", "run"),
        ("booked", "book"),
        ("booking", "book"),
        ("meetings", "meeting"),
        ("cities", "city"),
        ("boxes", "box"),
        ("classes", "class"),
        ("making", "make"),
        ("planned", "plan"),
        ("hoped", "hope"),
    ]
    for inflected, base in pairs:
        assert stem(inflected) == stem(base), (inflected, base)


def test_stemming_leaves_short_words_and_protected_endings_alone():
    unchanged = "bus status analysis class thing string".split()
    assert [stem(word) for word in unchanged] == unchanged
    assert stem("falling") == "fall"  # l, s and z stay doubled


def test_digits_are_kept_and_not_stemmed():
    expected = "flight 370 2024 03 15 covid19 test".split()
    assert tokenize("Flight 370 on 2024-03-15, covid19 tests") == expected


def test_chinese_runs_become_overlapping_bigrams():
    assert tokenize("我喜欢猫") == ["我喜", "喜欢", "欢猫"]


def test_single_cjk_character_is_kept_whole():
    assert tokenize("猫") == ["猫"]


def test_mixed_scripts_split_at_script_boundaries():
    assert tokenize("iPhone手机很好用 2024年") == "iphon 手机 机很 很好 好用 2024 年".split()


def test_cjk_punctuation_separates_runs():
    assert tokenize("北京，上海。") == ["北京", "上海"]


def test_full_width_forms_are_normalised():
    assert tokenize("ＡＢＣ １２３") == ["abc", "123"]


def test_chinese_query_shares_terms_with_a_longer_sentence():
    document = set(tokenize("我下个月要去北京出差"))
    assert set(tokenize("北京出差")) <= document


def test_empty_and_punctuation_only_text():
    assert tokenize("") == []
    assert tokenize("  ...!?  ") == []
    assert tokenize("snake_case") == ["snak", "cas"]


def test_is_deterministic():
    text = "The runners were running to 3 hotels in 上海市"
    assert tokenize(text) == tokenize(text)


@pytest.mark.parametrize("key, value, context", [
    ("Hobby", "The user likes hiking in the Alps.", "Any plans? | I like hiking in the Alps!"),
    ("偏好", "用户喜欢川菜。", "你喜欢什么菜？ | 我喜欢川菜"),  # CJK runs at every boundary
    ("Ｗｉｆｉ", "ﬁne café naïve Ⅻ", "a|b | c || d | "),  # NFKC forms, stray separators
    ("", "x", ""), ("Key", "", "only | context"),
])
def test_memory_terms_are_the_index_texts_terms(key, value, context):
    from engram.models.domain import index_text
    from engram.retrieval.lexical import memory_terms

    assert memory_terms(key, value, context) == tokenize(index_text(key, value, context))
