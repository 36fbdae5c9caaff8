"""A synthetic sample news stream for the demo: an hour of headlines across the model's 20 topics,
with one negative burst on one ticker.

Headlines are written here from templates in the style of wire and social-media market news (no
labelled data set is copied). Every template is written for one topic and one tone, so the
dashboard shows plausible topic trends; the burst is a run of lawsuit and regulator stories on
one company, the kind of story the alerting exists for. Event times span one hour, so a replay
at 60x takes a minute.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

COMPANIES = {"AAPL": "Apple", "MSFT": "Microsoft", "XOM": "Exxon Mobil", "JPM": "JPMorgan", "TSLA": "Tesla",
             "NVDA": "Nvidia", "BAC": "Bank of America", "PFE": "Pfizer", "AMZN": "Amazon", "GS": "Goldman Sachs",
             "CVX": "Chevron", "BA": "Boeing", "KO": "Coca-Cola", "WMT": "Walmart", "META": "Meta", "NEM": "Newmont"}

# (topic, tone, template): {c} a company, {p} a number that makes each story distinct (the deduper
# folds repeated headlines), {m} a month. Templates with {c} carry the company's ticker.
TEMPLATES: list[tuple[str, str, str]] = [
    ("Analyst Update", "positive", "{c} upgraded to buy at Morgan Stanley, price target raised {p}%"),
    ("Analyst Update", "negative", "{c} downgraded to underweight as analysts see {p}% downside"),
    ("Analyst Update", "neutral", "Barclays initiates {c} at equal weight, price target ${p}0"),
    ("Analyst Update", "positive", "Analysts lift {c} price target to ${p}0 after investor day"),
    ("Fed | Central Banks", "neutral", "Fed's Williams says policy is well positioned, sees no rush to move rates before {m}"),
    ("Fed | Central Banks", "negative", "ECB warns inflation may stay high for {p} more months"),
    ("Fed | Central Banks", "neutral", "Fed minutes show officials split on slowing balance sheet runoff to ${p} billion a month"),
    ("Fed | Central Banks", "neutral", "Bank of England signals rate cuts could start in {m}"),
    ("Company | Product News", "neutral", "{c} unveils new product line, expects {p} million units next year"),
    ("Company | Product News", "neutral", "{c} to open {p} new stores across Europe"),
    ("Company | Product News", "negative", "{c} delays flagship launch by {p} weeks on supply problems"),
    ("Company | Product News", "positive", "{c} wins ${p} billion Pentagon contract"),
    ("Treasuries | Corporate Debt", "neutral", "{c} prices ${p} billion bond offering in three parts"),
    ("Treasuries | Corporate Debt", "negative", "Treasuries sell off, sending 10-year yield to {p}-week high"),
    ("Treasuries | Corporate Debt", "neutral", "Treasury to auction ${p} billion in two-year notes"),
    ("Treasuries | Corporate Debt", "negative", "Junk bond spreads widen {p} basis points as defaults rise"),
    ("Dividend", "positive", "{c} raises quarterly dividend {p}% to record"),
    ("Dividend", "neutral", "{c} declares regular quarterly dividend of {p} cents per share"),
    ("Dividend", "negative", "{c} suspends dividend to preserve cash"),
    ("Earnings", "positive", "{c} Q3 profit beats estimates as revenue rises {p}%"),
    ("Earnings", "negative", "{c} quarterly earnings miss forecasts, revenue down {p}%"),
    ("Earnings", "neutral", "{c} Q3 earnings preview: what to expect on {m} {p}"),
    ("Earnings", "positive", "{c} raises full-year guidance after strong quarter"),
    ("Energy | Oil", "positive", "Oil jumps {p}% as OPEC+ agrees deeper output cuts"),
    ("Energy | Oil", "negative", "Crude slides to {p}-month low on demand worries"),
    ("Energy | Oil", "neutral", "EIA: US crude stocks little changed in week to {m} {p}"),
    ("Energy | Oil", "neutral", "{c} keeps oil production target unchanged for next year"),
    ("Financials", "negative", "{c} investment banking fees fall {p}% as dealmaking slows"),
    ("Financials", "positive", "{c} trading revenue rises {p}% on bond desk strength"),
    ("Financials", "neutral", "{c} completes annual stress test, capital buffer at {p}%"),
    ("Currencies", "neutral", "Dollar little changed against the yen ahead of {m} jobs report"),
    ("Currencies", "negative", "Euro falls {p}% after weak German factory data"),
    ("Currencies", "positive", "Sterling rallies to {p}-week high on strong retail sales"),
    ("General News | Opinion", "neutral", "{p} things investors should watch this week"),
    ("General News | Opinion", "neutral", "Opinion: {p} reasons markets keep underestimating the consumer"),
    ("General News | Opinion", "negative", "Column: the warning signs {p} fund managers are ignoring"),
    ("Gold | Metals | Materials", "positive", "Gold hits record above ${p}00 an ounce as investors seek safety"),
    ("Gold | Metals | Materials", "negative", "Copper slides {p}% as Chinese demand for metals weakens"),
    ("Gold | Metals | Materials", "neutral", "Silver and platinum steady as traders await {m} inflation data"),
    ("IPO", "positive", "Chip designer raises ${p}00 million in IPO priced above range"),
    ("IPO", "neutral", "Payments startup files for US IPO seeking ${p}00 million"),
    ("IPO", "negative", "Grocery delivery firm pulls ${p}00 million IPO as markets slump"),
    ("Legal | Regulation", "negative", "{c} sued by shareholders over misleading disclosures, seeking ${p}0 million"),
    ("Legal | Regulation", "negative", "SEC opens investigation into {c} accounting practices"),
    ("Legal | Regulation", "neutral", "Court sets {m} trial date in {c} patent case"),
    ("Legal | Regulation", "positive", "{c} wins appeal as court throws out ${p} million verdict"),
    ("M&A | Investments", "neutral", "{c} agrees to buy rival for ${p} billion in cash"),
    ("M&A | Investments", "neutral", "{c} in talks to acquire software maker, sources say"),
    ("M&A | Investments", "negative", "{c} takeover collapses after regulators block ${p} billion deal"),
    ("M&A | Investments", "positive", "{c} takes {p}% stake in battery startup"),
    ("Macro", "negative", "US retail sales fall {p}% in {m}, worst drop this year"),
    ("Macro", "positive", "US retail sales rise {p}% in {m}, beating forecasts"),
    ("Macro", "neutral", "Eurozone inflation holds at {p}% in {m}"),
    ("Macro", "negative", "China's economy slows more than expected as factory output slumps {p}%"),
    ("Markets", "positive", "S&P 500 closes at record high, up {p}% this year, as tech leads the rally"),
    ("Markets", "negative", "Stocks slide {p}% as bond yields climb"),
    ("Markets", "neutral", "European shares open flat ahead of {m} central bank meeting"),
    ("Markets", "positive", "Nasdaq gains {p}% on chipmaker strength"),
    ("Politics", "neutral", "Senate committee to vote on ${p} billion spending bill next week"),
    ("Politics", "negative", "Lawmakers deadlocked as government shutdown looms for {p}th day"),
    ("Politics", "neutral", "White House meets {p} industry leaders on trade policy"),
    ("Personnel Change", "neutral", "{c} names new chief financial officer"),
    ("Personnel Change", "neutral", "{c} chief executive steps down after {p} years"),
    ("Personnel Change", "neutral", "{c} appoints former regulator to its board"),
    ("Stock Commentary", "positive", "Why {c} stock could double in the next {p} years"),
    ("Stock Commentary", "negative", "Three reasons to avoid {c} shares right now"),
    ("Stock Commentary", "neutral", "Is {c} a buy after its {p}% run?"),
    ("Stock Movement", "positive", "{c} shares jump {p}% in premarket trading"),
    ("Stock Movement", "negative", "{c} stock drops {p}% to its lowest level this year"),
    ("Stock Movement", "neutral", "{c} stock flat at ${p}0 in premarket trading"),
]

# the burst: one company, a run of legal and regulatory trouble
BURST: list[str] = [
    "{c} hit with class action lawsuit by {p},000 owners over safety claims",
    "{c} faces federal lawsuit over defects in {p},000 vehicles",
    "{c} sued by Justice Department over {p} misleading statements",
    "SEC investigates {c} over {p} accounting irregularities",
    "{c} sued by shareholders over misleading disclosures, seeking ${p}0 million",
    "Judge fines {c} ${p} million for violating court order",
]
# how the burst's stories spread: each outlet's copy carries its own tag and sometimes its own figure
OUTLETS = [("reuters", "UPDATE 1-{h}"), ("bloomberg", "{h} | Bloomberg"), ("dow jones", "DJ {h}"),
           ("marketwatch", "{h} - MarketWatch"), ("cnbc", "BREAKING: {h}"), ("benzinga", "{h}"),
           ("the fly", "BRIEF-{h}"), ("afp", "{h} (AFP)")]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]



def _company_templates(tone: str) -> list[str]:
    return [t for _, t_tone, t in TEMPLATES if t_tone == tone and "{c}" in t and "{m}" not in t]


# company headlines by tone, formatted with {c} and {p} only (dashboard/sample_store.py)
NEGATIVE, NEUTRAL, POSITIVE = (_company_templates(tone) for tone in ("negative", "neutral", "positive"))


def generate(start: datetime | None = None, minutes: int = 60, per_minute: int = 12, burst_ticker: str = "TSLA",
             burst_minute: int = 45, seed: int = 3) -> list[dict[str, object]]:
    """``per_minute`` headlines a minute across the topics, plus 12 a minute of the burst for three
    minutes: the burst's six stories, each carried by several outlets (a wire tag, a source
    suffix), as one event reaches a desk: six negative stories, not 36 negatives."""
    rng = random.Random(seed)
    start = start or datetime(2026, 11, 2, 14, 0, tzinfo=timezone.utc)
    items: list[dict[str, object]] = []
    stories = [t.format(c=COMPANIES[burst_ticker], p=rng.randint(2, 40)) for t in BURST]
    for minute in range(minutes):
        burst = burst_minute <= minute < burst_minute + 3
        for k in range(per_minute + (12 if burst else 0)):
            ts = start + timedelta(minutes=minute, seconds=rng.uniform(0, 59.9))
            source = "riskpulse-sample"
            if burst and k < 12:
                ticker, template = burst_ticker, "{c}"
                source, tag = rng.choice(OUTLETS)
                headline = tag.format(h=rng.choice(stories))
            else:
                _, _, template = rng.choice(TEMPLATES)
                ticker = rng.choice(list(COMPANIES))
                headline = template.format(c=COMPANIES[ticker], p=rng.randint(2, 40), m=rng.choice(MONTHS))
            items.append({"id": f"sample-{len(items)}", "headline": headline, "source": source,
                          "url": f"https://news.example/{len(items)}", "published_at": ts.isoformat().replace("+00:00", "Z"),
                          "tickers": [ticker] if "{c}" in template else []})
    items.sort(key=lambda i: str(i["published_at"]))
    return items


def write(path: Path, **kwargs: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for item in generate(**kwargs):  # type: ignore[arg-type]
            fh.write(json.dumps(item) + "\n")
    return path
