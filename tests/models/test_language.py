"""Language identification: English kept, other languages and text-less items marked."""

from __future__ import annotations

import math

import pytest

from riskpulse.models.language import identify, normalise_code
from riskpulse.stream.core.aggregator import Aggregator, AggregatorConfig
from riskpulse.stream.core.state import Overlay
from tests.stream.test_core import DETECTOR, T0, scored


@pytest.mark.parametrize("headline, code", [
    ("特斯拉股价暴跌，监管机构展开调查", "zh"),  # "Tesla shares plunge; regulators open an investigation"
    ("Tesla 股价暴跌，监管机构展开调查", "zh"),  # a Latin name inside does not make it English
    ("トヨタ、通期の業績予想を上方修正", "ja"), ("삼성전자 주가 급락", "ko"), ("Банк России сохранил ключевую ставку, рубль ослаб по отношению к доллару", "ru"),
    ("انخفاض حاد في أسهم أرامكو", "ar"), ("TotalEnergies relève son dividende après un trimestre record", "fr"),
    ("Anleger flüchten aus Tech-Werten, DAX schließt nach schwachen US-Daten im Minus", "de"),
])
def test_headlines_in_languages_the_model_never_saw_are_marked(headline: str, code: str) -> None:
    language = identify(headline)
    assert (language.code, language.supported, language.how) == (code, False, "detected")


@pytest.mark.parametrize("headline", [
    "Apple beats estimates", "Fed holds rates", "$TSLA down 5%", "Nokia Oyj Q3 net sales EUR 5.2 bn",
    "Boise Cascade declares $0.10 dividend", "Banca Monte dei Paschi di Siena S.p.A. reports FY results",
    "Tesla sued by shareholders over misleading disclosures, seeking $260 million",
])
def test_short_english_headlines_with_foreign_names_stay_english(headline: str) -> None:
    assert identify(headline).supported


def test_a_producers_language_is_respected_and_text_less_items_are_no_text() -> None:
    assert identify("Apple beats estimates", "de-DE") == identify("x", "de")
    assert identify("特斯拉股价暴跌", "en-US").supported  # the producer knows best
    assert normalise_code("ZH_Hans") == "zh"
    for nothing in ("📉📉📉", "🚀", "1,234.5 +3%", "--- ***"):
        language = identify(nothing)
        assert (language.code, language.supported, language.how) == ("und", False, "no_text")


def test_unscored_items_are_counted_apart_never_as_neutral() -> None:
    agg = Aggregator(Overlay({}), AggregatorConfig(), DETECTOR, now_wall=0.0)
    start = T0 - T0 % 60
    agg.add(scored("en", start + 1, "negative", tickers=["TSLA"], headline="Tesla shares plunge as regulators open probe"),
            0, 0, 0.0)
    chinese = scored("zh", start + 2, "neutral", tickers=["TSLA"], headline="特斯拉股价暴跌，监管机构展开调查")
    emoji = scored("emoji", start + 3, "neutral", tickers=["TSLA"], headline="📉📉📉")
    agg.add(chinese.model_copy(update={"lang": "zh", "sentiment_status": "unsupported_language"}), 0, 1, 0.0)
    agg.add(emoji.model_copy(update={"lang": "und", "sentiment_status": "no_text"}), 0, 2, 0.0)
    close = agg.next_close(0.0, until=math.inf)
    assert close is not None
    trends = {(t.key_type, t.key): t for t in close.trends}
    tsla = trends[("ticker", "TSLA")]
    assert (tsla.count, tsla.negative, tsla.neutral, tsla.unscored, tsla.negative_share) == (1, 1, 0, 2, 1.0)
    assert ("topic", "Macro") in trends and trends[("topic", "Macro")].count == 1  # the model's topic of an unread item is not counted
